"""Synthetic records behind the simulated states (PROTOCOL part 6).

Every US state and DC without a configured control terminal is answered by
the switch itself. This module holds what such a state "knows" and writes
its answers: a driver file (``DQ``/``KQ``), a vehicle registration file
(``RQ``) and a criminal-history file (``IQ``/``FQ``/``AQ``). It is pure: no
I/O, no clock reads, no logging. The adapter that wires it into the switch
builds the response header; this module writes only the text after ``TXT``.

Data is generated, never stored: :meth:`StateData.for_state` builds one
state's records from ``(seed, state)`` with :class:`random.Random` the first
time it is asked, and caches them. Python seeds ``Random`` from a string with
SHA-512, so the records are the same in every process and on every machine,
whatever ``PYTHONHASHSEED`` says. Each file has its own random stream, so
changing the size of one file does not reshuffle another.

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
import random
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Protocol, TypeVar

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
# Public constants
# --------------------------------------------------------------------------

#: The 50 states and DC as NCIC codes (FIELDS.md: Nebraska is ``NB``, not
#: the postal ``NE``; every other state's NCIC code is its postal code).
STATES: Final[tuple[str, ...]] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI",
    "ID", "IL", "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN",
    "MS", "MO", "MT", "NB", "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH",
    "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA",
    "WV", "WI", "WY",
)

#: Inquiry key -> response key of a simulated state (PROTOCOL part 6).
RESPONSE_KEYS: Final[Mapping[str, str]] = types.MappingProxyType({
    "DQ": "DR", "KQ": "KR", "RQ": "RR", "IQ": "IR", "FQ": "FR", "AQ": "AR",
})

#: The inquiry keys a simulated state answers.
INQUIRY_KEYS: Final[frozenset[str]] = frozenset(RESPONSE_KEYS)

#: The line that marks a no-record answer (PROTOCOL part 6).
NO_RECORD: Final = "NO RECORD"

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
_TEST_SOC: Final = "123456789"  # SSA has never issued 123-45-6789
_TEST_MNU: Final = "PP-123456789"


def fixed_sid(state: str) -> str:
    """The fixed test record's SID in ``state``: ``<state>12345678`` (10 chars)."""
    return f"{state.upper()}12345678"


def response_key(inquiry_key: str) -> str:
    """The response key a simulated state answers ``inquiry_key`` with.

    ``DQ``->``DR``, ``KQ``->``KR``, ``RQ``->``RR``, ``IQ``->``IR``,
    ``FQ``->``FR``, ``AQ``->``AR``. Any other key raises :class:`ValueError`:
    a simulated state does not take it, and the router answers the sender
    with SM ``.01.`` before ever asking this module.
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
        name = f"{self.last},{self.first}"
        return f"{name} {self.middle}" if self.middle else name

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


# --------------------------------------------------------------------------
# Static tables the generator draws from
# --------------------------------------------------------------------------

# Hand-written rather than Faker: Faker's word lists change between releases,
# and the data set must be the same wherever the switch runs.

# State -> three (city, ZIP) pairs, the capital first.
_CITIES: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "AL": (("MONTGOMERY", "36104"), ("BIRMINGHAM", "35203"), ("MOBILE", "36602")),
    "AK": (("JUNEAU", "99801"), ("ANCHORAGE", "99501"), ("FAIRBANKS", "99701")),
    "AZ": (("PHOENIX", "85003"), ("TUCSON", "85701"), ("MESA", "85201")),
    "AR": (("LITTLE ROCK", "72201"), ("FAYETTEVILLE", "72701"), ("FORT SMITH", "72901")),
    "CA": (("SACRAMENTO", "95814"), ("LOS ANGELES", "90012"), ("SAN DIEGO", "92101")),
    "CO": (("DENVER", "80202"), ("COLORADO SPRINGS", "80903"), ("AURORA", "80010")),
    "CT": (("HARTFORD", "06103"), ("NEW HAVEN", "06510"), ("BRIDGEPORT", "06604")),
    "DE": (("DOVER", "19901"), ("WILMINGTON", "19801"), ("NEWARK", "19711")),
    "DC": (("WASHINGTON", "20001"), ("WASHINGTON", "20002"), ("WASHINGTON", "20003")),
    "FL": (("TALLAHASSEE", "32301"), ("JACKSONVILLE", "32202"), ("MIAMI", "33130")),
    "GA": (("ATLANTA", "30303"), ("SAVANNAH", "31401"), ("AUGUSTA", "30901")),
    "HI": (("HONOLULU", "96813"), ("HILO", "96720"), ("KAILUA", "96734")),
    "ID": (("BOISE", "83702"), ("IDAHO FALLS", "83402"), ("POCATELLO", "83201")),
    "IL": (("SPRINGFIELD", "62701"), ("CHICAGO", "60602"), ("PEORIA", "61602")),
    "IN": (("INDIANAPOLIS", "46204"), ("FORT WAYNE", "46802"), ("EVANSVILLE", "47708")),
    "IA": (("DES MOINES", "50309"), ("CEDAR RAPIDS", "52401"), ("DAVENPORT", "52801")),
    "KS": (("TOPEKA", "66603"), ("WICHITA", "67202"), ("OLATHE", "66061")),
    "KY": (("FRANKFORT", "40601"), ("LOUISVILLE", "40202"), ("LEXINGTON", "40507")),
    "LA": (("BATON ROUGE", "70802"), ("NEW ORLEANS", "70112"), ("SHREVEPORT", "71101")),
    "ME": (("AUGUSTA", "04330"), ("PORTLAND", "04101"), ("BANGOR", "04401")),
    "MD": (("ANNAPOLIS", "21401"), ("BALTIMORE", "21202"), ("FREDERICK", "21701")),
    "MA": (("BOSTON", "02108"), ("WORCESTER", "01608"), ("SPRINGFIELD", "01103")),
    "MI": (("LANSING", "48933"), ("DETROIT", "48226"), ("GRAND RAPIDS", "49503")),
    "MN": (("SAINT PAUL", "55102"), ("MINNEAPOLIS", "55401"), ("DULUTH", "55802")),
    "MS": (("JACKSON", "39201"), ("GULFPORT", "39501"), ("HATTIESBURG", "39401")),
    "MO": (("JEFFERSON CITY", "65101"), ("KANSAS CITY", "64106"), ("SAINT LOUIS", "63101")),
    "MT": (("HELENA", "59601"), ("BILLINGS", "59101"), ("MISSOULA", "59802")),
    "NB": (("LINCOLN", "68508"), ("OMAHA", "68102"), ("GRAND ISLAND", "68801")),
    "NV": (("CARSON CITY", "89701"), ("LAS VEGAS", "89101"), ("RENO", "89501")),
    "NH": (("CONCORD", "03301"), ("MANCHESTER", "03101"), ("NASHUA", "03060")),
    "NJ": (("TRENTON", "08608"), ("NEWARK", "07102"), ("JERSEY CITY", "07302")),
    "NM": (("SANTA FE", "87501"), ("ALBUQUERQUE", "87102"), ("LAS CRUCES", "88001")),
    "NY": (("ALBANY", "12207"), ("BUFFALO", "14202"), ("ROCHESTER", "14604")),
    "NC": (("RALEIGH", "27601"), ("CHARLOTTE", "28202"), ("GREENSBORO", "27401")),
    "ND": (("BISMARCK", "58501"), ("FARGO", "58102"), ("GRAND FORKS", "58201")),
    "OH": (("COLUMBUS", "43215"), ("CLEVELAND", "44113"), ("CINCINNATI", "45202")),
    "OK": (("OKLAHOMA CITY", "73102"), ("TULSA", "74103"), ("NORMAN", "73069")),
    "OR": (("SALEM", "97301"), ("PORTLAND", "97204"), ("EUGENE", "97401")),
    "PA": (("HARRISBURG", "17101"), ("PHILADELPHIA", "19107"), ("PITTSBURGH", "15222")),
    "RI": (("PROVIDENCE", "02903"), ("WARWICK", "02886"), ("CRANSTON", "02920")),
    "SC": (("COLUMBIA", "29201"), ("CHARLESTON", "29401"), ("GREENVILLE", "29601")),
    "SD": (("PIERRE", "57501"), ("SIOUX FALLS", "57104"), ("RAPID CITY", "57701")),
    "TN": (("NASHVILLE", "37219"), ("MEMPHIS", "38103"), ("KNOXVILLE", "37902")),
    "TX": (("AUSTIN", "78701"), ("HOUSTON", "77002"), ("DALLAS", "75201")),
    "UT": (("SALT LAKE CITY", "84111"), ("PROVO", "84601"), ("OGDEN", "84401")),
    "VT": (("MONTPELIER", "05602"), ("BURLINGTON", "05401"), ("RUTLAND", "05701")),
    "VA": (("RICHMOND", "23219"), ("NORFOLK", "23510"), ("VIRGINIA BEACH", "23451")),
    "WA": (("OLYMPIA", "98501"), ("SEATTLE", "98104"), ("SPOKANE", "99201")),
    "WV": (("CHARLESTON", "25301"), ("HUNTINGTON", "25701"), ("MORGANTOWN", "26501")),
    "WI": (("MADISON", "53703"), ("MILWAUKEE", "53202"), ("GREEN BAY", "54301")),
    "WY": (("CHEYENNE", "82001"), ("CASPER", "82601"), ("LARAMIE", "82070")),
}

# Mailing addresses use postal codes; the only NCIC code that differs is NB.
_POSTAL: Final[Mapping[str, str]] = {"NB": "NE"}

# Licence number layouts, after each state's published format (one common
# variant where a state has several). "#" a digit, "@" a letter, "*" either;
# anything else is literal.
_OLN_FORMAT: Final[Mapping[str, str]] = {
    "AL": "#######", "AK": "#######", "AZ": "@########", "AR": "#########",
    "CA": "@#######", "CO": "#########", "CT": "#########", "DE": "#######",
    "DC": "#######", "FL": "@############", "GA": "#########", "HI": "H########",
    "ID": "@@######@", "IL": "@###########", "IN": "##########", "IA": "###@@####",
    "KS": "K########", "KY": "@########", "LA": "#########", "ME": "#######",
    "MD": "@############", "MA": "S########", "MI": "@############",
    "MN": "@############", "MS": "#########", "MO": "@#########", "MT": "#############",
    "NB": "@########", "NV": "##########", "NH": "##@@@#####", "NJ": "@##############",
    "NM": "#########", "NY": "#########", "NC": "############", "ND": "@@@######",
    "OH": "@@######", "OK": "@#########", "OR": "#######", "PA": "########",
    "RI": "#######", "SC": "#########", "SD": "########", "TN": "#########",
    "TX": "########", "UT": "#########", "VT": "########", "VA": "@########",
    "WA": "WDL*********", "WV": "@######", "WI": "@#############", "WY": "#########",
}

# The ordinary (non-commercial) licence class where it is not "D".
_BASIC_CLASS: Final[Mapping[str, str]] = {
    "CA": "C", "TX": "C", "PA": "C", "FL": "E", "MI": "O", "NV": "C", "WA": "C",
}

_MALE: Final = (
    "JAMES", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH", "THOMAS",
    "CHARLES", "CHRISTOPHER", "DANIEL", "MATTHEW", "ANTHONY", "MARK", "DONALD",
    "STEVEN", "PAUL", "ANDREW", "JOSHUA", "KENNETH", "KEVIN", "BRIAN", "GEORGE",
    "TIMOTHY", "RONALD", "JASON", "EDWARD", "JEFFREY", "RYAN", "JACOB", "GARY",
    "NICHOLAS", "ERIC", "JONATHAN", "STEPHEN", "LARRY", "JUSTIN", "SCOTT",
    "BRANDON", "BENJAMIN", "CARLOS", "LUIS", "JOSE", "MIGUEL", "TYRONE", "DARNELL",
)  # no JOHN: the test record SMITH,JOHN stays the only one
_FEMALE: Final = (
    "MARY", "PATRICIA", "JENNIFER", "LINDA", "ELIZABETH", "BARBARA", "SUSAN",
    "JESSICA", "SARAH", "KAREN", "LISA", "NANCY", "BETTY", "MARGARET", "SANDRA",
    "ASHLEY", "KIMBERLY", "EMILY", "DONNA", "MICHELLE", "CAROL", "AMANDA",
    "MELISSA", "DEBORAH", "STEPHANIE", "REBECCA", "SHARON", "LAURA", "CYNTHIA",
    "KATHLEEN", "AMY", "ANGELA", "SHIRLEY", "ANNA", "BRENDA", "PAMELA", "EMMA",
    "NICOLE", "HELEN", "MARIA", "ROSA", "ANA", "KEISHA", "LATOYA",
)
_LAST: Final = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS",
    "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON",
    "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON",
    "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER",
    "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL",
    "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL",
    "MITCHELL", "CARTER", "ROBERTS", "GOMEZ", "PHILLIPS", "EVANS", "TURNER", "DIAZ",
    "PARKER", "CRUZ", "EDWARDS", "COLLINS", "REYES", "STEWART", "MORRIS", "MORALES",
    "MURPHY", "COOK", "ROGERS", "GUTIERREZ", "ORTIZ", "MORGAN", "COOPER", "PETERSON",
    "BAILEY", "REED", "KELLY", "HOWARD", "RAMOS", "KIM", "COX", "WARD", "RICHARDSON",
    "WATSON", "BROOKS", "CHAVEZ", "WOOD", "BENNETT", "GRAY", "MENDOZA", "RUIZ",
    "HUGHES", "PRICE", "ALVAREZ", "CASTILLO", "SANDERS", "PATEL", "MYERS", "LONG",
    "ROSS", "FOSTER", "JIMENEZ", "SMITH-JONES", "OCONNOR", "BEGAY", "YAZZIE",
)
_STREETS: Final = (
    "MAIN ST", "OAK AVE", "MAPLE DR", "CEDAR LN", "PINE ST", "ELM ST",
    "WASHINGTON AVE", "LAKE RD", "HILL ST", "PARK AVE", "2ND ST", "3RD AVE",
    "SUNSET BLVD", "RIVER RD", "CHURCH ST", "HIGHLAND AVE", "MILL RD", "FOREST DR",
    "JEFFERSON ST", "LINCOLN AVE", "MADISON ST", "JACKSON BLVD", "WILLOW WAY",
    "SPRING ST", "CENTER ST", "RIDGE RD", "VALLEY VIEW DR", "MEADOW LN",
)

T = TypeVar("T")

# (value, weight) tables: random.choices keeps the weights honest.
_RACES: Final = (("W", 60), ("B", 15), ("H", 12), ("A", 7), ("I", 3), ("U", 3))
_EYES: Final = (("BRO", 45), ("BLU", 26), ("HAZ", 10), ("GRN", 9), ("BLK", 6), ("GRY", 4))
_HAIR: Final = (("BRO", 42), ("BLK", 30), ("BLN", 12), ("RED", 4), ("GRY", 8), ("WHI", 2),
                ("SDY", 2))
_COLOURS: Final = (("WHI", 22), ("BLK", 20), ("GRY", 16), ("SIL", 14), ("RED", 9),
                   ("BLU", 9), ("BRO", 2), ("GRN", 2), ("TAN", 2), ("MAR", 2), ("GLD", 1),
                   ("YEL", 1))

# (VMA, VMO, VST, WMI, plate type): NCIC make, model and style codes.
_MODELS: Final = (
    ("FORD", "F15", "PK", "1FT", "TK"), ("FORD", "FUS", "4D", "3FA", "PC"),
    ("FORD", "ESC", "UT", "1FM", "PC"), ("FORD", "EXP", "UT", "1FM", "PC"),
    ("FORD", "MUS", "2D", "1FA", "PC"), ("CHEV", "SIL", "PK", "1GC", "TK"),
    ("CHEV", "MAL", "4D", "1G1", "PC"), ("CHEV", "EQU", "UT", "2GN", "PC"),
    ("CHEV", "TAH", "UT", "1GN", "PC"), ("CHEV", "IMP", "4D", "2G1", "PC"),
    ("TOYT", "CAM", "4D", "4T1", "PC"), ("TOYT", "COR", "4D", "2T1", "PC"),
    ("TOYT", "RAV", "UT", "2T3", "PC"), ("TOYT", "TAC", "PK", "3TM", "TK"),
    ("TOYT", "SIE", "VN", "5TD", "PC"), ("HOND", "ACC", "4D", "1HG", "PC"),
    ("HOND", "CIV", "4D", "2HG", "PC"), ("HOND", "CRV", "UT", "5J6", "PC"),
    ("HOND", "ODY", "VN", "5FN", "PC"), ("NISS", "ALT", "4D", "1N4", "PC"),
    ("NISS", "ROG", "UT", "JN8", "PC"), ("NISS", "SEN", "4D", "3N1", "PC"),
    ("NISS", "FRO", "PK", "1N6", "TK"), ("DODG", "RAM", "PK", "3C6", "TK"),
    ("DODG", "CHA", "4D", "2C3", "PC"), ("DODG", "CAR", "VN", "2C4", "PC"),
    ("JEEP", "WRA", "UT", "1C4", "PC"), ("JEEP", "CHE", "UT", "1J4", "PC"),
    ("SUBA", "OUT", "SW", "4S4", "PC"), ("SUBA", "FOR", "UT", "JF2", "PC"),
    ("HYUN", "ELA", "4D", "KMH", "PC"), ("HYUN", "SON", "4D", "5NP", "PC"),
    ("KIA", "SOR", "UT", "5XY", "PC"), ("VOLK", "JET", "4D", "3VW", "PC"),
    ("VOLK", "PAS", "4D", "1VW", "PC"), ("HD", "FLH", "MC", "1HD", "MC"),
    ("HD", "XL", "MC", "1HD", "MC"),
)

# Plate layouts ("#" digit, "@" letter); each state draws one per plate type.
_PLATE_FORMATS: Final[Mapping[str, tuple[str, ...]]] = {
    "PC": ("@@@####", "###@@@", "#@@@###", "@@@###", "@@#####", "###@###", "@###@@"),
    "TK": ("@#####", "#####@", "@@####", "###@@#"),
    "MC": ("@####", "####@", "@@###", "###@@"),
}

# (description, points) of a driving-record conviction.
_VIOLATIONS: Final = (
    ("SPEEDING 1-10 MPH OVER LIMIT", 2), ("SPEEDING 11-15 MPH OVER LIMIT", 3),
    ("SPEEDING 16-20 MPH OVER LIMIT", 4), ("SPEEDING 21+ MPH OVER LIMIT", 6),
    ("FAILURE TO OBEY TRAFFIC SIGNAL", 3), ("FAILURE TO STOP AT STOP SIGN", 3),
    ("FAILURE TO YIELD RIGHT OF WAY", 3), ("IMPROPER LANE CHANGE", 2),
    ("FOLLOWING TOO CLOSELY", 3), ("NO PROOF OF INSURANCE", 0),
    ("DRIVING WHILE LICENSE SUSPENDED", 6), ("RECKLESS DRIVING", 8),
    ("DUI - ALCOHOL", 8), ("HANDHELD DEVICE WHILE DRIVING", 2),
    ("SEAT BELT VIOLATION", 0),
)
_DUI: Final = "DUI - ALCOHOL"

# (NCIC offense code, literal, severity, weight); codes from FIELDS.md's list
# and NCIC's uniform offense codes.
_OFFENSES: Final = (
    ("0999", "HOMICIDE", "FELONY", 1), ("1299", "ROBBERY", "FELONY", 4),
    ("1313", "SIMPLE ASSAULT", "MISDEMEANOR", 12), ("1399", "ASSAULT", "FELONY", 6),
    ("2299", "BURGLARY", "FELONY", 7), ("2399", "LARCENY", "MISDEMEANOR", 14),
    ("2404", "VEHICLE THEFT", "FELONY", 5), ("2699", "FRAUD", "FELONY", 6),
    ("3562", "MARIJUANA - POSSESS", "MISDEMEANOR", 10),
    ("3599", "DANGEROUS DRUGS", "FELONY", 8),
    ("4899", "OBSTRUCTING POLICE", "MISDEMEANOR", 6),
    ("5015", "FAILURE TO APPEAR", "MISDEMEANOR", 8),
    ("5299", "WEAPON OFFENSE", "FELONY", 4), ("5399", "PUBLIC PEACE", "MISDEMEANOR", 8),
    ("5404", "DRIVING UNDER INFLUENCE LIQUOR", "MISDEMEANOR", 12),
)
_DISPOSITIONS: Final = (
    ("CONVICTED", 58), ("DISMISSED", 22), ("ACQUITTED", 4),
    ("DEFERRED ADJUDICATION", 8), ("NO DISPOSITION REPORTED", 8),
)
_SMT: Final = (
    "TAT R ARM", "TAT L ARM", "TAT CHEST", "TAT NECK", "TAT BACK", "TAT R HND",
    "SC FHD", "SC L CHK", "SC R HND", "PRCD L EAR", "MOLE FACE", "BRTHMK NECK",
)
# NCIC fingerprint classification pieces: ridge counts and pattern codes.
_FPC_PATTERNS: Final = ("AA", "TT", "PI", "PM", "PO", "CI", "CM", "CO", "DI", "DM", "DO")

_VIN_CHARS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q (ISO 3779)
_VIN_YEAR: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 1980..2009, then again from 2010
_VIN_VALUE: Final[Mapping[str, int]] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_LETTERS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: they read as digits

# The data set is "as of" the end of 2024: dates are drawn before this and
# never from a clock, so the records do not change from one day to the next.
_AS_OF: Final = dt.date(2024, 12, 31)


def vin_check_digit(vin: str) -> str:
    """The ISO 3779 / 49 CFR 565 check digit (position 9) of a 17-char VIN."""
    total = sum(_VIN_VALUE[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)


# --------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Agency:
    ori: str
    name: str
    court_ori: str
    court: str


def _weighted(rng: random.Random, table: Sequence[tuple[T, int]]) -> T:
    values = [v for v, _ in table]
    weights = [w for _, w in table]
    return rng.choices(values, weights)[0]


def _pattern(rng: random.Random, fmt: str) -> str:
    out = []
    for c in fmt:
        if c == "#":
            out.append(str(rng.randrange(10)))
        elif c == "@":
            out.append(rng.choice(_LETTERS))
        elif c == "*":
            out.append(rng.choice(_VIN_CHARS))
        else:
            out.append(c)
    return "".join(out)


def _unique(rng: random.Random, make: Callable[[random.Random], str], taken: set[str]) -> str:
    # Draw until the value is new; the spaces are huge, so this loops rarely.
    while True:
        value = make(rng)
        if value not in taken:
            taken.add(value)
            return value


def _date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return dt.date.fromordinal(rng.randint(first.toordinal(), max(first, last).toordinal()))


def _anniversary(day: dt.date, year: int) -> dt.date:
    # 29 February falls back to the 28th in years that lack it.
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _agencies(state: str) -> tuple[_Agency, ...]:
    # Agencies depend on the state only, not the seed, so the test records'
    # rap sheets read the same whatever seed a switch runs with.
    rng = random.Random(f"nlets-switch:agencies:{state}")
    out = []
    for city, _zip in _CITIES[state]:
        county = rng.randint(1, 99)
        out.append(_Agency(
            ori=f"{state}{county:03d}{rng.randint(1, 40):02d}00",
            name=f"{city} POLICE DEPT",
            court_ori=f"{state}{county:03d}{rng.randint(10, 99):03d}J",
            court=f"{city} CRIMINAL COURT",
        ))
    return tuple(out)


class _Generator:
    """Draws one state's records; one random stream per file."""

    def __init__(self, state: str, seed: int) -> None:
        self.state = state
        self.seed = seed
        self.agencies = _agencies(state)
        self.name_keys: set[tuple[str, str, dt.date]] = {("SMITH", "JOHN", dt.date(1950, 1, 1))}
        self.socs: set[str] = {_TEST_SOC}

    def rng(self, stream: str) -> random.Random:
        # Python seeds Random from a str via SHA-512: stable in every process.
        return random.Random(f"nlets-switch:{self.seed}:{self.state}:{stream}")

    def address(self, rng: random.Random) -> Address:
        city, zip_code = rng.choice(_CITIES[self.state])
        street = f"{rng.randint(100, 9899)} {rng.choice(_STREETS)}"
        if rng.random() < 0.2:
            street += f" APT {rng.randint(1, 40)}"
        return Address(street, city, _POSTAL.get(self.state, self.state), zip_code)

    def person(self, rng: random.Random) -> Person:
        while True:
            sex = rng.choice("MF")
            firsts = _MALE if sex == "M" else _FEMALE
            first = rng.choice(firsts)
            last = rng.choice(_LAST)
            dob = _date_between(rng, dt.date(1945, 1, 1), dt.date(2006, 12, 31))
            # (LAST, FIRST, DOB) is unique in a state, so a name search
            # finds exactly the record it was drawn from.
            if (last, first, dob) not in self.name_keys:
                self.name_keys.add((last, first, dob))
                break
        middle = rng.choice(firsts) if rng.random() < 0.7 else ""
        # NCIC's NAM holds 30 characters: drop the middle name rather than cut.
        if middle == first or len(f"{last},{first} {middle}") > 30:
            middle = ""
        if sex == "M":
            height = min(79, max(61, round(rng.gauss(70, 3))))
            weight = min(340, max(120, round(rng.gauss(185, 30))))
        else:
            height = min(74, max(58, round(rng.gauss(64.5, 2.8))))
            weight = min(300, max(95, round(rng.gauss(152, 28))))
        hair = _weighted(rng, _HAIR)
        if dob.year < 1965 and rng.random() < 0.5:
            hair = rng.choice(("GRY", "WHI"))
        # Area numbers 900-999 are never issued as SSNs: no real person's.
        soc = _unique(rng, lambda r: f"9{r.randint(0, 99):02d}{r.randint(1, 99):02d}"
                                     f"{r.randint(1, 9999):04d}", self.socs)
        return Person(
            last=last, first=first, middle=middle, dob=dob, sex=sex,
            race=_weighted(rng, _RACES), height=height, weight=weight,
            eyes=_weighted(rng, _EYES), hair=hair, address=self.address(rng), soc=soc,
        )

    # -- drivers -----------------------------------------------------------

    def drivers(self, count: int) -> list[Driver]:
        rng = self.rng("drivers")
        olns: set[str] = {TEST_OLN}
        fmt = _OLN_FORMAT[self.state]
        basic = _BASIC_CLASS.get(self.state, "D")
        out = []
        for _ in range(count):
            person = self.person(rng)
            oln = _unique(rng, lambda r: _pattern(r, fmt), olns)
            issued = _date_between(rng, max(dt.date(2017, 1, 1),
                                            _anniversary(person.dob, person.dob.year + 16)),
                                   _AS_OF)
            expires = _anniversary(person.dob, issued.year + 8)
            cls, endorsements = basic, "NONE"
            roll = rng.random()
            if roll < 0.05:
                cls = rng.choice("AB")
                endorsements = " ".join(sorted(rng.sample("HNPTX", rng.randint(1, 2))))
            elif roll < 0.17:
                endorsements = "M"
            violations = self.violations(rng, person)
            suspensions = self.suspensions(rng, violations)
            status = "VALID"
            roll = rng.random()
            if roll < 0.06:
                status = "SUSPENDED"
                start = _date_between(rng, dt.date(2023, 1, 1), _AS_OF)
                reason = rng.choice(("FAILURE TO APPEAR", "FAILURE TO PAY FINE",
                                     "NO INSURANCE"))
                suspensions = (*suspensions, Suspension(start, None, reason))
            elif roll < 0.075:
                status = "REVOKED"
                start = _date_between(rng, dt.date(2022, 1, 1), _AS_OF)
                suspensions = (*suspensions, Suspension(start, None, "HABITUAL OFFENDER"))
            restrictions = "NONE"
            if any(v.description == _DUI for v in violations):
                restrictions = "I - IGNITION INTERLOCK"
            elif rng.random() < 0.3:
                restrictions = "B - CORRECTIVE LENSES"
            out.append(Driver(
                person=person, oln=oln, state=self.state, license_class=cls,
                endorsements=endorsements, status=status, issued=issued, expires=expires,
                restrictions=restrictions, violations=violations,
                suspensions=tuple(sorted(suspensions, key=lambda s: s.effective)),
            ))
        return out

    def violations(self, rng: random.Random, person: Person) -> tuple[Violation, ...]:
        count = _weighted(rng, ((0, 55), (1, 25), (2, 12), (3, 5), (4, 3)))
        first = max(dt.date(2014, 1, 1), _anniversary(person.dob, person.dob.year + 16))
        out = []
        for _ in range(count):
            when = _date_between(rng, first, _AS_OF - dt.timedelta(days=90))
            description, points = rng.choice(_VIOLATIONS)
            out.append(Violation(when, when + dt.timedelta(days=rng.randint(20, 90)),
                                 points, description))
        return tuple(sorted(out, key=lambda v: v.date))

    def suspensions(self, rng: random.Random,
                    violations: Sequence[Violation]) -> tuple[Suspension, ...]:
        out = []
        for v in violations:
            if v.description == _DUI:
                days = rng.choice((90, 180, 365))
                out.append(Suspension(v.convicted, v.convicted + dt.timedelta(days=days),
                                      "DUI CONVICTION"))
        if sum(v.points for v in violations) >= 12:
            last = violations[-1].convicted
            out.append(Suspension(last, last + dt.timedelta(days=90), "POINTS ACCUMULATION"))
        return tuple(out)

    # -- vehicles ----------------------------------------------------------

    def vehicles(self, count: int, owners: Sequence[Person]) -> list[Vehicle]:
        rng = self.rng("vehicles")
        formats = {kind: rng.choice(fmts) for kind, fmts in _PLATE_FORMATS.items()}
        plates: set[str] = {TEST_PLATE[0]}
        vins: set[str] = {TEST_VIN}
        out = []
        for _ in range(count):
            vma, vmo, vst, wmi, lit = rng.choice(_MODELS)
            vyr = rng.randint(2000, 2025)
            if lit == "PC" and rng.random() < 0.05:
                lit = "PE"  # personalised: letters chosen by the owner
                lic = _unique(rng, lambda r: "".join(r.choice(_LETTERS)
                                                     for _ in range(r.randint(4, 7))), plates)
            else:
                lic = _unique(rng, functools.partial(_pattern, fmt=formats[lit]), plates)
            vin = _unique(rng, functools.partial(_make_vin, wmi=wmi, year=vyr), vins)
            expires = _date_between(rng, dt.date(2025, 1, 1), dt.date(2027, 12, 31))
            expires = _month_end(expires)
            status = "SUSPENDED - NO INSURANCE" if rng.random() < 0.03 else "VALID"
            out.append(Vehicle(
                lic=lic, lit=lit, liy=str(expires.year), state=self.state, vin=vin,
                vyr=vyr, vma=vma, vmo=vmo, vst=vst, vco=_weighted(rng, _COLOURS),
                owner=rng.choice(owners), expires=expires, status=status,
            ))
        return out

    # -- criminal histories --------------------------------------------------

    def histories(self, count: int, drivers: Sequence[Driver]) -> list[CriminalHistory]:
        rng = self.rng("histories")
        sids: set[str] = {fixed_sid(self.state)}
        fbis: set[str] = {TEST_FBI}
        mnus: set[str] = {_TEST_MNU}
        # Half the subjects also hold a licence here, as in life.
        from_drivers = rng.sample(list(drivers), min(len(drivers), count // 2))
        subjects: list[tuple[Person, str]] = [(d.person, d.oln) for d in from_drivers]
        while len(subjects) < count:
            subjects.append((self.person(rng), ""))
        out = []
        for person, oln in subjects:
            sid = _unique(rng, lambda r: f"{self.state}{r.randint(0, 99_999_999):08d}", sids)
            fbi = _unique(rng, lambda r: _pattern(r, "######@@#"), fbis)
            mnu = ""
            if rng.random() < 0.1:
                mnu = _unique(rng, lambda r: f"{r.choice(('AR', 'PP'))}-"
                                             f"{r.randint(10_000_000, 999_999_999):09d}", mnus)
            pob = self.state if rng.random() < 0.6 else rng.choice((*STATES, "MM", "YY"))
            aliases = tuple(sorted({
                f"{person.last},{rng.choice(_MALE if person.sex == 'M' else _FEMALE)}"
                for _ in range(_weighted(rng, ((0, 60), (1, 30), (2, 10))))
            } - {f"{person.last},{person.first}"}))
            smt = tuple(sorted(set(rng.sample(_SMT, _weighted(rng, ((0, 40), (1, 35),
                                                                     (2, 15), (3, 10)))))))
            out.append(CriminalHistory(
                person=person, sid=sid, fbi=fbi, mnu=mnu, oln=oln, pob=pob,
                aliases=aliases, smt=smt, fpc=_make_fpc(rng),
                cycles=self.cycles(rng, person, (person.name, *aliases)),
            ))
        return out

    def cycles(self, rng: random.Random, person: Person,
               names: Sequence[str]) -> tuple[Cycle, ...]:
        count = _weighted(rng, ((1, 40), (2, 25), (3, 15), (4, 12), (5, 8)))
        first = _anniversary(person.dob, person.dob.year + 18)
        dates = sorted(_date_between(rng, first, _AS_OF - dt.timedelta(days=30))
                       for _ in range(count))
        out = []
        for arrested in dates:
            agency = rng.choice(self.agencies)
            # One court date per cycle; a case not yet heard by the data
            # set's "as of" date is pending.
            heard: dt.date | None = arrested + dt.timedelta(days=rng.randint(20, 240))
            if heard is not None and heard > _AS_OF:
                heard = None
            charges = []
            for _ in range(_weighted(rng, ((1, 60), (2, 30), (3, 10)))):
                code, literal, severity, _w = rng.choices(
                    _OFFENSES, [o[3] for o in _OFFENSES])[0]
                charges.append(self.charge(rng, heard, code, literal, severity))
            out.append(Cycle(
                arrest_date=arrested,
                tracking=f"{arrested.year % 100:02d}{rng.randint(0, 999_999):06d}",
                agency_ori=agency.ori, agency=agency.name,
                court_ori=agency.court_ori, court=agency.court,
                court_case=f"CR{arrested.year}-{rng.randint(1, 999_999):06d}",
                name_used=rng.choice(names), charges=tuple(charges),
            ))
        return tuple(out)

    def charge(self, rng: random.Random, heard: dt.date | None, code: str, literal: str,
               severity: str) -> Charge:
        disposition = _weighted(rng, _DISPOSITIONS)
        when = heard
        sentence = ""
        if heard is None:
            disposition = "PENDING"
        elif disposition == "NO DISPOSITION REPORTED":
            # Common on real rap sheets: the court never reported back.
            when = None
        elif disposition == "DEFERRED ADJUDICATION":
            sentence = f"{rng.choice((6, 12, 18, 24))} MONTHS PROBATION"
        elif disposition == "CONVICTED":
            sentence = _sentence(rng, code, severity)
        return Charge(code, literal, severity, _weighted(rng, ((1, 85), (2, 10), (3, 5))),
                      disposition, when, sentence)


def _sentence(rng: random.Random, code: str, severity: str) -> str:
    if code == "0999":
        return f"{rng.randint(15, 40)} YEARS PRISON"
    if code == "5404":
        return (f"FINE ${rng.choice((500, 750, 1000, 1500))}, {rng.choice((1, 2, 10, 30))}"
                " DAYS JAIL, ALCOHOL EDUCATION")
    if severity == "FELONY":
        return rng.choice((
            f"{rng.randint(1, 10)} YEARS PRISON",
            f"{rng.choice((24, 36, 48, 60))} MONTHS PROBATION",
            f"{rng.choice((90, 180, 365))} DAYS JAIL, {rng.choice((24, 36))} MONTHS PROBATION",
        ))
    return rng.choice((
        f"{rng.choice((2, 5, 10, 30, 60, 90, 180))} DAYS JAIL",
        f"FINE ${rng.choice((100, 250, 500, 1000))}",
        f"{rng.choice((6, 12, 18, 24))} MONTHS PROBATION",
        f"{rng.choice((10, 30))} DAYS JAIL SUSPENDED, FINE ${rng.choice((100, 250))}",
    ))


def _make_vin(rng: random.Random, wmi: str, year: int) -> str:
    vds = "".join(rng.choice(_VIN_CHARS) for _ in range(5))
    tail = (_VIN_YEAR[(year - 1980) % 30] + rng.choice(_VIN_CHARS)
            + f"{rng.randint(0, 999_999):06d}")
    draft = f"{wmi}{vds}0{tail}"
    return f"{wmi}{vds}{vin_check_digit(draft)}{tail}"


def _make_fpc(rng: random.Random) -> str:
    # Ten fingers, two characters each: a pattern code or a ridge count.
    parts = []
    for _ in range(10):
        if rng.random() < 0.55:
            parts.append(f"{rng.randint(1, 25):02d}")
        else:
            parts.append(rng.choice(_FPC_PATTERNS))
    return "".join(parts)


def _month_end(day: dt.date) -> dt.date:
    # Registrations run to the last day of a month.
    nxt = day.replace(day=28) + dt.timedelta(days=4)
    return nxt - dt.timedelta(days=nxt.day)


# --------------------------------------------------------------------------
# The fixed test records
# --------------------------------------------------------------------------


def _test_records(state: str) -> tuple[Driver, Vehicle, CriminalHistory]:
    city, zip_code = _CITIES[state][0]
    address = Address("100 MAIN ST", city, _POSTAL.get(state, state), zip_code)
    person = Person(
        last="SMITH", first="JOHN", middle="", dob=dt.date(1950, 1, 1), sex="M", race="W",
        height=70, weight=180, eyes="BRO", hair="BRO", address=address, soc=_TEST_SOC,
    )
    driver = Driver(
        person=person, oln=TEST_OLN, state=state,
        license_class=_BASIC_CLASS.get(state, "D"), endorsements="NONE", status="VALID",
        issued=dt.date(2024, 1, 1), expires=dt.date(2032, 1, 1),
        restrictions="B - CORRECTIVE LENSES",
        violations=(Violation(dt.date(2023, 3, 15), dt.date(2023, 5, 1), 3,
                              "SPEEDING 11-15 MPH OVER LIMIT"),),
        suspensions=(),
    )
    lic, liy, lit = TEST_PLATE
    vehicle = Vehicle(
        lic=lic, lit=lit, liy=liy, state=state, vin=TEST_VIN, vyr=2019, vma="FORD",
        vmo="F15", vst="PK", vco="BLU", owner=person, expires=dt.date(2027, 6, 30),
        status="VALID",
    )
    agency = _agencies(state)[0]
    history = CriminalHistory(
        person=person, sid=fixed_sid(state), fbi=TEST_FBI, mnu=_TEST_MNU, oln=TEST_OLN,
        pob=state, aliases=("SMITH,JACK",), smt=("TAT R ARM",), fpc="12PI09PM13CI10AA1511",
        cycles=(
            Cycle(
                arrest_date=dt.date(1975, 6, 14), tracking="75012345",
                agency_ori=agency.ori, agency=agency.name, court_ori=agency.court_ori,
                court=agency.court, court_case="CR1975-000123", name_used="SMITH,JOHN",
                charges=(Charge("2399", "LARCENY", "MISDEMEANOR", 1, "CONVICTED",
                                dt.date(1975, 8, 1), "30 DAYS JAIL SUSPENDED"),),
            ),
            Cycle(
                arrest_date=dt.date(1988, 3, 2), tracking="88054321",
                agency_ori=agency.ori, agency=agency.name, court_ori=agency.court_ori,
                court=agency.court, court_case="CR1988-004567", name_used="SMITH,JACK",
                charges=(
                    Charge("5404", "DRIVING UNDER INFLUENCE LIQUOR", "MISDEMEANOR", 1,
                           "CONVICTED", dt.date(1988, 5, 10), "FINE $500, 2 DAYS JAIL"),
                    Charge("4899", "OBSTRUCTING POLICE", "MISDEMEANOR", 1, "DISMISSED",
                           dt.date(1988, 5, 10), ""),
                ),
            ),
        ),
    )
    return driver, vehicle, history


# --------------------------------------------------------------------------
# Normalising what the inquirer typed
# --------------------------------------------------------------------------

_SUFFIXES: Final = frozenset({"JR", "SR", "II", "III", "IV", "V"})
_NOT_NAME = re.compile(r"[^A-Z, -]")
_DIGITS6 = re.compile(r"[0-9]{6}")
_DIGITS8 = re.compile(r"[0-9]{8}")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_TOKEN = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)?")
_TEXT_NAME = re.compile(r"([A-Z][A-Z-]*) ?, ?([A-Z]+)")


@dataclass(frozen=True, slots=True)
class _Name:
    last: str
    first: str
    middle: str


def _parse_name(value: str) -> _Name | None:
    """``LAST,FIRST MIDDLE SUFFIX`` (FIELDS.md); apostrophes and dots dropped."""
    text = _NOT_NAME.sub("", value.upper().replace("'", ""))
    last, comma, rest = text.partition(",")
    last = " ".join(last.split())
    tokens = rest.split()
    if tokens and tokens[-1] in _SUFFIXES:
        tokens.pop()
    if not comma or not last or not tokens:
        return None
    return _Name(last, tokens[0], tokens[1] if len(tokens) > 1 else "")


def _dob_candidates(value: str) -> tuple[dt.date, ...]:
    """Dates ``value`` may mean: ``CCYYMMDD`` gives one, ``MMDDYY`` up to two.

    A 2-digit year could be 19YY or 20YY; both are tried, since no clock may
    be read here and no generated person is born after 2006, the pair never
    finds two different people.
    """
    text = value.strip()
    if _DIGITS8.fullmatch(text):
        candidates = [(int(text[:4]), int(text[4:6]), int(text[6:]))]
    elif _DIGITS6.fullmatch(text):
        month, day, yy = int(text[:2]), int(text[2:4]), int(text[4:])
        candidates = [(1900 + yy, month, day), (2000 + yy, month, day)]
    else:
        return ()
    out = []
    for year, month, day in candidates:
        try:
            out.append(dt.date(year, month, day))
        except ValueError:
            continue
    return tuple(out)


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


def _person_matches(person: Person, name: _Name, dobs: Sequence[dt.date] | None,
                    sex: str) -> bool:
    if dobs is not None and person.dob not in dobs:
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
# Writing the answers
# --------------------------------------------------------------------------


def _d(day: dt.date | None) -> str:
    return day.strftime("%m/%d/%Y") if day else "          "


def _person_lines(p: Person) -> list[str]:
    street, city_line = p.address.lines()
    return [
        f"NAME: {p.name}",
        f"ADDRESS: {street}",
        f"         {city_line}",
        f"DOB: {_d(p.dob)}   SEX: {p.sex}   RACE: {p.race}",
        f"HGT: {p.height // 12}-{p.height % 12:02d}   WGT: {p.weight}   EYES: {p.eyes}"
        f"   HAIR: {p.hair}",
    ]


def _status(stored: str, expires: dt.date, today: dt.date | None) -> str:
    if stored == "VALID" and today is not None and expires < today:
        return "EXPIRED"
    return stored


def _driver_lines(d: Driver, today: dt.date | None, history: bool) -> list[str]:
    lines = _person_lines(d.person)
    lines += [
        f"OLN: {d.oln}   STATE: {d.state}   CLASS: {d.license_class}"
        f"   ENDORSEMENTS: {d.endorsements}",
        f"STATUS: {_status(d.status, d.expires, today)}",
        f"ISSUED: {_d(d.issued)}   EXPIRES: {_d(d.expires)}",
        f"RESTRICTIONS: {d.restrictions}",
    ]
    if not history:
        return lines
    points = sum(v.points for v in d.violations)
    lines += ["DRIVING HISTORY",
              f"CONVICTIONS: {len(d.violations)}   POINTS: {points}"]
    if d.violations:
        lines.append("  VIOLATION  CONVICTED  PTS  DESCRIPTION")
        lines += [f"  {_d(v.date)} {_d(v.convicted)} {v.points:>3}  {v.description}"
                  for v in d.violations]
    if d.suspensions:
        lines += ["SUSPENSIONS/REVOCATIONS:", "  EFFECTIVE  ENDS       REASON"]
        lines += [f"  {_d(s.effective)} {_d(s.ends) if s.ends else 'INDEF     '} {s.reason}"
                  for s in d.suspensions]
    else:
        lines.append("SUSPENSIONS/REVOCATIONS: NONE")
    return lines


def _vehicle_lines(v: Vehicle, today: dt.date | None) -> list[str]:
    street, city_line = v.owner.address.lines()
    return [
        f"PLATE: {v.lic}   STATE: {v.state}   TYPE: {v.lit}   YEAR: {v.liy}",
        f"VIN: {v.vin}",
        f"VEHICLE YEAR: {v.vyr}   MAKE: {v.vma}   MODEL: {v.vmo}   STYLE: {v.vst}"
        f"   COLOR: {v.vco}",
        f"REGISTERED OWNER: {v.owner.name}",
        f"ADDRESS: {street}",
        f"         {city_line}",
        f"REGISTRATION EXPIRES: {_d(v.expires)}   STATUS: {_status(v.status, v.expires, today)}",
    ]


def _identifiers(h: CriminalHistory) -> str:
    parts = [f"SID: {h.sid}", f"FBI: {h.fbi}", f"SOC: {h.person.soc}"]
    if h.mnu:
        parts.append(f"MNU: {h.mnu}")
    return "   ".join(parts)


def _rap_sheet_lines(h: CriminalHistory) -> list[str]:
    p = h.person
    lines = [
        "IDENTIFICATION",
        f"NAME: {p.name}",
        f"ALIASES: {'; '.join(h.aliases) if h.aliases else 'NONE'}",
        _identifiers(h),
        f"DOB: {_d(p.dob)}   POB: {h.pob}   SEX: {p.sex}   RACE: {p.race}",
        f"HGT: {p.height // 12}-{p.height % 12:02d}   WGT: {p.weight}   EYES: {p.eyes}"
        f"   HAIR: {p.hair}",
        f"SCARS/MARKS/TATTOOS: {'; '.join(h.smt) if h.smt else 'NONE'}",
        f"FINGERPRINT CLASS: {h.fpc}",
        f"CRIMINAL HISTORY: {len(h.cycles)} CYCLE{'S' if len(h.cycles) != 1 else ''}",
    ]
    for n, c in enumerate(h.cycles, 1):
        lines += [
            f"CYCLE {n:03d}",
            f"  ARREST DATE: {_d(c.arrest_date)}   TRACKING NUMBER: {c.tracking}",
            f"  ARRESTING AGENCY: {c.agency_ori} {c.agency}",
            f"  NAME USED: {c.name_used}",
        ]
        reported = [ch for ch in c.charges if ch.disposition_date is not None]
        for m, ch in enumerate(c.charges, 1):
            lines.append(f"  CHARGE {m:02d}: {ch.offense} {ch.literal} - {ch.severity}"
                         f"   COUNTS: {ch.counts}")
        if reported:
            lines.append(f"  COURT: {c.court_ori} {c.court}   CASE: {c.court_case}")
        for m, ch in enumerate(c.charges, 1):
            when = f"{_d(ch.disposition_date)} " if ch.disposition_date else ""
            lines.append(f"    CHARGE {m:02d} DISPOSITION: {when}{ch.disposition}")
            if ch.sentence:
                lines.append(f"      SENTENCE: {ch.sentence}")
    lines.append("END OF RECORD")
    return lines


def _supplement_lines(h: CriminalHistory) -> list[str]:
    p = h.person
    last_event = h.cycles[-1].arrest_date if h.cycles else None
    other = [f"SOC/{p.soc}"]
    if h.mnu:
        other.append(f"MNU/{h.mnu}")
    if h.oln:
        other.append(f"OLN/{h.oln}")
    return [
        f"NAME: {p.name}   SID: {h.sid}   FBI: {h.fbi}",
        f"DOB: {_d(p.dob)}   SEX: {p.sex}   RACE: {p.race}",
        f"ALIASES: {'; '.join(h.aliases) if h.aliases else 'NONE'}",
        f"SCARS/MARKS/TATTOOS: {'; '.join(h.smt) if h.smt else 'NONE'}",
        f"FINGERPRINT CLASS: {h.fpc}",
        f"FINGERPRINTS ON FILE: YES, LAST TAKEN {_d(last_event)}",
        f"PHOTO ON FILE: YES, LAST TAKEN {_d(last_event)}",
        f"OTHER IDENTIFIERS: {'  '.join(other)}",
        f"LAST KNOWN ADDRESS: {p.address.one_line()}",
        "CERTIFIED COPIES: REQUEST FROM THE STATE IDENTIFICATION BUREAU",
    ]


_TITLES: Final[Mapping[str, str]] = {
    "DQ": "DMV RESPONSE - DRIVER LICENSE",
    "KQ": "DMV RESPONSE - DRIVER HISTORY",
    "RQ": "DMV RESPONSE - VEHICLE REGISTRATION",
    "IQ": "STATE IDENTIFICATION BUREAU - CRIMINAL HISTORY",
    "FQ": "STATE IDENTIFICATION BUREAU - CRIMINAL HISTORY FULL RECORD",
    "AQ": "STATE IDENTIFICATION BUREAU - SUPPLEMENTAL RECORD INFORMATION",
}

#: The second line of every hit, so a screen never passes for a real record.
_SIMULATED: Final = "*** SIMULATED STATE - SYNTHETIC TEST DATA ***"


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
        gen = _Generator(code, seed)
        test_driver, test_vehicle, test_history = _test_records(code)
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
          text and searched for SIDs, FBI numbers and ``LAST,FIRST`` names.

        ``DOB`` may be ``MMDDYY`` or ``CCYYMMDD``. ``IMQ/Y`` on a ``DQ`` or
        ``AQ`` hit adds a line saying no image is available. ``today``, when given,
        turns a licence or registration past its expiry into ``EXPIRED``;
        nothing else depends on it. A miss answers the title line and the
        line ``NO RECORD``. Never raises for any field values.
        """
        mke = key.strip().upper()
        if mke not in INQUIRY_KEYS:
            raise ValueError(f"a simulated state does not answer {key!r}")
        f = {str(k).strip().upper(): str(v) for k, v in fields.items()}
        blocks: list[list[str]]
        if mke in ("DQ", "KQ"):
            blocks = [_driver_lines(d, today, mke == "KQ") for d in self._find_drivers(f)]
        elif mke == "RQ":
            blocks = [_vehicle_lines(v, today) for v in self._find_vehicles(f)]
        elif mke == "AQ":
            blocks = [_supplement_lines(h) for h in self._find_supplement(f)]
        else:
            blocks = [_rap_sheet_lines(h) for h in self._find_histories(mke, f)]
        title = f"{self.state} {_TITLES[mke]}"
        if not blocks:
            return f"{title}\n{NO_RECORD}"
        lines = [title, _SIMULATED]
        for n, block in enumerate(blocks):
            if n:
                lines.append("")
            lines += block
        if mke in ("DQ", "AQ") and f.get("IMQ", "").strip().upper() == "Y":
            # Say so rather than ignore the request: there are no images.
            lines.append("IMAGE: NOT AVAILABLE FROM A SIMULATED STATE")
        return "\n".join(lines)

    # -- searches ------------------------------------------------------------

    def _find_drivers(self, f: Mapping[str, str]) -> list[Driver]:
        hits: list[Driver] = []
        oln = _alnum(f.get("OLN", ""))
        if oln and oln in self._by_oln:
            hits.append(self._by_oln[oln])
        hits += self._by_name(self._drivers_by_name, f, need_dob=True)
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

    def _find_histories(self, mke: str, f: Mapping[str, str]) -> list[CriminalHistory]:
        hits: list[CriminalHistory] = []
        if mke == "FQ":
            hits += self._by_ids(f, ("SID", "FBI"))
        else:
            hits += self._by_name(self._histories_by_name, f, need_dob=True)
            hits += self._by_ids(f, ("SOC", "MNU"))
        return _dedupe(hits)

    def _find_supplement(self, f: Mapping[str, str]) -> list[CriminalHistory]:
        structured = ("SID", "FBI", "SOC", "MNU", "NAM")
        if any(f.get(tag, "").strip() for tag in structured):
            hits = self._by_ids(f, ("SID", "FBI", "SOC", "MNU"))
            hits += self._by_name(self._histories_by_name, f, need_dob=False)
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
    def _by_name(index: Mapping[tuple[str, str], Sequence[R]], f: Mapping[str, str], *,
                 need_dob: bool) -> list[R]:
        name = _parse_name(f.get("NAM", ""))
        if name is None:
            return []
        dob_text = f.get("DOB", "").strip()
        dobs: tuple[dt.date, ...] | None = _dob_candidates(dob_text) if dob_text else None
        if dobs is None and need_dob:
            return []
        sex = f.get("SEX", "").strip().upper()
        out = []
        for record in index.get((name.last, name.first), ()):
            if _person_matches(record.person, name, dobs, sex):
                out.append(record)
        return out


@functools.lru_cache(maxsize=128)
def _for_state(state: str, seed: int) -> StateData:
    return StateData(state, seed)
