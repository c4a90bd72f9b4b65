"""Synthetic records behind the simulated states (PROTOCOL part 6).

Every US state and DC without a configured control terminal is answered by
the switch itself. This module holds what such a state "knows" and writes
its answers: a driver file (``DQ``/``KQ``), a vehicle registration file
(``RQ``) and a criminal-history file (``IQ``/``FQ``/``AQ``). It is pure: no
I/O, no clock reads, no logging. The adapter that wires it into the switch
builds the response header; this module writes only the text after ``TXT``.

Data is generated, never stored: :meth:`StateData.for_state` builds one
state's records from ``(seed, state)`` with :class:`random.Random` the first
time it is asked, and caches them; the same seed gives the same records in
every process and on every machine.

This module is the surface: :class:`StateData` (searches and answers) and,
re-exported, the records and constants. The rest is internal:
``statedata_records`` (record types and constants), ``statedata_tables``
(the word lists the generator draws from), ``statedata_generate`` (the
generator and the fixed test records) and ``statedata_text`` (the answer
texts). Names and dates of birth are read by the rules of
:mod:`nlets_switch.wire.domain`.

Beside the generated records, every state holds the same documented test
records (the driver ones are Nlets' own guide examples), so an integrator
always has a hit to ask for: driver ``NAM/SMITH,JOHN.DOB/19500101.SEX/M``
or ``OLN/D11111111``; vehicle ``LIC/123456.LIY/2027.LIT/PC`` or
``VIN/1FTEW1EP5KFA00001``; criminal history ``SID/<state>12345678`` or
``FBI/123456AA1`` (and the name above). ``docs/simulated-states.md`` has the
table.

Anything not on file answers a title line and the line ``NO RECORD``, which
is what PROTOCOL part 6 (and the ``NL`` fan-out) treats as a no-record answer.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Final, Protocol, TypeVar

from nlets_switch.services.statedata_generate import Generator, fixed_records
from nlets_switch.services.statedata_records import (
    DRIVERS_PER_STATE,
    HISTORIES_PER_STATE,
    INQUIRY_KEYS,
    NO_RECORD,
    RESPONSE_KEYS,
    STATES,
    TEST_FBI,
    TEST_OLN,
    TEST_PLATE,
    TEST_VIN,
    VEHICLES_PER_STATE,
    Address,
    Charge,
    CriminalHistory,
    Cycle,
    Driver,
    Person,
    Suspension,
    Vehicle,
    Violation,
    fixed_sid,
    response_key,
)
from nlets_switch.services.statedata_registry import (
    name_search_line,
    registered,
    registry_lines,
)
from nlets_switch.services.statedata_tables import vin_check_digit
from nlets_switch.services.statedata_text import (
    SIMULATED,
    TITLES,
    driver_lines,
    rap_sheet_lines,
    supplement_lines,
    vehicle_lines,
)
from nlets_switch.wire.domain import Name, parse_dob, parse_name

__all__ = [
    "DRIVERS_PER_STATE",
    "HISTORIES_PER_STATE",
    "INQUIRY_KEYS",
    "NO_RECORD",
    "RESPONSE_KEYS",
    "STATES",
    "TEST_FBI",
    "TEST_OLN",
    "TEST_PLATE",
    "TEST_VIN",
    "VEHICLES_PER_STATE",
    "Address",
    "Charge",
    "CriminalHistory",
    "Cycle",
    "Driver",
    "Person",
    "StateData",
    "Suspension",
    "Vehicle",
    "Violation",
    "fixed_sid",
    "response_key",
    "vin_check_digit",
]

# --------------------------------------------------------------------------
# Normalising what the inquirer typed
# --------------------------------------------------------------------------

_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_TOKEN = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)?")
_TEXT_NAME = re.compile(r"([A-Z][A-Z-]*) ?, ?([A-Z]+)")

T = TypeVar("T")


def _search_name(value: str) -> Name | None:
    """The name a ``NAM`` asks for (FIELDS.md; :func:`~nlets_switch.wire.domain.parse_name`),
    apostrophes dropped as the state files write names (``OCONNOR``); None
    unless it gives a last and a first name."""
    name = parse_name(value).without_apostrophes()
    return name if name.last and name.first else None


def _plate_year(value: str) -> str:
    """``LIY`` as 4 digits (2-digit years are 20YY), ``NX``, or "" when invalid."""
    text = value.strip().upper()
    if text == "NX" or re.fullmatch(r"[0-9]{4}", text):
        return text
    if re.fullmatch(r"[0-9]{2}", text):
        return f"20{text}"
    return ""


def _alnum(value: str) -> str:
    return _NOT_ALNUM.sub("", value.upper())


def _person_matches(person: Person, name: Name, dob: dt.date | None, sex: str) -> bool:
    if dob is not None and person.dob != dob:
        return False
    if sex in ("M", "F") and person.sex != sex:
        return False
    # A middle name narrows the search only when both sides have one.
    return not (name.middle and person.middle and name.middle[0] != person.middle[0])


class _AboutPerson(Protocol):
    @property
    def person(self) -> Person: ...


R = TypeVar("R", bound=_AboutPerson)


def _dedupe(items: Iterable[T]) -> list[T]:
    # Records are compared by identity: two records never share an object.
    out: list[T] = []
    for item in items:
        if not any(item is seen for seen in out):
            out.append(item)
    return out

# --------------------------------------------------------------------------
# The state
# --------------------------------------------------------------------------


class StateData:
    """One simulated state's files and the answers it gives.

    Build with :meth:`for_state` (cached); the constructor builds afresh.
    ``drivers``, ``vehicles`` and ``histories`` hold every record, the fixed
    test records first, so tools and tests can list what is on file.
    """

    def __init__(self, state: str, seed: int = 1) -> None:
        code = state.strip().upper()
        if code not in STATES:
            raise ValueError(f"{state!r} is not an NCIC code of a US state or DC")
        self.state: Final = code
        self.seed: Final = seed
        gen = Generator(code, seed)
        test_driver, test_vehicle, test_history = fixed_records(code)
        generated_drivers = gen.drivers(DRIVERS_PER_STATE)
        self.drivers: Final[tuple[Driver, ...]] = (test_driver, *generated_drivers)
        self.vehicles: Final[tuple[Vehicle, ...]] = (
            test_vehicle,
            *gen.vehicles(VEHICLES_PER_STATE, [d.person for d in generated_drivers]),
        )
        self.histories: Final[tuple[CriminalHistory, ...]] = (
            test_history, *gen.histories(HISTORIES_PER_STATE, generated_drivers),
        )

        self._by_oln = {d.oln: d for d in self.drivers}
        self._drivers_by_name: dict[tuple[str, str], list[Driver]] = {}
        for d in self.drivers:
            self._drivers_by_name.setdefault((d.person.last, d.person.first), []).append(d)
        self._by_plate = {(v.lic, v.liy, v.lit): v for v in self.vehicles}
        self._by_vin = {v.vin: v for v in self.vehicles}
        self._by_sid = {h.sid: h for h in self.histories}
        self._by_fbi = {h.fbi: h for h in self.histories}
        self._by_soc = {h.person.soc: h for h in self.histories}
        self._by_mnu = {h.mnu: h for h in self.histories if h.mnu}
        self._histories_by_name: dict[tuple[str, str], list[CriminalHistory]] = {}
        for h in self.histories:
            self._histories_by_name.setdefault((h.person.last, h.person.first), []).append(h)
        #: The sex offender registry (SOQ): registrants drawn from the histories.
        self.registrants: Final[tuple[CriminalHistory, ...]] = registered(self.histories)
        self._registry_by_name: dict[tuple[str, str], list[CriminalHistory]] = {}
        for h in self.registrants:
            self._registry_by_name.setdefault((h.person.last, h.person.first), []).append(h)

    @classmethod
    def for_state(cls, state: str, seed: int = 1) -> StateData:
        """The (cached) data of ``state``, an NCIC code from :data:`STATES`.

        Raises :class:`ValueError` for any other code.
        """
        return _for_state(state.strip().upper(), seed)

    def answer(self, key: str, fields: Mapping[str, str], *,
               today: dt.date | None = None) -> str:
        """The response text (what follows ``TXT``) to inquiry ``key``.

        ``key`` is one of :data:`INQUIRY_KEYS` (anything else raises
        :class:`ValueError`); ``fields`` are the inquiry's ``TAG -> value``
        pairs. Every identifier given is searched and the hits are listed
        one after another, a blank line between records:

        * ``DQ``/``KQ``: ``OLN``; ``NAM`` + ``DOB`` (``SEX`` narrows it);
        * ``RQ``: ``LIC`` + ``LIY`` + ``LIT``; ``VIN``;
        * ``IQ``: ``NAM`` + ``DOB`` (``SEX`` narrows it); ``SOC``; ``MNU``;
        * ``FQ``: ``SID``; ``FBI``;
        * ``AQ``: ``SID``, ``FBI``, ``SOC``, ``MNU``, ``NAM`` (``DOB`` and
          ``SEX`` narrow it); given none of them, any value is read as free
          text and searched for SIDs, FBI numbers and ``LAST,FIRST`` names;
        * ``SOQ``: the sex offender registry, by ``NAM`` + ``DOB`` (``SEX``
          narrows it), ``SOC``, ``FBI``, ``SID``;
        * ``DNQ``: drivers by ``NAM`` alone (``DOB`` and ``SEX`` narrow it),
          one line each.

        ``DOB`` may be ``MMDDYY`` or ``CCYYMMDD``
        (:func:`~nlets_switch.wire.domain.parse_dob`). ``IMQ/Y`` on a ``DQ``
        or ``AQ`` hit adds a line saying no image is available. ``today``,
        when given, turns a licence or registration past its expiry into
        ``EXPIRED`` and picks the century of an ``MMDDYY`` DOB (the latest
        not after it). A miss answers the title line and the line
        ``NO RECORD``. Never raises for any field values.
        """
        mke = key.strip().upper()
        if mke not in INQUIRY_KEYS:
            raise ValueError(f"a simulated state does not answer {key!r}")
        f = {str(k).strip().upper(): str(v) for k, v in fields.items()}
        blocks: list[list[str]]
        if mke in ("DQ", "KQ"):
            blocks = [driver_lines(d, today, mke == "KQ") for d in self._find_drivers(f, today)]
        elif mke == "RQ":
            blocks = [vehicle_lines(v, today) for v in self._find_vehicles(f)]
        elif mke == "AQ":
            blocks = [supplement_lines(h) for h in self._find_supplement(f, today)]
        elif mke == "SOQ":
            blocks = [registry_lines(self.state, h) for h in self._find_registrants(f, today)]
        elif mke == "DNQ":
            found = self._by_name(self._drivers_by_name, f, today, need_dob=False)
            blocks = [[name_search_line(d) for d in found]] if found else []
        else:
            blocks = [rap_sheet_lines(h) for h in self._find_histories(mke, f, today)]
        title = f"{self.state} {TITLES[mke]}"
        if not blocks:
            return f"{title}\n{NO_RECORD}"
        lines = [title, SIMULATED]
        for n, block in enumerate(blocks):
            if n:
                lines.append("")
            lines += block
        if mke in ("DQ", "AQ") and f.get("IMQ", "").strip().upper() == "Y":
            # Say so rather than ignore the request: there are no images.
            lines.append("IMAGE: NOT AVAILABLE FROM A SIMULATED STATE")
        return "\n".join(lines)

    # -- searches ------------------------------------------------------------

    def _find_drivers(self, f: Mapping[str, str], today: dt.date | None) -> list[Driver]:
        hits: list[Driver] = []
        oln = _alnum(f.get("OLN", ""))
        if oln and oln in self._by_oln:
            hits.append(self._by_oln[oln])
        hits += self._by_name(self._drivers_by_name, f, today, need_dob=True)
        return _dedupe(hits)

    def _find_vehicles(self, f: Mapping[str, str]) -> list[Vehicle]:
        hits: list[Vehicle] = []
        lic, liy, lit = _alnum(f.get("LIC", "")), _plate_year(f.get("LIY", "")), \
            _alnum(f.get("LIT", ""))
        if lic and liy and lit and (lic, liy, lit) in self._by_plate:
            hits.append(self._by_plate[(lic, liy, lit)])
        vin = _alnum(f.get("VIN", ""))
        if vin in self._by_vin:
            hits.append(self._by_vin[vin])
        return _dedupe(hits)

    def _find_histories(self, mke: str, f: Mapping[str, str],
                         today: dt.date | None) -> list[CriminalHistory]:
        hits: list[CriminalHistory] = []
        if mke == "FQ":
            hits += self._by_ids(f, ("SID", "FBI"))
        else:
            hits += self._by_name(self._histories_by_name, f, today, need_dob=True)
            hits += self._by_ids(f, ("SOC", "MNU"))
        return _dedupe(hits)

    def _find_registrants(self, f: Mapping[str, str],
                          today: dt.date | None) -> list[CriminalHistory]:
        wanted = {id(h) for h in self.registrants}
        hits = [h for h in self._by_ids(f, ("SOC", "FBI", "SID")) if id(h) in wanted]
        hits += self._by_name(self._registry_by_name, f, today, need_dob=True)
        return _dedupe(hits)

    def _find_supplement(self, f: Mapping[str, str],
                         today: dt.date | None) -> list[CriminalHistory]:
        structured = ("SID", "FBI", "SOC", "MNU", "NAM")
        if any(f.get(tag, "").strip() for tag in structured):
            hits = self._by_ids(f, ("SID", "FBI", "SOC", "MNU"))
            hits += self._by_name(self._histories_by_name, f, today, need_dob=False)
            return _dedupe(hits)
        # Free text: look for anything that reads as an identifier or a name.
        hits = []
        for value in f.values():
            text = value.upper()
            for token in _TOKEN.findall(text):
                for index in (self._by_sid, self._by_fbi, self._by_soc, self._by_mnu):
                    if token in index:
                        hits.append(index[token])
            for last, first in _TEXT_NAME.findall(text):
                hits += self._histories_by_name.get((last, first), [])
        return _dedupe(hits)

    def _by_ids(self, f: Mapping[str, str], tags: Sequence[str]) -> list[CriminalHistory]:
        indexes = {"SID": self._by_sid, "FBI": self._by_fbi, "SOC": self._by_soc,
                   "MNU": self._by_mnu}
        hits = []
        for tag in tags:
            value = f.get(tag, "").strip().upper()
            # MNU keeps its hyphen ("PP-123456789"); the others are alphanumeric.
            value = value.replace(" ", "") if tag == "MNU" else _alnum(value)
            if value and value in indexes[tag]:
                hits.append(indexes[tag][value])
        return hits

    @staticmethod
    def _by_name(index: Mapping[tuple[str, str], Sequence[R]], f: Mapping[str, str],
                 today: dt.date | None, *, need_dob: bool) -> list[R]:
        name = _search_name(f.get("NAM", ""))
        if name is None:
            return []
        dob_text = f.get("DOB", "").strip()
        dob = parse_dob(dob_text, today) if dob_text else None
        if dob is None and (need_dob or dob_text):
            return []  # a name search needs a DOB, and one that is no date finds nobody
        sex = f.get("SEX", "").strip().upper()
        out = []
        for record in index.get((name.last, name.first), ()):
            if _person_matches(record.person, name, dob, sex):
                out.append(record)
        return out


@functools.lru_cache(maxsize=128)
def _for_state(state: str, seed: int) -> StateData:
    return StateData(state, seed)
