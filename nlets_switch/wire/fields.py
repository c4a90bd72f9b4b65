"""Message text fields (PROTOCOL part 2) and their value checks (FIELDS.md), pure.

:func:`parse_fields` splits a message text into ``TAG/value`` fields; a
:class:`FieldSpec` (read from ``schemas/*.yaml`` by
:mod:`nlets_switch.wire.schema_load`) checks one value and says which ``ER``
a bad one gets. The formats a spec may name (:data:`FORMATS`) use the domain
rules of :mod:`nlets_switch.wire.domain` for names and dates of birth.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.wire.domain import is_dob, is_name

__all__ = ["DEFAULT_ER", "FIELD_ERS", "FORMATS", "TAG", "FieldSpec", "parse_fields"]

# --------------------------------------------------------------------------
# Field grammar (PROTOCOL part 2).
# --------------------------------------------------------------------------

# A field ends at a period, which line breaks may follow; line breaks alone
# also separate fields. Blank lines count as one separator.
_SEPARATOR = re.compile(r"\.(?:\r\n|\r|\n)*|(?:\r\n|\r|\n)+")
# TAG is 3 uppercase letters. A period cannot occur in the value (it would
# have ended the field); other characters are left to the value checks, so
# that a bad character is reported against its field.
_FIELD = re.compile(r"([A-Z]{3})/(.*)", re.DOTALL)
#: A field tag: 3 uppercase letters.
TAG: Final = re.compile(r"[A-Z]{3}")
_TRAILING = "\r\n"


def parse_fields(text: str) -> tuple[tuple[str, str], ...]:
    """Split a message text into ``(tag, value)`` pairs, in order.

    ``text`` is what follows ``TXT`` with the leading blanks and line breaks
    already removed; trailing line breaks are ignored. An empty text has no
    fields. Raises :class:`MessageError` ``.22.`` naming the fault for a text
    that ends with a period, an empty field (``..``), a field without
    ``TAG/``, an empty value or a duplicate tag.
    """
    text = text.rstrip(_TRAILING)
    if not text:
        return ()
    if text[-1] == ".":
        raise MessageError(ErCode.FORMAT, "TEXT ENDS WITH A PERIOD")
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, raw in enumerate(_SEPARATOR.split(text), start=1):
        m = _FIELD.fullmatch(raw)
        if m is None:
            # Name the field by position: its text may be criminal-justice
            # information, and ER detail lines should not echo it twice.
            what = "EMPTY FIELD" if not raw else "NO TAG/ IN FIELD"
            raise MessageError(ErCode.FORMAT, f"{what} {n}")
        tag, value = m.group(1), m.group(2)
        if not value:
            raise MessageError.naming(ErCode.FORMAT, "EMPTY FIELD", (tag,))
        if tag in seen:
            raise MessageError.naming(ErCode.FORMAT, "DUPLICATE FIELD", (tag,))
        seen.add(tag)
        fields.append((tag, value))
    return tuple(fields)


# --------------------------------------------------------------------------
# Value formats (FIELDS.md).
# --------------------------------------------------------------------------


def _is_datetime(value: str) -> bool:
    """CCYYMMDDHHMM, a real date and time."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    try:
        _dt.datetime(int(value[:4]), int(value[4:6]), int(value[6:8]),
                     int(value[8:10]), int(value[10:12]))
    except ValueError:
        return False
    return True


_PRINTABLE = re.compile(r"[\x20-\x7e]*")

#: Named formats usable as ``format:`` in YAML. ``text`` is any value the
#: grammar allows (printable ASCII, no period); ``date`` is a DOB-style date
#: (MMDDYY or CCYYMMDD) and ``name`` a NAM (LAST,FIRST MIDDLE SUFFIX), both
#: as :mod:`nlets_switch.wire.domain` defines them.
FORMATS: Final[Mapping[str, Callable[[str], bool]]] = MappingProxyType({
    "date": is_dob,
    "datetime": _is_datetime,
    "name": is_name,
    "digits": lambda v: v.isascii() and v.isdigit(),
    "alnum": lambda v: v.isascii() and v.isalnum() and v == v.upper(),
    "letters": lambda v: v.isascii() and v.isalpha() and v == v.upper(),
    "text": lambda v: _PRINTABLE.fullmatch(v) is not None,
})

# Default ER codes by tag (PROTOCOL part 4): DOB .05, year fields .10, ATN
# .16; every other bad value is .22.
DEFAULT_ER: Final[Mapping[str, ErCode]] = MappingProxyType({
    "DOB": ErCode.DOB,
    "LIY": ErCode.YEAR,
    "VYR": ErCode.YEAR,
    "ATN": ErCode.ATN,
})
#: The ER codes a bad field value may be answered with.
FIELD_ERS: Final = frozenset({ErCode.DOB, ErCode.YEAR, ErCode.ATN, ErCode.FORMAT})


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field tag and the checks its value must pass.

    A value passes when its length is within ``min_len``..``max_len``, it
    matches ``pattern`` (whole value), is one of ``enum`` and passes the
    named ``format``, for each of those that is set. A value that fails is
    answered with ``er``.
    """

    tag: str
    description: str
    format: str | None = None
    pattern: re.Pattern[str] | None = None
    enum: frozenset[str] | None = None
    min_len: int = 1
    max_len: int | None = None
    er: ErCode = ErCode.FORMAT

    def ok(self, value: str) -> bool:
        """True when ``value`` is a valid value of this field."""
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return False
        if self.enum is not None and value not in self.enum:
            return False
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            return False
        # Without a named format a value is text: printable ASCII.
        return FORMATS[self.format or "text"](value)

    def check(self, value: str) -> None:
        """Raise the MessageError (``er`` naming the tag) for a bad value."""
        if not self.ok(value):
            raise MessageError.naming(self.er, "INVALID FIELD", (self.tag,))
