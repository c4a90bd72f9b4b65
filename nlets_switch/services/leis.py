"""DHS LEIS: the synthetic person data set behind the ``AX`` responder.

PROTOCOL.md part 5 makes ``AX`` answer two keys from DHS data:

* ``GPQ`` (General Person Query): a search by name (aliases included,
  spelling variants found by phonetic matching, narrowed by DOB), by
  identifier (``SOC/``, ``PPN/``, ``ARN/``) or by address (``ADR/``), answered
  by a ``GPR`` summary (one line per person, each starting ``DIN/``) or
  ``NO RECORD``; a ``GPQ`` with ``DIN/`` returns the full record;
* ``IAQ`` (Immigration Alien Query): answered later by an ``IAR`` saying what
  DHS holds for the person.

This module is the data layer and the text of those answers. It is
synchronous (the asyncio side runs it in a worker thread) and never logs:
names, dates of birth and identifiers are criminal-justice information.

The data set is synthetic. It is made deterministically from a seed
(``random.Random(seed)``: the same seed gives the same rows), stored in
SQLite with indexes on the phonetic codes of every name and alias, DOB,
identifiers and normalised addresses, built in one transaction on first
use and reused afterwards. A few fixed test records (:data:`FIXED_DINS`)
exist whatever the seed. An agency adds its own records with
:meth:`LeisStore.load_file` (JSON Lines, see ``docs/leis.md``).

Phonetic codes come from :mod:`jellyfish` (metaphone and NYSIIS); ranking
among phonetic candidates uses its Jaro-Winkler similarity.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import re
import sqlite3
import textwrap
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jellyfish

from nlets_switch.errors import ErCode, MessageError, NletsError

__all__ = [
    "COMPONENTS",
    "DB_NAME",
    "DEFAULT_LIMIT",
    "FIXED_DINS",
    "Contact",
    "Hit",
    "Identifier",
    "LeisLoadError",
    "LeisStore",
    "Location",
    "Person",
    "SearchResult",
    "fixed_persons",
    "format_iar",
    "format_record",
    "format_summary",
    "normalize_address",
    "normalize_arn",
    "normalize_dob",
    "parse_load_file",
    "parse_name",
]

#: Bumped whenever the table layout changes; an older file is rebuilt.
SCHEMA_VERSION = 1

#: The file name of the data set inside the switch's data directory.
DB_NAME = "leis.sqlite"

#: Summary lines a GPR carries unless the caller says otherwise.
DEFAULT_LIMIT = 20

#: DHS components a prior contact can name.
COMPONENTS = ("ICE", "CBP", "USCIS")

#: Identifier kinds a person can carry, in the order a record lists them.
IDENTIFIER_KINDS = ("ARN", "SOC", "PPN", "FBI")

#: Dates in the generated data never pass this day, so that the data set
#: does not depend on when it was built (no clock reads).
DATA_AS_OF = _dt.date(2025, 12, 31)

#: Without ``today``, a two-digit DOB year ``YY`` below this pivot is 20YY,
#: otherwise 19YY (the same idea as POSIX ``strptime %y``, with a pivot
#: suited to dates of birth).
TWO_DIGIT_YEAR_PIVOT = 30

_LINE_WIDTH = 80

# Record origins in the ``person`` table.
_GENERATED = "generated"
_FIXED = "fixed"
_LOADED = "loaded"


# --------------------------------------------------------------------------
# The data model.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier: ``kind`` is ARN, SOC, PPN or FBI."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Location:
    """A known location; ``since``/``until`` are CCYYMMDD or empty (unknown /
    still there)."""

    address: str
    city: str
    state: str
    since: str = ""
    until: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """A prior DHS contact: when, which component, what kind, where."""

    date: str
    component: str
    kind: str
    place: str


@dataclass(frozen=True, slots=True)
class Person:
    """One person in the DHS data set.

    ``name`` and each alias are ``LAST,FIRST MIDDLE``; ``dobs`` are CCYYMMDD,
    the first being the one a summary shows.
    """

    din: str
    name: str
    dobs: tuple[str, ...]
    sex: str = "U"
    pob: str = "XX"
    aliases: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    locations: tuple[Location, ...] = ()
    contacts: tuple[Contact, ...] = ()
    status: str = ""
    remarks: str = ""

    def ids(self, kind: str) -> tuple[str, ...]:
        """The values of the identifiers of one kind."""
        return tuple(i.value for i in self.identifiers if i.kind == kind)

    @property
    def arn(self) -> str:
        """The first alien registration number, or empty."""
        found = self.ids("ARN")
        return found[0] if found else ""


@dataclass(frozen=True, slots=True)
class Hit:
    """One person found by a search, with what a summary line shows.

    ``matched`` is the alias the search matched, or empty when it matched the
    primary name or did not search names. ``how`` says what matched (NAME,
    ALIAS, PHONETIC, PHONETIC ALIAS, SOC, PPN, ARN, ADR, DIN); ``score`` is
    the Jaro-Winkler similarity for phonetic matches, 1.0 for exact ones.
    """

    din: str
    name: str
    dob: str
    sex: str
    matched: str = ""
    how: str = ""
    score: float = 1.0


@dataclass(frozen=True, slots=True)
class SearchResult:
    """The persons a search found, best first, at most the limit.

    ``total`` counts every person that matched; ``limit_reached`` is true when
    more matched than were returned.
    """

    hits: tuple[Hit, ...]
    total: int
    limit_reached: bool
    by: str = ""

    def __bool__(self) -> bool:
        return bool(self.hits)


class LeisLoadError(NletsError, ValueError):
    """A load file with bad rows; nothing of it was loaded.

    ``problems`` are ``line N: field: problem``, one per fault, in file order.
    """

    def __init__(self, problems: Sequence[str], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        #: The numbers of the bad lines, each once, in file order.
        self.lines = tuple(dict.fromkeys(
            int(m.group(1)) for p in self.problems if (m := re.match(r"line (\d+):", p))))
        head = f"{source}: " if source else ""
        super().__init__(
            f"{head}{len(self.lines)} bad row(s), nothing loaded\n" + "\n".join(self.problems)
        )


# --------------------------------------------------------------------------
# Normalisation helpers (pure).
# --------------------------------------------------------------------------

_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV", "V"})
_NAME_PART = r"[A-Z](?:[A-Z' -]*[A-Z])?"
_NAME_RE = re.compile(rf"{_NAME_PART},\s?{_NAME_PART}")
_NON_LETTERS = re.compile(r"[^A-Z]")


@dataclass(frozen=True, slots=True)
class ParsedName:
    """A name split into its parts, upper case, suffix dropped."""

    last: str
    first: str
    middle: str

    @property
    def display(self) -> str:
        """``LAST,FIRST MIDDLE`` (as much as is known)."""
        text = f"{self.last},{self.first}" if self.first else self.last
        return f"{text} {self.middle}" if self.middle else text


def parse_name(text: str) -> ParsedName:
    """Split ``LAST,FIRST MIDDLE SUFFIX`` (FIELDS.md ``NAM``); the space after
    the comma is optional, a name without a comma is a last name alone."""
    clean = " ".join(text.upper().split())
    last, _, rest = clean.partition(",")
    parts = rest.split()
    while len(parts) > 1 and parts[-1] in _SUFFIXES:
        parts.pop()
    return ParsedName(
        last=last.strip(),
        first=parts[0] if parts else "",
        middle=" ".join(parts[1:]),
    )


def _phonetic(text: str) -> tuple[str, str]:
    """Metaphone and NYSIIS codes of the letters of a name part."""
    letters = _NON_LETTERS.sub("", text.upper())
    if not letters:
        return "", ""
    return jellyfish.metaphone(letters), jellyfish.nysiis(letters)


# USPS Publication 28 abbreviations for the words that most often differ
# between two spellings of one address.
_ADDRESS_WORDS = {
    "STREET": "ST", "STR": "ST", "AVENUE": "AVE", "AV": "AVE", "AVEN": "AVE",
    "ROAD": "RD", "DRIVE": "DR", "BOULEVARD": "BLVD", "BOUL": "BLVD", "LANE": "LN",
    "COURT": "CT", "PLACE": "PL", "TERRACE": "TER", "PARKWAY": "PKWY", "HIGHWAY": "HWY",
    "CIRCLE": "CIR", "TRAIL": "TRL", "WAY": "WAY", "SQUARE": "SQ", "ALLEY": "ALY",
    "NORTH": "N", "SOUTH": "S", "EAST": "E", "WEST": "W", "NORTHEAST": "NE",
    "NORTHWEST": "NW", "SOUTHEAST": "SE", "SOUTHWEST": "SW", "APARTMENT": "APT",
    "SUITE": "STE", "UNIT": "UNIT", "NUMBER": "APT", "NO": "APT",
}
_ADDRESS_PUNCT = re.compile(r"[^A-Z0-9 ]+")


def normalize_address(text: str) -> str:
    """An address reduced for comparison: upper case, punctuation out,
    ``#`` as APT, common words abbreviated as USPS does (STREET -> ST)."""
    clean = _ADDRESS_PUNCT.sub(" ", text.upper().replace("#", " APT "))
    return " ".join(_ADDRESS_WORDS.get(w, w) for w in clean.split())


def _real_date(year: int, month: int, day: int) -> _dt.date | None:
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def normalize_dob(value: str, today: _dt.date | None = None) -> str:
    """A DOB as CCYYMMDD from ``CCYYMMDD`` or ``MMDDYY`` (FIELDS.md ``DOB``).

    For ``MMDDYY`` the century is the latest that does not put the date
    after ``today``; without ``today`` a year below
    :data:`TWO_DIGIT_YEAR_PIVOT` is 20YY, otherwise 19YY. Anything that is
    not a real date raises :class:`MessageError` ``.05.``.
    """
    text = value.strip()
    if re.fullmatch(r"\d{8}", text):
        if _real_date(int(text[:4]), int(text[4:6]), int(text[6:])) is not None:
            return text
    elif re.fullmatch(r"\d{6}", text):
        month, day, yy = int(text[:2]), int(text[2:4]), int(text[4:])
        if today is not None:
            year = 2000 + yy
            candidate = _real_date(year, month, day)
            if candidate is not None and candidate > today:
                year -= 100
        else:
            year = (2000 if yy < TWO_DIGIT_YEAR_PIVOT else 1900) + yy
        found = _real_date(year, month, day)
        if found is not None:
            return found.strftime("%Y%m%d")
    raise MessageError(ErCode.DOB, f"DOB/{_printable(text)[:20]}")


def _digits(value: str) -> str:
    return re.sub(r"[\s-]", "", value)


def normalize_arn(value: str) -> str | None:
    """An A-number as 9 digits (``A`` prefix, hyphens and spaces dropped, an
    8-digit number zero-padded), or None when it is not 8 or 9 digits."""
    text = _digits(value.upper())
    if text.startswith("A"):
        text = text[1:]
    if not re.fullmatch(r"\d{8,9}", text):
        return None
    return text.zfill(9)


def _printable(text: str) -> str:
    """Printable ASCII only: anything else becomes ``?`` (answers are 7-bit)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _to_ascii(text: str) -> str:
    """Upper case, accents dropped (MUÑOZ -> MUNOZ), spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.upper().split())


# --------------------------------------------------------------------------
# The fixed test records (documented in docs/leis.md).
# --------------------------------------------------------------------------


def fixed_persons() -> tuple[Person, ...]:
    """The test records that exist whatever the seed, with fixed DINs."""
    return (
        Person(
            din="D000000001",
            name="GARCIA,MARIA",
            aliases=("LOPEZ,MARIA",),
            dobs=("19850312",),
            sex="F",
            pob="MM",
            identifiers=(
                Identifier("ARN", "204518736"),
                Identifier("PPN", "G04581234"),
            ),
            locations=(
                Location("1420 W MCDOWELL RD", "PHOENIX", "AZ", "20080115", "20160630"),
                Location("3318 E BROADWAY BLVD", "TUCSON", "AZ", "20160701", ""),
            ),
            contacts=(
                Contact("20040822", "CBP", "ADMISSION", "NOGALES, AZ PORT OF ENTRY"),
                Contact("20150310", "USCIS", "APPLICATION", "PHOENIX FIELD OFFICE, AZ"),
                Contact("20190214", "ICE", "ENCOUNTER", "TUCSON, AZ"),
            ),
            status="LAWFUL PERMANENT RESIDENT",
            remarks="FIXED TEST RECORD. CONDITIONS REMOVED 2017.",
        ),
        Person(
            din="D000000002",
            name="NGUYEN,VAN THANH",
            dobs=("19720704", "19720407"),
            sex="M",
            pob="YY",
            identifiers=(
                Identifier("ARN", "012345678"),
                Identifier("SOC", "900123456"),
                Identifier("FBI", "482913KA7"),
            ),
            locations=(
                Location("8802 BELLAIRE BLVD APT 214", "HOUSTON", "TX", "20010301", ""),
            ),
            contacts=(
                Contact("19950611", "CBP", "ADMISSION", "LOS ANGELES INTL AIRPORT, CA"),
                Contact("20180923", "ICE", "ARREST", "HOUSTON, TX"),
                Contact("20181002", "ICE", "DETENTION", "HOUSTON CONTRACT DETENTION FACILITY, TX"),
            ),
            status="REMOVAL PROCEEDINGS PENDING",
            remarks="FIXED TEST RECORD. RELEASED ON BOND 20181120.",
        ),
        Person(
            din="D000000003",
            name="SMITH,JOHN ALLAN",
            aliases=("SMYTH,JOHN",),
            dobs=("19900530",),
            sex="M",
            pob="YY",
            identifiers=(Identifier("PPN", "X7654321"),),
            locations=(
                Location("45 W 45TH ST APT 9C", "NEW YORK", "NY", "20190605", ""),
            ),
            contacts=(
                Contact("20190601", "CBP", "ADMISSION", "JFK INTL AIRPORT, NY"),
            ),
            status="NONIMMIGRANT VISITOR (B-2), OVERSTAY",
            remarks="FIXED TEST RECORD. ADMITTED UNTIL 20191130.",
        ),
        Person(
            din="D000000004",
            name="HERNANDEZ,JOSE LUIS",
            dobs=("19900115",),
            sex="M",
            pob="MM",
            identifiers=(Identifier("ARN", "098765432"),),
            locations=(
                Location("500 S CONGRESS AVE", "AUSTIN", "TX", "20200101", ""),
                Location("2100 N MESA ST", "EL PASO", "TX", "20120801", "20191231"),
            ),
            contacts=(
                Contact("20120715", "CBP", "APPREHENSION", "EL PASO, TX"),
                Contact("20130402", "USCIS", "APPLICATION", "EL PASO FIELD OFFICE, TX"),
            ),
            status="ASYLUM APPLICANT, PENDING",
            remarks="FIXED TEST RECORD. SHARES AN ADDRESS WITH D000000005.",
        ),
        Person(
            din="D000000005",
            name="HERNANDEZ,ANA",
            dobs=("19920920",),
            sex="F",
            pob="MM",
            identifiers=(Identifier("SOC", "900450987"),),
            locations=(
                Location("500 S CONGRESS AVE", "AUSTIN", "TX", "20200101", ""),
            ),
            contacts=(
                Contact("20150118", "USCIS", "APPLICATION", "AUSTIN, TX"),
            ),
            status="TEMPORARY PROTECTED STATUS",
            remarks="FIXED TEST RECORD.",
        ),
    )


#: The DINs of the fixed test records; a load file may not replace them.
FIXED_DINS = tuple(p.din for p in fixed_persons())


# --------------------------------------------------------------------------
# The synthetic generator.
# --------------------------------------------------------------------------

# Surnames weighted roughly as they occur in DHS-facing populations; every
# value here is invented data, not drawn from any real record.
_SURNAMES: tuple[tuple[str, int], ...] = (
    ("GARCIA", 30), ("RODRIGUEZ", 25), ("MARTINEZ", 25), ("HERNANDEZ", 28),
    ("LOPEZ", 25), ("GONZALEZ", 25), ("PEREZ", 18), ("SANCHEZ", 18), ("RAMIREZ", 16),
    ("TORRES", 14), ("FLORES", 14), ("RIVERA", 14), ("GOMEZ", 12), ("DIAZ", 12),
    ("CRUZ", 10), ("MORALES", 10), ("REYES", 10), ("GUTIERREZ", 9), ("ORTIZ", 9),
    ("CHAVEZ", 9), ("RAMOS", 8), ("RUIZ", 8), ("ALVAREZ", 8), ("MENDOZA", 8),
    ("CASTILLO", 7), ("JIMENEZ", 7), ("VASQUEZ", 7), ("MORENO", 7), ("ROMERO", 7),
    ("HERRERA", 6), ("MEDINA", 6), ("AGUILAR", 6), ("VARGAS", 6), ("CASTRO", 6),
    ("GUZMAN", 5), ("MUNOZ", 5), ("SALAZAR", 5), ("DELGADO", 5), ("CONTRERAS", 5),
    ("ESPINOZA", 4), ("SANDOVAL", 4), ("FIGUEROA", 4), ("DOMINGUEZ", 4), ("VEGA", 4),
    ("NGUYEN", 8), ("TRAN", 5), ("LE", 4), ("PHAM", 4), ("KIM", 5), ("LEE", 5),
    ("PARK", 4), ("WANG", 5), ("LI", 5), ("ZHANG", 5), ("CHEN", 5), ("LIU", 4),
    ("PATEL", 7), ("SINGH", 6), ("SHAH", 4), ("KHAN", 5), ("ALI", 5), ("AHMED", 5),
    ("HASSAN", 4), ("IBRAHIM", 3), ("MOHAMED", 4), ("SMITH", 6), ("JOHNSON", 5),
    ("WILLIAMS", 5), ("BROWN", 5), ("JONES", 5), ("MILLER", 4), ("DAVIS", 4),
    ("WILSON", 3), ("TAYLOR", 3), ("CLARK", 3), ("MURPHY", 3), ("OCONNOR", 2),
    ("KOWALSKI", 2), ("NOWAK", 2), ("IVANOV", 3), ("PETROV", 2), ("POPESCU", 2),
    ("SILVA", 4), ("SANTOS", 4), ("OLIVEIRA", 3), ("SOUZA", 3), ("PIERRE", 3),
    ("JEAN", 3), ("JOSEPH", 3), ("OKAFOR", 2), ("MENSAH", 2), ("ADEYEMI", 2),
    ("MUELLER", 2), ("SCHMIDT", 2), ("ROSSI", 2), ("ESPOSITO", 2), ("COHEN", 2),
)

_MALE = (
    "JOSE", "JUAN", "LUIS", "CARLOS", "JORGE", "MIGUEL", "ANTONIO", "FRANCISCO",
    "PEDRO", "JESUS", "MANUEL", "ALEJANDRO", "RICARDO", "FERNANDO", "RAFAEL",
    "DAVID", "DANIEL", "JAVIER", "EDUARDO", "ROBERTO", "SERGIO", "MARIO", "OSCAR",
    "VAN", "MINH", "HUNG", "WEI", "JUN", "HAO", "RAJ", "AMIT", "RAHUL", "MOHAMMED",
    "AHMED", "OMAR", "ALI", "YUSUF", "JOHN", "MICHAEL", "JAMES", "ROBERT", "WILLIAM",
    "THOMAS", "PAUL", "MARK", "ANDREI", "IVAN", "PIOTR", "JEAN", "EMMANUEL",
    "CHINEDU", "KWAME", "JOAO", "PAULO", "GIUSEPPE", "DMITRI",
)
_FEMALE = (
    "MARIA", "ANA", "ROSA", "GUADALUPE", "JUANA", "CARMEN", "ELENA", "LAURA",
    "PATRICIA", "VERONICA", "GABRIELA", "ALEJANDRA", "LETICIA", "ADRIANA", "SOFIA",
    "ISABEL", "LUCIA", "TERESA", "YOLANDA", "SILVIA", "CLAUDIA", "MONICA", "DIANA",
    "LAN", "HUONG", "MAI", "MEI", "LING", "XIU", "PRIYA", "ANITA", "SUNITA", "FATIMA",
    "AISHA", "LEILA", "MARY", "JENNIFER", "LINDA", "ELIZABETH", "SARAH", "KAREN",
    "OLGA", "IRINA", "ANNA", "MARIE", "NADIA", "NGOZI", "AMA", "BEATRIZ", "GIULIA",
)

# Spelling variants that show up as aliases (and that phonetic search must
# see through).
_VARIANTS = {
    "GONZALEZ": "GONZALES", "HERNANDEZ": "HERNANDES", "RODRIGUEZ": "RODRIGUES",
    "MARTINEZ": "MARTINES", "LOPEZ": "LOPES", "PEREZ": "PERES", "SANCHEZ": "SANCHES",
    "RAMIREZ": "RAMIRES", "GARCIA": "GARSIA", "VASQUEZ": "VAZQUEZ", "JIMENEZ": "GIMENEZ",
    "GUTIERREZ": "GUTIERES", "CHAVEZ": "CHAVES", "ALVAREZ": "ALVARES", "NGUYEN": "NGUEN",
    "MOHAMED": "MOHAMMED", "AHMED": "AHMAD", "SMITH": "SMYTH", "IVANOV": "IVANOFF",
    "MUNOZ": "MUNOS", "SILVA": "SYLVA", "SOUZA": "SOUSA", "HASSAN": "HASAN",
}

_STREETS = (
    "MAIN", "OAK", "PINE", "MAPLE", "CEDAR", "ELM", "WASHINGTON", "LINCOLN",
    "JEFFERSON", "MADISON", "LAKE", "HILL", "PARK", "CENTRAL", "BROADWAY",
    "VAN BUREN", "INDIAN SCHOOL", "THOMAS", "CAMELBACK", "BUCKEYE", "MESA",
    "ALAMEDA", "SAN PEDRO", "FLORES", "MISSION", "VALLEY VIEW", "SUNSET", "GRAND",
    "CHURCH", "FRANKLIN", "RIVERSIDE", "COLLEGE", "MARKET", "UNION", "HOLLY",
    "MAGNOLIA", "PALM", "ORANGE", "CYPRESS", "WILLOW", "PECAN", "SYCAMORE",
)
_STREET_TYPES = ("ST", "AVE", "RD", "DR", "BLVD", "LN", "CT", "WAY", "PL")
_DIRECTIONS = ("N", "S", "E", "W")

_CITIES = (
    ("PHOENIX", "AZ"), ("TUCSON", "AZ"), ("YUMA", "AZ"), ("NOGALES", "AZ"),
    ("MESA", "AZ"), ("EL PASO", "TX"), ("HOUSTON", "TX"), ("SAN ANTONIO", "TX"),
    ("LAREDO", "TX"), ("DALLAS", "TX"), ("MCALLEN", "TX"), ("LOS ANGELES", "CA"),
    ("SAN DIEGO", "CA"), ("FRESNO", "CA"), ("SANTA ANA", "CA"), ("CHULA VISTA", "CA"),
    ("NEW YORK", "NY"), ("BROOKLYN", "NY"), ("QUEENS", "NY"), ("BUFFALO", "NY"),
    ("MIAMI", "FL"), ("ORLANDO", "FL"), ("TAMPA", "FL"), ("CHICAGO", "IL"),
    ("ATLANTA", "GA"), ("DENVER", "CO"), ("SEATTLE", "WA"), ("OMAHA", "NB"),
    ("NEWARK", "NJ"), ("BOSTON", "MA"), ("LAS VEGAS", "NV"), ("ALBUQUERQUE", "NM"),
)

# (component, kind, places): the kinds of contact each component has.
_CONTACT_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CBP", "ADMISSION", (
        "SAN YSIDRO, CA PORT OF ENTRY", "NOGALES, AZ PORT OF ENTRY", "EL PASO, TX PORT OF ENTRY",
        "LAREDO, TX PORT OF ENTRY", "JFK INTL AIRPORT, NY", "MIAMI INTL AIRPORT, FL",
        "LOS ANGELES INTL AIRPORT, CA", "HOUSTON INTERCONTINENTAL AIRPORT, TX",
        "CHICAGO OHARE INTL AIRPORT, IL", "BUFFALO, NY PORT OF ENTRY",
    )),
    ("CBP", "APPREHENSION", (
        "TUCSON SECTOR, AZ", "YUMA SECTOR, AZ", "EL PASO SECTOR, TX",
        "RIO GRANDE VALLEY SECTOR, TX", "SAN DIEGO SECTOR, CA", "LAREDO SECTOR, TX",
    )),
    ("CBP", "ENCOUNTER", (
        "SAN YSIDRO, CA PORT OF ENTRY", "NOGALES, AZ PORT OF ENTRY", "MIAMI INTL AIRPORT, FL",
    )),
    ("ICE", "ENCOUNTER", (
        "PHOENIX, AZ", "HOUSTON, TX", "LOS ANGELES, CA", "NEW YORK, NY", "CHICAGO, IL",
        "ATLANTA, GA", "DENVER, CO",
    )),
    ("ICE", "ARREST", (
        "PHOENIX, AZ", "SAN ANTONIO, TX", "DALLAS, TX", "MIAMI, FL", "NEWARK, NJ",
        "SEATTLE, WA",
    )),
    ("ICE", "DETENTION", (
        "ELOY DETENTION CENTER, AZ", "OTAY MESA DETENTION CENTER, CA",
        "SOUTH TEXAS ICE PROCESSING CENTER, TX", "KROME SERVICE PROCESSING CENTER, FL",
    )),
    ("ICE", "REMOVAL", (
        "NOGALES, AZ", "LAREDO, TX", "MESA AIRPORT, AZ", "ALEXANDRIA STAGING FACILITY, LA",
    )),
    ("USCIS", "APPLICATION", (
        "PHOENIX FIELD OFFICE, AZ", "HOUSTON FIELD OFFICE, TX", "LOS ANGELES FIELD OFFICE, CA",
        "NEW YORK FIELD OFFICE, NY", "MIAMI FIELD OFFICE, FL", "CHICAGO FIELD OFFICE, IL",
        "NEBRASKA SERVICE CENTER, NB", "TEXAS SERVICE CENTER, TX",
    )),
    ("USCIS", "INTERVIEW", (
        "PHOENIX FIELD OFFICE, AZ", "SAN ANTONIO FIELD OFFICE, TX", "NEWARK FIELD OFFICE, NJ",
        "ATLANTA FIELD OFFICE, GA",
    )),
    ("USCIS", "BIOMETRICS", (
        "PHOENIX APPLICATION SUPPORT CENTER, AZ", "EL PASO APPLICATION SUPPORT CENTER, TX",
        "QUEENS APPLICATION SUPPORT CENTER, NY",
    )),
)
_CONTACT_WEIGHTS = (22, 8, 4, 8, 6, 4, 3, 20, 8, 6)

_STATUSES = (
    ("LAWFUL PERMANENT RESIDENT", 30),
    ("NATURALIZED U.S. CITIZEN", 15),
    ("NONIMMIGRANT VISITOR (B-2), IN STATUS", 8),
    ("NONIMMIGRANT VISITOR (B-2), OVERSTAY", 6),
    ("NONIMMIGRANT STUDENT (F-1), IN STATUS", 5),
    ("TEMPORARY PROTECTED STATUS", 6),
    ("ASYLUM APPLICANT, PENDING", 7),
    ("REMOVAL PROCEEDINGS PENDING", 8),
    ("FINAL ORDER OF REMOVAL", 5),
    ("NO STATUS, ENTERED WITHOUT INSPECTION", 10),
)
_REMARKS = (
    "", "", "", "", "",
    "EMPLOYMENT AUTHORIZATION VALID",
    "PENDING APPLICATION FOR ADJUSTMENT OF STATUS",
    "PRIOR REMOVAL ORDER REINSTATED",
    "RELEASED ON ORDER OF RECOGNIZANCE",
    "CONDITIONAL RESIDENT, CONDITIONS REMOVED",
    "VISA EXPIRED, NO EXTENSION ON FILE",
    "DACA RECIPIENT, RENEWAL PENDING",
    "SUBJECT OF ICE DETAINER, CONFIRM WITH LESC",
)


class _Generator:
    """Makes persons from one ``random.Random``: the same seed, the same
    persons, in the same order."""

    def __init__(self, seed: int, taken_ids: Iterable[tuple[str, str]],
                 taken_keys: Iterable[tuple[str, str]]) -> None:
        self.rng = random.Random(seed)
        self.surnames = [s for s, _ in _SURNAMES]
        self.cum_weights: list[int] = []
        total = 0
        for _, weight in _SURNAMES:
            total += weight
            self.cum_weights.append(total)
        self.status_names = [s for s, _ in _STATUSES]
        self.status_weights = [w for _, w in _STATUSES]
        self.used_ids = set(taken_ids)
        # (name, dob) of the fixed records: a generated person never equals
        # one, so that a search with NAM + DOB finds only the fixed record.
        self.taken_keys = set(taken_keys)
        self.first_ordinal = _dt.date(1945, 1, 1).toordinal()
        self.last_ordinal = _dt.date(2006, 12, 31).toordinal()
        self.as_of = DATA_AS_OF.toordinal()

    def _surname(self) -> str:
        return self.rng.choices(self.surnames, cum_weights=self.cum_weights)[0]

    def _unique(self, kind: str, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if (kind, value) not in self.used_ids:
                self.used_ids.add((kind, value))
                return value

    def _digits(self, n: int) -> str:
        return f"{self.rng.randrange(10 ** n):0{n}d}"

    def person(self, din: str) -> Person:
        """One synthetic person with the given DIN."""
        rng = self.rng
        sex = "F" if rng.random() < 0.48 else "M"
        firsts = _FEMALE if sex == "F" else _MALE
        first = rng.choice(firsts)
        last = self._surname()
        if rng.random() < 0.08:
            last = f"{last} {self._surname()}"  # a compound surname
        roll = rng.random()
        middle = ""
        if roll < 0.35:
            middle = rng.choice(firsts)
        elif roll < 0.5:
            middle = rng.choice(firsts)[0]  # a middle initial
        name = f"{last},{first}" + (f" {middle}" if middle else "")

        born_ord = rng.randint(self.first_ordinal, self.last_ordinal)
        dob = _dt.date.fromordinal(born_ord).strftime("%Y%m%d")
        while (name, dob) in self.taken_keys:
            born_ord += 1
            dob = _dt.date.fromordinal(born_ord).strftime("%Y%m%d")
        dobs = [dob]
        if rng.random() < 0.12:
            # A second DOB as records have them: month and day swapped, or a
            # year off.
            born = _dt.date.fromordinal(born_ord)
            other = _real_date(born.year, born.day, born.month) if born.day <= 12 else None
            if other is None or other == born:
                other = _real_date(born.year + rng.choice((-1, 1)), born.month,
                                   min(born.day, 28))
            if other is not None:
                dobs.append(other.strftime("%Y%m%d"))

        aliases: list[str] = []
        if rng.random() < 0.35:
            for _ in range(rng.choice((1, 1, 1, 2))):
                pick = rng.random()
                first_last = last.split()[0]
                if pick < 0.4 and first_last in _VARIANTS:
                    alias = f"{_VARIANTS[first_last]},{first}"
                elif pick < 0.75:
                    alias = f"{self._surname()},{first}"
                else:
                    alias = f"{last},{rng.choice(firsts)}"
                if alias != name and alias not in aliases:
                    aliases.append(alias)

        pob = rng.choices(("MM", "YY", "CD", "US", "XX"), weights=(45, 40, 4, 8, 3))[0]
        status = ("U.S. CITIZEN" if pob == "US"
                  else rng.choices(self.status_names, weights=self.status_weights)[0])

        identifiers: list[Identifier] = []
        if pob != "US" and rng.random() < 0.75:
            identifiers.append(Identifier("ARN", self._unique(
                "ARN", lambda: rng.choice(("0", "2")) + self._digits(8))))
        if rng.random() < 0.5:
            # Area 9xx with group 00-49: never an SSN and never an ITIN, so no
            # generated number can be anyone's real one.
            identifiers.append(Identifier("SOC", self._unique(
                "SOC", lambda: f"9{self._digits(2)}{rng.randrange(50):02d}{self._digits(4)}")))
        if rng.random() < 0.4:
            identifiers.append(Identifier("PPN", self._unique(
                "PPN", lambda: rng.choice("ABCEGKNPX") + self._digits(8))))
        if rng.random() < 0.15:
            identifiers.append(Identifier("FBI", self._unique(
                "FBI", lambda: self._digits(6) + rng.choice("ABCDEFHJK") * 2
                + self._digits(1))))

        adult = min(born_ord + 365 * 16, self.as_of - 400)
        locations: list[Location] = []
        n_loc = rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        starts = sorted(rng.randint(adult, self.as_of - 30) for _ in range(n_loc))
        for i, start in enumerate(starts):
            city, state = rng.choice(_CITIES)
            street = rng.choice(_STREETS)
            address = f"{rng.randint(100, 9999)} "
            if rng.random() < 0.4:
                address += rng.choice(_DIRECTIONS) + " "
            address += f"{street} {rng.choice(_STREET_TYPES)}"
            if rng.random() < 0.2:
                address += f" APT {rng.randint(1, 40)}"
            until = _dt.date.fromordinal(starts[i + 1] - 1).strftime("%Y%m%d") \
                if i + 1 < n_loc else ""
            locations.append(Location(address, city, state,
                                      _dt.date.fromordinal(start).strftime("%Y%m%d"), until))

        contacts: list[Contact] = []
        n_contacts = rng.choices((0, 1, 2, 3, 4), weights=(15, 30, 28, 17, 10))[0]
        dates = sorted(rng.randint(adult, self.as_of) for _ in range(n_contacts))
        for day in dates:
            component, kind, places = rng.choices(_CONTACT_KINDS, weights=_CONTACT_WEIGHTS)[0]
            contacts.append(Contact(_dt.date.fromordinal(day).strftime("%Y%m%d"), component,
                                    kind, rng.choice(places)))
        if contacts and contacts[-1].kind == "REMOVAL" and pob != "US":
            status = "REMOVED"

        return Person(
            din=din, name=name, aliases=tuple(aliases), dobs=tuple(dobs), sex=sex, pob=pob,
            identifiers=tuple(identifiers), locations=tuple(locations),
            contacts=tuple(contacts), status=status, remarks=rng.choice(_REMARKS),
        )


def _generated_din(index: int) -> str:
    """DIN of the index-th generated person (0-based): D100000001, ..."""
    return f"D{100000001 + index:09d}"


# --------------------------------------------------------------------------
# The store.
# --------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS person (
    din TEXT PRIMARY KEY, name TEXT NOT NULL, sex TEXT NOT NULL, pob TEXT NOT NULL,
    status TEXT NOT NULL, remarks TEXT NOT NULL, origin TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS name (
    din TEXT NOT NULL, seq INTEGER NOT NULL, alias INTEGER NOT NULL, full TEXT NOT NULL,
    last TEXT NOT NULL, first TEXT NOT NULL, middle TEXT NOT NULL,
    last_mp TEXT NOT NULL, last_ny TEXT NOT NULL, first_mp TEXT NOT NULL,
    first_ny TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dob (din TEXT NOT NULL, seq INTEGER NOT NULL, dob TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ident (din TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS location (
    din TEXT NOT NULL, seq INTEGER NOT NULL, address TEXT NOT NULL, city TEXT NOT NULL,
    state TEXT NOT NULL, since TEXT NOT NULL, until TEXT NOT NULL, adr_norm TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contact (
    din TEXT NOT NULL, seq INTEGER NOT NULL, date TEXT NOT NULL, component TEXT NOT NULL,
    kind TEXT NOT NULL, place TEXT NOT NULL);
"""

# Created after the bulk insert of a fresh build: filling indexed tables
# row by row is several times slower than indexing them once.
_INDEXES = """
CREATE INDEX IF NOT EXISTS name_din ON name (din);
CREATE INDEX IF NOT EXISTS name_last_mp ON name (last_mp, first_mp);
CREATE INDEX IF NOT EXISTS name_last_ny ON name (last_ny, first_ny);
CREATE INDEX IF NOT EXISTS name_exact ON name (last, first);
CREATE INDEX IF NOT EXISTS dob_din ON dob (din);
CREATE INDEX IF NOT EXISTS dob_dob ON dob (dob);
CREATE INDEX IF NOT EXISTS ident_din ON ident (din);
CREATE INDEX IF NOT EXISTS ident_value ON ident (kind, value);
CREATE INDEX IF NOT EXISTS location_din ON location (din);
CREATE INDEX IF NOT EXISTS location_adr ON location (adr_norm);
CREATE INDEX IF NOT EXISTS contact_din ON contact (din);
CREATE INDEX IF NOT EXISTS person_origin ON person (origin);
"""

_CHILD_TABLES = ("name", "dob", "ident", "location", "contact")


@dataclass
class _Rows:
    """Rows of every table for a batch of persons, ready for executemany."""

    person: list[tuple[str, ...]] = field(default_factory=list)
    name: list[tuple[Any, ...]] = field(default_factory=list)
    dob: list[tuple[Any, ...]] = field(default_factory=list)
    ident: list[tuple[Any, ...]] = field(default_factory=list)
    location: list[tuple[Any, ...]] = field(default_factory=list)
    contact: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, p: Person, origin: str) -> None:
        self.person.append((p.din, p.name, p.sex, p.pob, p.status, p.remarks, origin))
        for seq, full in enumerate((p.name, *p.aliases)):
            parsed = parse_name(full)
            last_mp, last_ny = _phonetic(parsed.last)
            first_mp, first_ny = _phonetic(parsed.first)
            self.name.append((p.din, seq, int(seq > 0), full, parsed.last, parsed.first,
                              parsed.middle, last_mp, last_ny, first_mp, first_ny))
        self.dob.extend((p.din, seq, d) for seq, d in enumerate(p.dobs))
        self.ident.extend((p.din, seq, i.kind, i.value) for seq, i in enumerate(p.identifiers))
        self.location.extend(
            (p.din, seq, loc.address, loc.city, loc.state, loc.since, loc.until,
             normalize_address(f"{loc.address} {loc.city} {loc.state}"))
            for seq, loc in enumerate(p.locations))
        self.contact.extend((p.din, seq, c.date, c.component, c.kind, c.place)
                            for seq, c in enumerate(p.contacts))

    def insert(self, db: sqlite3.Connection) -> None:
        db.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?)", self.person)
        db.executemany("INSERT INTO name VALUES (?,?,?,?,?,?,?,?,?,?,?)", self.name)
        db.executemany("INSERT INTO dob VALUES (?,?,?)", self.dob)
        db.executemany("INSERT INTO ident VALUES (?,?,?,?)", self.ident)
        db.executemany("INSERT INTO location VALUES (?,?,?,?,?,?,?,?)", self.location)
        db.executemany("INSERT INTO contact VALUES (?,?,?,?,?,?)", self.contact)


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@dataclass
class _Candidate:
    tier: int
    score: float
    primary: bool
    matched: str
    how: str


class LeisStore:
    """The DHS LEIS data set in one SQLite file.

    Open it with :meth:`open`. Every method is synchronous and may be called
    from any thread (one lock serialises them); the asyncio side calls them
    with ``asyncio.to_thread``.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        """Use :meth:`open`; this wraps an already prepared connection."""
        self._db = db
        self.path = path
        self._lock = threading.Lock()

    # -- opening and building ------------------------------------------------

    @classmethod
    def open(cls, path: Path, seed: int = 1, persons: int = 10000,
             progress: Callable[[int, int], None] | None = None) -> LeisStore:
        """Open the data set at ``path``, building it first if needed.

        A new file, one with an older layout, or one built from another seed
        or size gets the fixed test records and ``persons`` generated persons
        from ``random.Random(seed)``, in one transaction (records an agency
        loaded are kept across a rebuild for another seed or size).
        ``progress(done, total)`` is called as the build goes; an up-to-date
        file is reused at once without calling it.
        """
        if persons < 0:
            raise ValueError("persons must not be negative")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            store = cls(db, path)
            store._ensure_built(seed, persons, progress)
        except BaseException:
            db.close()
            raise
        return store

    def _meta(self) -> dict[str, str]:
        try:
            return dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            return {}

    def _ensure_built(self, seed: int, persons: int,
                      progress: Callable[[int, int], None] | None) -> None:
        wanted = {"schema": str(SCHEMA_VERSION), "seed": str(seed), "persons": str(persons)}
        if all(self._meta().get(k) == v for k, v in wanted.items()):
            return
        with self._lock:
            # IMMEDIATE takes the write lock first, so two processes opening a
            # new file at once build it once: the second sees the first's meta.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                meta = self._meta()
                if all(meta.get(k) == v for k, v in wanted.items()):
                    self._db.execute("COMMIT")
                    return
                if meta.get("schema") != wanted["schema"]:
                    for table in ("meta", "person", *_CHILD_TABLES):
                        self._db.execute(f"DROP TABLE IF EXISTS {table}")
                # Statement by statement: executescript() would COMMIT first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._build(seed, persons, progress)
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                     sorted(wanted.items()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _build(self, seed: int, persons: int,
               progress: Callable[[int, int], None] | None) -> None:
        db = self._db
        loaded = {row[0] for row in db.execute(
            "SELECT din FROM person WHERE origin = ?", (_LOADED,))}
        old = [row[0] for row in db.execute(
            "SELECT din FROM person WHERE origin != ?", (_LOADED,))]
        self._delete(old)
        fixed = fixed_persons()
        rows = _Rows()
        for p in fixed:
            rows.add(p, _FIXED)
        gen = _Generator(
            seed,
            taken_ids=((i.kind, i.value) for p in fixed for i in p.identifiers),
            taken_keys=((n, d) for p in fixed for n in (p.name, *p.aliases) for d in p.dobs),
        )
        total = persons
        if progress is not None:
            progress(0, total)
        step = 1000
        for index in range(persons):
            # Every DIN is drawn from the generator, loaded or not, so the
            # persons a seed makes do not depend on what an agency loaded.
            person = gen.person(_generated_din(index))
            if person.din not in loaded:
                rows.add(person, _GENERATED)
            if (index + 1) % step == 0 or index + 1 == persons:
                rows.insert(db)
                rows = _Rows()
                if progress is not None:
                    progress(index + 1, total)
        rows.insert(db)
        for statement in _INDEXES.split(";"):
            if statement.strip():
                db.execute(statement)

    def _delete(self, dins: Sequence[str]) -> None:
        for chunk in _chunks(dins):
            marks = ",".join("?" * len(chunk))
            for table in ("person", *_CHILD_TABLES):
                self._db.execute(f"DELETE FROM {table} WHERE din IN ({marks})", tuple(chunk))

    def close(self) -> None:
        """Close the database file."""
        with self._lock:
            self._db.close()

    def backup_to(self, target: Path) -> None:
        """A consistent copy of the whole data set at ``target`` (SQLite's backup API)."""
        with self._lock:
            dst = sqlite3.connect(target)
            try:
                self._db.backup(dst)
            finally:
                dst.close()

    def __enter__(self) -> LeisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------

    def count(self) -> int:
        """How many persons the data set holds."""
        with self._lock:
            row = self._db.execute("SELECT count(*) FROM person").fetchone()
        return int(row[0])

    def get(self, din: str) -> Person | None:
        """The full record of one person, or None."""
        din = din.strip().upper()
        with self._lock:
            return self._get(din)

    def _get(self, din: str) -> Person | None:
        db = self._db
        row = db.execute("SELECT name, sex, pob, status, remarks FROM person WHERE din = ?",
                         (din,)).fetchone()
        if row is None:
            return None
        name, sex, pob, status, remarks = row
        aliases = tuple(r[0] for r in db.execute(
            "SELECT full FROM name WHERE din = ? AND alias = 1 ORDER BY seq", (din,)))
        dobs = tuple(r[0] for r in db.execute(
            "SELECT dob FROM dob WHERE din = ? ORDER BY seq", (din,)))
        idents = tuple(Identifier(k, v) for k, v in db.execute(
            "SELECT kind, value FROM ident WHERE din = ? ORDER BY seq", (din,)))
        locations = tuple(Location(*r) for r in db.execute(
            "SELECT address, city, state, since, until FROM location WHERE din = ? ORDER BY seq",
            (din,)))
        contacts = tuple(Contact(*r) for r in db.execute(
            "SELECT date, component, kind, place FROM contact WHERE din = ? ORDER BY seq",
            (din,)))
        return Person(din=din, name=name, aliases=aliases, dobs=dobs, sex=sex, pob=pob,
                      identifiers=idents, locations=locations, contacts=contacts,
                      status=status, remarks=remarks)

    def search(self, fields: Mapping[str, str], limit: int = DEFAULT_LIMIT, *,
               today: _dt.date | None = None) -> SearchResult:
        """Search as a GPQ does (PROTOCOL part 5), best matches first.

        ``fields`` are the GPQ's fields by tag. The first present of ``DIN``,
        ``SOC``, ``ARN``, ``PPN``, ``ADR``, ``NAM`` decides the search; a
        ``DOB`` narrows any of them to persons with that date of birth, a
        ``SEX`` of M or F to persons of that sex or of unknown sex.
        Name order: primary name exact, alias exact, primary name phonetic,
        alias phonetic; within the phonetic tiers by Jaro-Winkler similarity;
        ties by DIN. A query that names no search field, or a malformed
        value, raises :class:`MessageError`.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        f = {k.strip().upper(): v.strip() for k, v in fields.items() if v and v.strip()}
        dob = normalize_dob(f["DOB"], today) if "DOB" in f else ""
        with self._lock:
            if "DIN" in f:
                by = "DIN"
                found = self._by_din(f["DIN"])
            elif "SOC" in f:
                by = "SOC"
                soc = _digits(f["SOC"])
                if not re.fullmatch(r"\d{9}", soc):
                    raise MessageError(ErCode.FORMAT, "SOC/ MUST BE 9 DIGITS")
                found = self._by_ident("SOC", soc)
            elif "ARN" in f:
                by = "ARN"
                arn = normalize_arn(f["ARN"])
                if arn is None:
                    raise MessageError(ErCode.FORMAT, "ARN/ MUST BE 8 OR 9 DIGITS")
                found = self._by_ident("ARN", arn)
            elif "PPN" in f:
                by = "PPN"
                ppn = re.sub(r"[\s-]", "", f["PPN"].upper())
                if not re.fullmatch(r"[A-Z0-9]{1,20}", ppn):
                    raise MessageError(ErCode.FORMAT, "PPN/ MUST BE UP TO 20 LETTERS OR DIGITS")
                found = self._by_ident("PPN", ppn)
            elif "ADR" in f:
                by = "ADR"
                adr = normalize_address(f["ADR"])
                if not adr:
                    raise MessageError(ErCode.FORMAT, "ADR/ IS EMPTY")
                found = self._by_address(adr)
            elif "NAM" in f:
                by = "NAM"
                name = parse_name(f["NAM"])
                if not _NON_LETTERS.sub("", name.last):
                    raise MessageError(ErCode.FORMAT, "NAM/ MUST BE LAST,FIRST MIDDLE")
                found = self._by_name(name)
            else:
                raise MessageError.naming(ErCode.FIELDS_MISSING, "ONE OF",
                                          ("NAM", "SOC", "PPN", "ARN", "ADR", "DIN"))
            if dob:
                with_dob = {r[0] for r in self._db.execute(
                    "SELECT din FROM dob WHERE dob = ?", (dob,))}
                found = {din: c for din, c in found.items() if din in with_dob}
            sex = f.get("SEX", "").upper()
            if sex in ("M", "F") and found:
                keep: set[str] = set()
                for chunk in _chunks(sorted(found)):
                    keep.update(r[0] for r in self._db.execute(
                        f"SELECT din FROM person WHERE din IN ({','.join('?' * len(chunk))}) "
                        "AND sex IN (?, 'U')", (*chunk, sex)))
                found = {din: c for din, c in found.items() if din in keep}
            order = sorted(found.items(),
                           key=lambda kv: (kv[1].tier, -kv[1].score, not kv[1].primary, kv[0]))
            hits = tuple(self._hit(din, c, dob) for din, c in order[:limit])
        return SearchResult(hits=hits, total=len(order), limit_reached=len(order) > limit,
                            by=by)

    def _hit(self, din: str, c: _Candidate, dob: str) -> Hit:
        name, sex = self._db.execute("SELECT name, sex FROM person WHERE din = ?",
                                     (din,)).fetchone()
        if not dob:
            row = self._db.execute("SELECT dob FROM dob WHERE din = ? ORDER BY seq LIMIT 1",
                                   (din,)).fetchone()
            dob = row[0] if row else ""
        return Hit(din=din, name=name, dob=dob, sex=sex, matched=c.matched, how=c.how,
                   score=c.score)

    def _by_din(self, din: str) -> dict[str, _Candidate]:
        row = self._db.execute("SELECT din FROM person WHERE din = ?",
                               (din.upper(),)).fetchone()
        return {row[0]: _Candidate(0, 1.0, True, "", "DIN")} if row else {}

    def _by_ident(self, kind: str, value: str) -> dict[str, _Candidate]:
        return {r[0]: _Candidate(0, 1.0, True, "", kind) for r in self._db.execute(
            "SELECT din FROM ident WHERE kind = ? AND value = ?", (kind, value))}

    def _by_address(self, adr: str) -> dict[str, _Candidate]:
        """Exact address first, then addresses that start with the query,
        then those that contain it as whole words; current addresses before
        former ones."""
        found: dict[str, _Candidate] = {}

        def offer(din: str, tier: int, current: bool) -> None:
            cand = _Candidate(tier, 1.0 if current else 0.5, True, "", "ADR")
            old = found.get(din)
            if old is None or (cand.tier, -cand.score) < (old.tier, -old.score):
                found[din] = cand

        # Prefix range on the index; the word-boundary check keeps
        # "12 MAIN ST" from matching "12 MAIN STATION RD".
        for din, norm, until in self._db.execute(
                "SELECT din, adr_norm, until FROM location WHERE adr_norm >= ? AND adr_norm < ?",
                (adr, adr + "\x7f")):
            rest = norm[len(adr):]
            if not rest:
                offer(din, 0, not until)
            elif rest.startswith(" "):
                offer(din, 1, not until)
        for din, until in self._db.execute(
                "SELECT din, until FROM location WHERE instr(' ' || adr_norm || ' ', ?) > 1",
                (f" {adr} ",)):
            offer(din, 2, not until)
        return found

    def _by_name(self, q: ParsedName) -> dict[str, _Candidate]:
        q_last_mp, q_last_ny = _phonetic(q.last)
        q_first_mp, q_first_ny = _phonetic(q.first)
        found: dict[str, _Candidate] = {}
        rows = self._db.execute(
            "SELECT din, alias, full, last, first, middle, first_mp, first_ny FROM name "
            "WHERE last_mp = ? OR last_ny = ? OR last = ?", (q_last_mp, q_last_ny, q.last))
        for din, alias, full, last, first, middle, first_mp, first_ny in rows:
            if q.first and not _first_matches(q.first, q_first_mp, q_first_ny,
                                              first, first_mp, first_ny):
                continue
            exact = (last == q.last and (not q.first or first == q.first)
                     and _middle_compatible(q.middle, middle))
            if exact:
                tier, how = (1, "ALIAS") if alias else (0, "NAME")
                score = 1.0
            else:
                # A phonetic match through the primary name ranks above one
                # through an alias: GARSIA,MARIA finds GARCIA,MARIA before a
                # GARCIA,MARIO who once used GARSIA,MARIO, though both are
                # one letter off.
                tier, how = (3, "PHONETIC ALIAS") if alias else (2, "PHONETIC")
                score = _similarity(q, last, first, middle)
            cand = _Candidate(tier, score, not alias, full if alias else "", how)
            old = found.get(din)
            if old is None or ((cand.tier, -cand.score, not cand.primary)
                               < (old.tier, -old.score, not old.primary)):
                found[din] = cand
        return found

    # -- IAQ -------------------------------------------------------------------

    def find_for_iaq(self, fields: Mapping[str, str], *,
                     today: _dt.date | None = None) -> Person | None:
        """The person an IAQ asks about, or None.

        By ``ARN`` when the IAQ carries one (and it is on file); otherwise by
        ``NAM`` and ``DOB`` (MMDDYY or CCYYMMDD, see :func:`normalize_dob`),
        skipping persons whose sex differs from the IAQ's ``SEX``.
        """
        f = {k.strip().upper(): v.strip() for k, v in fields.items() if v and v.strip()}
        if "ARN" in f and normalize_arn(f["ARN"]) is not None:
            result = self.search({"ARN": f["ARN"]}, limit=1)
            if result.hits:
                return self.get(result.hits[0].din)
        if "NAM" not in f or "DOB" not in f:
            return None
        result = self.search({"NAM": f["NAM"], "DOB": f["DOB"]}, limit=50, today=today)
        sex = f.get("SEX", "U").upper()
        for hit in result.hits:
            if sex in ("M", "F") and hit.sex in ("M", "F") and hit.sex != sex:
                continue
            return self.get(hit.din)
        return None

    def gpq_text(self, fields: Mapping[str, str], limit: int = DEFAULT_LIMIT, *,
                 today: _dt.date | None = None) -> str:
        """The whole text of the GPR answering a GPQ: the full record for a
        ``DIN/`` query, the summary otherwise, ``NO RECORD`` when nothing."""
        f = {k.strip().upper(): v for k, v in fields.items()}
        if (f.get("DIN") or "").strip():
            person = self.get(f["DIN"])
            return format_record(person) if person is not None else "NO RECORD"
        return format_summary(self.search(fields, limit, today=today), limit)

    def iar_text(self, fields: Mapping[str, str], *, today: _dt.date | None = None) -> str:
        """The whole text of the IAR answering an IAQ."""
        return format_iar(fields, self.find_for_iaq(fields, today=today))

    # -- loading an agency's own data -----------------------------------------

    def load_file(self, path: Path) -> int:
        """Load an agency's own persons from a JSON Lines file.

        Every row is checked first; if any is bad, :class:`LeisLoadError`
        lists every problem as ``line N: field: problem`` and nothing is
        loaded. Otherwise all rows go in one transaction, replacing persons
        with the same DIN. Returns how many persons were loaded.
        """
        persons = parse_load_file(Path(path))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._delete([p.din for p in persons])
                rows = _Rows()
                for p in persons:
                    rows.add(p, _LOADED)
                rows.insert(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(persons)


def _similarity(q: ParsedName, last: str, first: str, middle: str) -> float:
    """Mean Jaro-Winkler similarity of the name parts the query gives.

    Part by part rather than on the whole string, so that a difference in
    the first name counts as much as one in the last name.
    """
    scores = [jellyfish.jaro_winkler_similarity(q.last, last)]
    if q.first:
        scores.append(jellyfish.jaro_winkler_similarity(q.first, first))
    if q.middle and middle:
        scores.append(jellyfish.jaro_winkler_similarity(q.middle, middle))
    return sum(scores) / len(scores)


def _first_matches(q: str, q_mp: str, q_ny: str, c: str, c_mp: str, c_ny: str) -> bool:
    """A candidate's first name against the query's: same, same sound, or
    an initial that fits."""
    if len(q) == 1 or len(c) == 1:
        return c[:1] == q[:1]
    return c == q or (bool(q_mp) and c_mp == q_mp) or (bool(q_ny) and c_ny == q_ny)


def _middle_compatible(q: str, c: str) -> bool:
    """An unknown middle name fits anything; an initial fits a full name."""
    if not q or not c:
        return True
    if len(q) == 1 or len(c) == 1:
        return q[0] == c[0]
    return q == c


# --------------------------------------------------------------------------
# The load file (JSON Lines; docs/leis.md).
# --------------------------------------------------------------------------

_LOAD_KEYS = frozenset({
    "din", "name", "aliases", "dobs", "sex", "pob", "identifiers", "locations",
    "contacts", "status", "remarks",
})
_DIN_RE = re.compile(r"[A-Z0-9]{1,15}")
_DATE_RE = re.compile(r"\d{8}")


class _RowChecker:
    """Checks one row, collecting ``line N: field: problem`` strings."""

    def __init__(self, line: int, problems: list[str]) -> None:
        self.line = line
        self.problems = problems
        self.ok = True

    def bad(self, where: str, problem: str) -> None:
        self.ok = False
        self.problems.append(f"line {self.line}: {where}: {problem}")

    def text(self, where: str, value: object, *, max_len: int, required: bool = True,
             pattern: re.Pattern[str] | None = None, hint: str = "") -> str:
        if value is None or value == "":
            if required:
                self.bad(where, "missing")
            return ""
        if not isinstance(value, str):
            self.bad(where, "must be a string")
            return ""
        clean = _to_ascii(value)
        if any(not (" " <= c <= "~") for c in clean):
            self.bad(where, "not printable ASCII")
            return ""
        if len(clean) > max_len:
            self.bad(where, f"longer than {max_len} characters")
            return ""
        if pattern is not None and not pattern.fullmatch(clean):
            self.bad(where, hint or "invalid")
            return ""
        return clean

    def date(self, where: str, value: object, *, required: bool = True) -> str:
        text = self.text(where, value, max_len=8, required=required, pattern=_DATE_RE,
                         hint="must be CCYYMMDD")
        if text and _real_date(int(text[:4]), int(text[4:6]), int(text[6:])) is None:
            self.bad(where, "not a real date")
            return ""
        return text

    def name(self, where: str, value: object) -> str:
        text = self.text(where, value, max_len=30, pattern=_NAME_RE,
                         hint="must be LAST,FIRST MIDDLE (letters, space, hyphen, apostrophe)")
        return parse_name(text).display if text else ""

    def strings(self, where: str, value: object) -> list[object]:
        if value is None:
            return []
        if isinstance(value, str):
            return [value]
        if not isinstance(value, list):
            self.bad(where, "must be a string or a list of strings")
            return []
        return list(value)

    def objects(self, where: str, value: object) -> list[dict[str, object]]:
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            self.bad(where, "must be a list of objects")
            return []
        return list(value)

    def unknown(self, where: str, obj: Mapping[str, object], allowed: Iterable[str]) -> None:
        for key in sorted(set(obj) - set(allowed)):
            self.bad(f"{where}{key}", "unknown field")


def _check_row(row: object, checker: _RowChecker) -> Person | None:
    c = checker
    if not isinstance(row, dict):
        c.bad("row", "must be a JSON object")
        return None
    c.unknown("", row, _LOAD_KEYS)
    din = c.text("din", row.get("din"), max_len=15, pattern=_DIN_RE,
                 hint="must be 1 to 15 letters or digits")
    if din in FIXED_DINS:
        c.bad("din", "reserved for a built-in test record")
    name = c.name("name", row.get("name"))
    aliases = [c.name(f"aliases[{i}]", v)
               for i, v in enumerate(c.strings("aliases", row.get("aliases")))]
    raw_dobs = c.strings("dobs", row.get("dobs"))
    if not raw_dobs:
        c.bad("dobs", "missing (at least one CCYYMMDD)")
    dobs = [c.date(f"dobs[{i}]", v) for i, v in enumerate(raw_dobs)]
    sex = c.text("sex", row.get("sex"), max_len=1, required=False,
                 pattern=re.compile("[MFU]"), hint="must be M, F or U") or "U"
    pob = c.text("pob", row.get("pob"), max_len=2, required=False,
                 pattern=re.compile("[A-Z]{2}"), hint="must be a 2-letter code") or "XX"
    status = c.text("status", row.get("status"), max_len=60, required=False)
    remarks = c.text("remarks", row.get("remarks"), max_len=240, required=False)

    identifiers: list[Identifier] = []
    raw_ids = row.get("identifiers")
    if raw_ids is not None and not isinstance(raw_ids, dict):
        c.bad("identifiers", "must be an object such as {\"ARN\": \"012345678\"}")
    elif isinstance(raw_ids, dict):
        c.unknown("identifiers.", raw_ids, IDENTIFIER_KINDS)
        for kind in IDENTIFIER_KINDS:
            for i, v in enumerate(c.strings(f"identifiers.{kind}", raw_ids.get(kind))):
                where = f"identifiers.{kind}[{i}]"
                value = c.text(where, v, max_len=20)
                if not value:
                    continue
                norm: str | None
                if kind == "SOC":
                    norm = _digits(value)
                    norm = norm if re.fullmatch(r"\d{9}", norm) else None
                    hint = "must be 9 digits"
                elif kind == "ARN":
                    norm = normalize_arn(value)
                    hint = "must be 8 or 9 digits"
                elif kind == "PPN":
                    norm = re.sub(r"[\s-]", "", value)
                    norm = norm if re.fullmatch(r"[A-Z0-9]{1,20}", norm) else None
                    hint = "must be up to 20 letters or digits"
                else:
                    norm = value if re.fullmatch(r"[A-Z0-9]{1,9}", value) else None
                    hint = "must be up to 9 letters or digits"
                if norm is None:
                    c.bad(where, hint)
                else:
                    identifiers.append(Identifier(kind, norm))

    locations: list[Location] = []
    for i, loc in enumerate(c.objects("locations", row.get("locations"))):
        where = f"locations[{i}]."
        c.unknown(where, loc, ("address", "city", "state", "since", "until"))
        locations.append(Location(
            address=c.text(where + "address", loc.get("address"), max_len=60),
            city=c.text(where + "city", loc.get("city"), max_len=30),
            state=c.text(where + "state", loc.get("state"), max_len=2,
                         pattern=re.compile("[A-Z]{2}"), hint="must be a 2-letter code"),
            since=c.date(where + "since", loc.get("since"), required=False),
            until=c.date(where + "until", loc.get("until"), required=False),
        ))

    contacts: list[Contact] = []
    for i, con in enumerate(c.objects("contacts", row.get("contacts"))):
        where = f"contacts[{i}]."
        c.unknown(where, con, ("date", "component", "kind", "place"))
        component = c.text(where + "component", con.get("component"), max_len=5)
        if component and component not in COMPONENTS:
            c.bad(where + "component", "must be one of " + ", ".join(COMPONENTS))
        contacts.append(Contact(
            date=c.date(where + "date", con.get("date")),
            component=component,
            kind=c.text(where + "kind", con.get("kind"), max_len=20,
                        pattern=re.compile(r"[A-Z][A-Z -]*"), hint="must be letters"),
            place=c.text(where + "place", con.get("place"), max_len=60),
        ))
    if not c.ok:
        return None
    return Person(din=din, name=name, aliases=tuple(aliases), dobs=tuple(dobs), sex=sex,
                  pob=pob, identifiers=tuple(identifiers), locations=tuple(locations),
                  contacts=tuple(contacts), status=status, remarks=remarks)


def parse_load_file(path: Path) -> list[Person]:
    """Read and check a JSON Lines load file (docs/leis.md).

    One JSON object per line; blank lines and lines starting with ``#`` are
    skipped. Raises :class:`LeisLoadError` listing every bad row, or
    ``OSError`` when the file cannot be read.
    """
    problems: list[str] = []
    persons: list[Person] = []
    first_line: dict[str, int] = {}
    with open(path, "rb") as stream:
        for number, raw in enumerate(stream, start=1):
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8").strip()
            except UnicodeDecodeError:
                problems.append(f"line {number}: row: not UTF-8 text")
                continue
            if not line or line.startswith("#"):
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                problems.append(f"line {number}: row: not valid JSON ({exc.msg}, "
                                f"column {exc.colno})")
                continue
            person = _check_row(row, _RowChecker(number, problems))
            if person is None:
                continue
            if person.din in first_line:
                problems.append(f"line {number}: din: {person.din} already on line "
                                f"{first_line[person.din]}")
                continue
            first_line[person.din] = number
            persons.append(person)
    if problems:
        raise LeisLoadError(problems, str(path))
    return persons


# --------------------------------------------------------------------------
# Answer texts (pure).
# --------------------------------------------------------------------------


def _fit(line: str, indent: str = "    ") -> list[str]:
    """A line as one or more lines of at most 80 printable characters."""
    line = _printable(line)
    if len(line) <= _LINE_WIDTH:
        return [line]
    return textwrap.wrap(line, _LINE_WIDTH, subsequent_indent=indent,
                         break_long_words=True, break_on_hyphens=False)


def format_summary(result: SearchResult, limit: int = DEFAULT_LIMIT) -> str:
    """The text of a GPR summary: one line per person,
    ``DIN/<id>.NAM/<name>.DOB/<ccyymmdd>.SEX/<s>`` (and ``.AKA/<alias>`` when
    an alias matched and the line has room), a last line saying so when the
    limit was reached, or exactly ``NO RECORD``."""
    if not result.hits:
        return "NO RECORD"
    lines: list[str] = []
    for hit in result.hits:
        line = _printable(f"DIN/{hit.din}.NAM/{hit.name}.DOB/{hit.dob}.SEX/{hit.sex}")
        if hit.matched:
            with_alias = _printable(f"{line}.AKA/{hit.matched}")
            if len(with_alias) <= _LINE_WIDTH:
                line = with_alias
        lines.append(line[:_LINE_WIDTH])
    if result.limit_reached:
        lines.append(f"LIMIT OF {limit} REACHED, {result.total} FOUND, REFINE SEARCH")
    return "\n".join(lines)


def _period(since: str, until: str) -> str:
    return f"{since or 'UNKNOWN'}-{until or 'PRESENT'}"


def format_record(person: Person) -> str:
    """The text of a GPR full record (a GPQ with ``DIN/``), in sections."""
    lines = [f"DIN/{person.din}", "NAMES AND ALIASES", f"  NAM/{person.name}"]
    lines += [f"  AKA/{a}" for a in person.aliases]
    lines.append("DATES OF BIRTH")
    lines += [f"  DOB/{d}" for d in person.dobs] or ["  NONE"]
    lines.append(f"SEX/{person.sex}.POB/{person.pob}")
    lines.append("KNOWN LOCATIONS")
    lines += [f"  {loc.address}, {loc.city}, {loc.state}  {_period(loc.since, loc.until)}"
              for loc in person.locations] or ["  NONE"]
    lines.append("IDENTIFIERS")
    lines += [f"  {i.kind}/{i.value}" for i in person.identifiers] or ["  NONE"]
    lines.append("PRIOR DHS CONTACTS")
    lines += [f"  {c.date} {c.component:<5} {c.kind:<12} {c.place}"
              for c in person.contacts] or ["  NONE"]
    lines.append(f"IMMIGRATION STATUS/{person.status or 'UNKNOWN'}")
    if person.remarks:
        lines.append(f"REMARKS/{person.remarks}")
    return "\n".join(out for line in lines for out in _fit(line))


def format_iar(fields: Mapping[str, str], person: Person | None) -> str:
    """The text of an IAR: what DHS holds for the IAQ's subject.

    ``fields`` are the IAQ's fields (echoed so the officer sees what was
    asked); ``person`` is what :meth:`LeisStore.find_for_iaq` found. Without
    a person the text has the line ``NO RECORD`` (PROTOCOL part 6).
    """
    f = {k.strip().upper(): _printable(v.strip()) for k, v in fields.items() if v}
    lines = ["DHS LEIS IMMIGRATION ALIEN RESPONSE"]
    asked = ".".join(f"{tag}/{f[tag]}" for tag in ("ATN", "PHN") if tag in f)
    if asked:
        lines.append(asked)
    subject = ".".join(f"{tag}/{f[tag]}" for tag in ("NAM", "DOB", "SEX", "POB", "ARN")
                       if tag in f)
    lines.append(f"SUBJECT {subject}" if subject else "SUBJECT NOT GIVEN")
    if person is None:
        lines.append("NO RECORD")
        lines.append("DHS HOLDS NO RECORD MATCHING THE SUBJECT")
        return "\n".join(out for line in lines for out in _fit(line))
    lines.append(f"RECORD FOUND DIN/{person.din}")
    lines.append(f"NAM/{person.name}")
    lines += [f"AKA/{a}" for a in person.aliases]
    lines.append("DOB/" + ",".join(person.dobs))
    lines.append(f"SEX/{person.sex}.POB/{person.pob}")
    lines += [f"ARN/{a}" for a in person.ids("ARN")] or ["ARN/NONE ON FILE"]
    lines.append(f"STATUS/{person.status or 'UNKNOWN'}")
    if person.contacts:
        last = max(person.contacts, key=lambda c: c.date)
        lines.append(f"LAST DHS CONTACT/{last.date} {last.component} {last.kind} {last.place}")
    if person.locations:
        # The current address (no end date) if any, else the latest one.
        loc = max(person.locations, key=lambda x: (not x.until, x.until, x.since))
        lines.append(f"LAST KNOWN LOCATION/{loc.address}, {loc.city}, {loc.state}")
    if person.remarks:
        lines.append(f"REMARKS/{person.remarks}")
    return "\n".join(out for line in lines for out in _fit(line))
