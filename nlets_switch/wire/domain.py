"""Nlets domain rules, written once: ORIs, state codes, names, dates of birth.

Every module that needs one of these rules imports it from here: the
message header and the schemas (``wire``), the configuration and the
directory, the LEIS data set and the simulated states (``services``), and
the certificates of the PKI (``server``). Pure and standard library only.

* ORIs (PROTOCOL part 2): :data:`ORI_PATTERN`, :func:`is_ori`, the switch's
  own :data:`SWITCH_ORI` (part 4) and ICE LESC's :data:`LESC_ORI` (part 5).
* State codes (FIELDS.md): :data:`US_STATES` are NCIC codes, which differ
  from postal codes for Nebraska (``NB``, postal ``NE``): :func:`postal_code`.
* Names (FIELDS.md ``NAM``): ``LAST,FIRST MIDDLE SUFFIX``; :func:`is_name`
  checks the form, :func:`parse_name` splits a value into a :class:`Name`.
* Dates of birth (FIELDS.md ``DOB``): ``MMDDYY`` or ``CCYYMMDD``, a real
  date; :func:`parse_dob` reads one, with one century rule for ``MMDDYY``.
* No-record answers (PROTOCOL part 6): :data:`NO_RECORD`, :func:`is_no_record`.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

__all__ = [
    "LESC_ORI",
    "NAME_MAX_LEN",
    "NAME_PATTERN",
    "NAME_SUFFIXES",
    "NO_RECORD",
    "ORI_PATTERN",
    "POSTAL_CODES",
    "SWITCH_ORI",
    "TWO_DIGIT_YEAR_PIVOT",
    "US_STATES",
    "Name",
    "is_dob",
    "is_name",
    "is_no_record",
    "is_ori",
    "parse_dob",
    "parse_name",
    "postal_code",
    "real_date",
    "simulated_ct_ori",
]

# --------------------------------------------------------------------------
# ORIs
# --------------------------------------------------------------------------

#: An ORI (PROTOCOL part 2): a 2-letter state, province or territory code,
#: then 7 letters or digits (``AZNLETS20``, ``ID0010100``).
ORI_PATTERN: Final = r"[A-Z]{2}[A-Z0-9]{7}"
_ORI = re.compile(ORI_PATTERN)

#: The switch's own ORI: it alone sends ``ER`` and ``SM`` (PROTOCOL part 4),
#: it answers an accepted sign-on with it (part 1), and the server
#: certificate names it (part 7).
SWITCH_ORI: Final = "NL0000000"

#: ICE LESC and DHS LEIS answer for ``AX`` as this ORI (PROTOCOL part 5).
LESC_ORI: Final = "VTICE0900"


def is_ori(text: str) -> bool:
    """True for a well-formed 9-character ORI (``AZNLETS20``); upper case only."""
    return _ORI.fullmatch(text) is not None


def simulated_ct_ori(state: str) -> str:
    """The control-terminal ORI the switch uses for a simulated state (``TXNLETS00``)."""
    return f"{state}NLETS00"


# --------------------------------------------------------------------------
# State codes
# --------------------------------------------------------------------------

#: The 50 US states and DC as NCIC codes (FIELDS.md: Nebraska is ``NB``,
#: not the postal ``NE``; every other state's NCIC code is its postal code).
US_STATES: Final[tuple[str, ...]] = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
    "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NB",
    "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
    "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
)

#: NCIC state codes whose postal code differs (FIELDS.md).
POSTAL_CODES: Final = MappingProxyType({"NB": "NE"})


def postal_code(state: str) -> str:
    """The postal code of an NCIC state code, for mailing addresses (``NB`` -> ``NE``)."""
    return POSTAL_CODES.get(state, state)


# --------------------------------------------------------------------------
# Names (NAM)
# --------------------------------------------------------------------------

#: NCIC's NAM holds at most 30 characters (FIELDS.md).
NAME_MAX_LEN: Final = 30

#: Generation suffixes that may end a name (``SMITH,JOHN JR``).
NAME_SUFFIXES: Final = frozenset({"JR", "SR", "II", "III", "IV", "V"})

# A part of a name: letters, with blanks, hyphens and apostrophes inside it
# (O'BRIEN, SMITH-JONES, VAN DYKE); it starts and ends with a letter.
_NAME_PART: Final = r"[A-Z](?:[A-Z' -]*[A-Z])?"
#: The form of a NAM value (FIELDS.md): ``LAST,FIRST MIDDLE SUFFIX``, the
#: blank after the comma optional. Length is checked apart (:data:`NAME_MAX_LEN`).
NAME_PATTERN: Final = rf"{_NAME_PART}, ?{_NAME_PART}"
_NAME = re.compile(NAME_PATTERN)
# What parse_name keeps: the characters a name may hold, and the comma.
_NOT_NAME_CHAR = re.compile(r"[^A-Z,' -]")


def is_name(text: str) -> bool:
    """True when ``text`` has the form ``LAST,FIRST MIDDLE SUFFIX`` (upper case)."""
    return _NAME.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class Name:
    """A name split into its parts, upper case; any part may be empty.

    ``middle`` holds every word between the first name and the suffix.
    """

    last: str
    first: str
    middle: str = ""
    suffix: str = ""

    @property
    def display(self) -> str:
        """``LAST,FIRST MIDDLE`` (as much as is known; the suffix left out)."""
        text = f"{self.last},{self.first}" if self.first else self.last
        return f"{text} {self.middle}" if self.middle else text

    def without_apostrophes(self) -> Name:
        """The name with apostrophes dropped (``O'BRIEN`` -> ``OBRIEN``), for
        files that write names without them."""
        return Name(*(part.replace("'", "") for part in
                      (self.last, self.first, self.middle, self.suffix)))


def parse_name(text: str) -> Name:
    """Split a NAM value ``LAST,FIRST MIDDLE SUFFIX`` into its parts.

    Lenient, for searching: lower case is raised, runs of blanks count as
    one, characters a name cannot hold (digits, periods) are dropped, and a
    value without a comma is a last name alone. A suffix of
    :data:`NAME_SUFFIXES` at the end is split off, but never the first name
    itself (``SMITH,JR`` is first name ``JR``).
    """
    clean = _NOT_NAME_CHAR.sub("", " ".join(text.upper().split()))
    last, _, rest = clean.partition(",")
    words = rest.replace(",", " ").split()
    suffix: list[str] = []
    while len(words) > 1 and words[-1] in NAME_SUFFIXES:
        suffix.insert(0, words.pop())
    return Name(
        last=" ".join(last.split()),
        first=words[0] if words else "",
        middle=" ".join(words[1:]),
        suffix=" ".join(suffix),
    )


# --------------------------------------------------------------------------
# Dates of birth (DOB)
# --------------------------------------------------------------------------

#: Without a ``today``, a two-digit year ``YY`` below this pivot is 20YY,
#: otherwise 19YY (the idea of POSIX ``strptime %y``, with a pivot suited to
#: dates of birth).
TWO_DIGIT_YEAR_PIVOT: Final = 30

_DIGITS6 = re.compile(r"[0-9]{6}")
_DIGITS8 = re.compile(r"[0-9]{8}")


def real_date(year: int, month: int, day: int) -> _dt.date | None:
    """The date, or None when there is no such day (``2023-02-29``)."""
    try:
        return _dt.date(year, month, day)
    except ValueError:
        return None


def parse_dob(value: str, today: _dt.date | None = None) -> _dt.date | None:
    """The date a DOB value means, or None when it is not a real date.

    ``CCYYMMDD`` is read as written. ``MMDDYY`` is 20YY or 19YY: with
    ``today``, the later of the two that is not after ``today`` (a person is
    not born tomorrow); without it, 20YY when YY is below
    :data:`TWO_DIGIT_YEAR_PIVOT`, 19YY otherwise. Blanks around the value
    are ignored.
    """
    text = value.strip()
    if _DIGITS8.fullmatch(text):
        return real_date(int(text[:4]), int(text[4:6]), int(text[6:]))
    if not _DIGITS6.fullmatch(text):
        return None
    month, day, yy = int(text[:2]), int(text[2:4]), int(text[4:])
    if today is None:
        return real_date((2000 if yy < TWO_DIGIT_YEAR_PIVOT else 1900) + yy, month, day)
    for century in (2000, 1900):
        found = real_date(century + yy, month, day)
        if found is not None and found <= today:
            return found
    return None


def is_dob(value: str) -> bool:
    """True for ``MMDDYY`` or ``CCYYMMDD`` that is a real date (FIELDS.md ``DOB``).

    Whether ``MMDDYY`` is real does not depend on its century but for
    ``022900``, which the pivot reads as 2000, a leap year.
    """
    return value == value.strip() and parse_dob(value) is not None


# --------------------------------------------------------------------------
# No-record answers
# --------------------------------------------------------------------------

#: The line a simulated state or LEIS answers when nothing is on file.
NO_RECORD: Final = "NO RECORD"

# PROTOCOL part 6: a line that reads NO RECORD or NOT ON FILE.
_NO_RECORD = re.compile(r"^[ \t]*(?:NO RECORD|NOT ON FILE)[ \t.]*$", re.MULTILINE)


def is_no_record(text: str) -> bool:
    """True when a response text has a line reading ``NO RECORD`` or ``NOT ON FILE``.

    Blanks around the words and a final period are tolerated; the line must
    say nothing else (``NO RECORD FOUND FOR ...`` is not a no-record line).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _NO_RECORD.search(text) is not None
