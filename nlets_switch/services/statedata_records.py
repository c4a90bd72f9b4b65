"""The simulated states' records and public constants (PROTOCOL part 6).

The record types (:class:`Driver`, :class:`Vehicle`, :class:`CriminalHistory`
and what they hold) and the constants that describe the data set: which
keys a simulated state answers, how many records each file holds, and the
fixed test records' identifiers. :mod:`nlets_switch.services.statedata` is
the surface that re-exports them.
"""

from __future__ import annotations

import datetime as dt
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from nlets_switch.wire import domain

# --------------------------------------------------------------------------
# Public constants
# --------------------------------------------------------------------------

#: The 50 states and DC as NCIC codes (FIELDS.md: Nebraska is ``NB``, not
#: the postal ``NE``): :data:`nlets_switch.wire.domain.US_STATES`.
STATES: Final[tuple[str, ...]] = domain.US_STATES

#: Inquiry key -> response key of a simulated state (PROTOCOL part 6).
RESPONSE_KEYS: Final[Mapping[str, str]] = types.MappingProxyType({
    "DQ": "DR", "KQ": "KR", "RQ": "RR", "IQ": "IR", "FQ": "FR", "AQ": "AR",
    "SOQ": "SOR", "DNQ": "DNR",
})

#: The inquiry keys a simulated state answers.
INQUIRY_KEYS: Final[frozenset[str]] = frozenset(RESPONSE_KEYS)

#: The line that marks a no-record answer (PROTOCOL part 6).
NO_RECORD: Final = domain.NO_RECORD

#: Generated records per state (besides the fixed test records).
DRIVERS_PER_STATE: Final = 200
VEHICLES_PER_STATE: Final = 200
HISTORIES_PER_STATE: Final = 100

#: The fixed test records' identifiers, the same in every state.
TEST_OLN: Final = "D11111111"
TEST_PLATE: Final = ("123456", "2027", "PC")  # LIC, LIY, LIT
#: Not a valid ISO 3779 check digit (position 9 would be ``0``); kept as the
#: issue gives it, because integrators type it from there.
TEST_VIN: Final = "1FTEW1EP5KFA00001"
#: One person has one FBI number in every state.
TEST_FBI: Final = "123456AA1"
#: The fixed test person's SSN and miscellaneous number, the same in every state.
TEST_SOC: Final = "123456789"  # SSA has never issued 123-45-6789
TEST_MNU: Final = "PP-123456789"


def fixed_sid(state: str) -> str:
    """The fixed test record's SID in ``state``: ``<state>12345678`` (10 chars)."""
    return f"{state.upper()}12345678"


def response_key(inquiry_key: str) -> str:
    """The response key a simulated state answers ``inquiry_key`` with.

    ``DQ``->``DR``, ``KQ``->``KR``, ``RQ``->``RR``, ``IQ``->``IR``,
    ``FQ``->``FR``, ``AQ``->``AR``, ``SOQ``->``SOR``, ``DNQ``->``DNR``. Any
    other key raises :class:`ValueError`: a simulated state does not take
    it, and the router answers the sender with SM ``.01.`` before ever asking
    this module.
    """
    try:
        return RESPONSE_KEYS[inquiry_key.strip().upper()]
    except KeyError:
        raise ValueError(f"a simulated state does not answer {inquiry_key!r}") from None


# --------------------------------------------------------------------------
# Records
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    """A mailing address; ``state`` is the *postal* code (NE for Nebraska)."""

    street: str
    city: str
    state: str
    zip: str

    def lines(self) -> tuple[str, str]:
        """The address as two lines: street, then ``CITY, ST ZIP``."""
        return self.street, f"{self.city}, {self.state} {self.zip}"

    def one_line(self) -> str:
        """The address on one line."""
        return f"{self.street}, {self.city}, {self.state} {self.zip}"


@dataclass(frozen=True, slots=True)
class Person:
    """Who a record is about: name, date of birth and NCIC description."""

    last: str
    first: str
    middle: str
    dob: dt.date
    sex: str  # M F
    race: str  # NCIC RAC
    height: int  # inches
    weight: int  # pounds
    eyes: str  # NCIC EYE
    hair: str  # NCIC HAI
    address: Address
    soc: str  # 9 digits

    @property
    def name(self) -> str:
        """The name as NCIC writes it: ``LAST,FIRST MIDDLE``."""
        return domain.Name(self.last, self.first, self.middle).display

    @property
    def hgt(self) -> str:
        """Height in NCIC's 3-digit form: ``510`` is 5 ft 10 in."""
        return f"{self.height // 12}{self.height % 12:02d}"

    @property
    def dob_ccyymmdd(self) -> str:
        """Date of birth as Nlets' ``CCYYMMDD``."""
        return self.dob.strftime("%Y%m%d")


@dataclass(frozen=True, slots=True)
class Violation:
    """One conviction on a driving record."""

    date: dt.date
    convicted: dt.date
    points: int
    description: str


@dataclass(frozen=True, slots=True)
class Suspension:
    """A suspension or revocation; ``ends`` is ``None`` when indefinite."""

    effective: dt.date
    ends: dt.date | None
    reason: str


@dataclass(frozen=True, slots=True)
class Driver:
    """A driver licence record (``DR``; ``KR`` adds the history)."""

    person: Person
    oln: str
    state: str  # NCIC code of the issuing state
    license_class: str
    endorsements: str
    status: str  # VALID SUSPENDED REVOKED; EXPIRED is worked out from `today`
    issued: dt.date
    expires: dt.date
    restrictions: str
    violations: tuple[Violation, ...]
    suspensions: tuple[Suspension, ...]


@dataclass(frozen=True, slots=True)
class Vehicle:
    """A vehicle registration record (``RR``)."""

    lic: str
    lit: str
    liy: str  # 4 digits, the year the registration expires
    state: str
    vin: str
    vyr: int
    vma: str
    vmo: str
    vst: str
    vco: str
    owner: Person
    expires: dt.date
    status: str  # VALID or SUSPENDED - NO INSURANCE; EXPIRED from `today`


@dataclass(frozen=True, slots=True)
class Charge:
    """One charge of an arrest cycle, with its court disposition."""

    offense: str  # 4-digit NCIC offense code
    literal: str
    severity: str  # FELONY MISDEMEANOR
    counts: int
    disposition: str
    disposition_date: dt.date | None
    sentence: str


@dataclass(frozen=True, slots=True)
class Cycle:
    """One arrest cycle of a rap sheet: the arrest and what the court did."""

    arrest_date: dt.date
    tracking: str
    agency_ori: str
    agency: str
    court_ori: str
    court: str
    court_case: str
    name_used: str
    charges: tuple[Charge, ...]


@dataclass(frozen=True, slots=True)
class CriminalHistory:
    """A state criminal-history record (``IR``/``FR``; ``AR`` supplements it)."""

    person: Person
    sid: str
    fbi: str
    mnu: str  # "" when none
    oln: str  # the subject's licence in this state, "" when none
    pob: str
    aliases: tuple[str, ...]
    smt: tuple[str, ...]
    fpc: str  # NCIC fingerprint classification, 20 characters
    cycles: tuple[Cycle, ...]
