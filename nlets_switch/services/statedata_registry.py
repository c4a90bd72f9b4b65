"""A simulated state's sex offender registry (``SOQ``/``SOR``) and its name-only
driver search (``DNQ``/``DNR``): the answer texts.

Internal to :mod:`nlets_switch.services.statedata`, which picks the records.
The registry is drawn from the criminal-history file: the fixed test person
(``SMITH,JOHN``, DOB 1950-01-01, FBI ``123456AA1``) is registered in every
state, and so is every :data:`REGISTERED_EVERY`-th generated history, so the
same seed always registers the same people. Registration details are derived
from the record itself, never drawn at random, for the same reason.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

from nlets_switch.services.statedata_records import CriminalHistory, Driver

#: One generated criminal history in this many is on the registry.
REGISTERED_EVERY: Final = 8

_TIERS: Final = ("TIER I", "TIER II", "TIER III")
_STATUSES: Final = ("COMPLIANT", "COMPLIANT", "COMPLIANT", "NON-COMPLIANT")


def _d(day: dt.date) -> str:
    return day.strftime("%m/%d/%Y")


def registered(histories: tuple[CriminalHistory, ...]) -> tuple[CriminalHistory, ...]:
    """The registrants among a state's histories (the first is the fixed test record)."""
    return tuple(h for i, h in enumerate(histories) if i == 0 or i % REGISTERED_EVERY == 0)


def registry_lines(state: str, h: CriminalHistory) -> list[str]:
    """One registrant, as the ``SOR`` lists it."""
    p = h.person
    since = h.cycles[0].arrest_date if h.cycles else dt.date(p.dob.year + 25, 1, 1)
    number = sum(map(ord, h.sid))
    street, city_line = p.address.lines()
    return [
        f"NAME: {p.name}",
        f"DOB: {_d(p.dob)}   SEX: {p.sex}   RACE: {p.race}   SID: {h.sid}   FBI: {h.fbi}",
        f"REGISTERED SINCE: {_d(since)}   LEVEL: {_TIERS[number % 3]}",
        f"REGISTRATION STATUS: {_STATUSES[number % 4]}",
        f"REGISTERED ADDRESS: {street}",
        f"                    {city_line}",
        f"REGISTERING AGENCY: {state}SOR0000 {state} SEX OFFENDER REGISTRY",
        "OFFENSE: 1199 SEX OFFENSE (SIMULATED)",
    ]


def name_search_line(d: Driver) -> str:
    """One driver of a ``DNR`` list: enough to send the ``DQ`` for the record."""
    p = d.person
    return (f"NAM/{p.name}.DOB/{p.dob_ccyymmdd}.SEX/{p.sex}.OLN/{d.oln}"
            f"   {p.address.one_line()}")
