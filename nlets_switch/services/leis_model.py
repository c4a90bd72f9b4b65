"""DHS LEIS: the search results and the rules that reduce what people type (pure).

Names are split by :func:`nlets_switch.wire.domain.parse_name` and dates of
birth read by :func:`nlets_switch.wire.domain.parse_dob`; addresses, alien
numbers and the phonetic codes of names are reduced here, the same way for
the search keys the store indexes (:func:`index_terms`, kept only as keyed
tags) and for the queries that search them. The person record itself is the
store's typed row, :class:`nlets_switch.store.leis.Person`.
"""

from __future__ import annotations

import datetime as _dt
import re
import unicodedata
from dataclasses import dataclass
from typing import Final

import jellyfish

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.store.leis import Person, PersonRow
from nlets_switch.wire.domain import Name, parse_dob, parse_name

__all__ = [
    "COMPONENTS",
    "DEFAULT_LIMIT",
    "IDENTIFIER_KINDS",
    "Hit",
    "SearchResult",
    "digits",
    "first_matches",
    "index_terms",
    "location_address",
    "middle_compatible",
    "name_similarity",
    "normalize_address",
    "normalize_arn",
    "normalize_dob",
    "person_row",
    "phonetic",
    "printable",
    "to_ascii",
]

#: Summary lines a GPR carries unless the caller says otherwise.
DEFAULT_LIMIT: Final = 20

#: DHS components a prior contact can name.
COMPONENTS: Final = ("ICE", "CBP", "USCIS")

#: Identifier kinds a person can carry, in the order a record lists them.
IDENTIFIER_KINDS: Final = ("ARN", "SOC", "PPN", "FBI")

_NON_LETTERS = re.compile(r"[^A-Z]")


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


# --------------------------------------------------------------------------
# Normalisation helpers.
# --------------------------------------------------------------------------


def phonetic(text: str) -> tuple[str, str]:
    """Metaphone and NYSIIS codes of the letters of a name part."""
    letters = _NON_LETTERS.sub("", text.upper())
    if not letters:
        return "", ""
    return jellyfish.metaphone(letters), jellyfish.nysiis(letters)


def name_similarity(q: Name, last: str, first: str, middle: str) -> float:
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


def first_matches(q: str, q_mp: str, q_ny: str, c: str, c_mp: str, c_ny: str) -> bool:
    """A candidate's first name against the query's: same, same sound, or
    an initial that fits."""
    if len(q) == 1 or len(c) == 1:
        return c[:1] == q[:1]
    return c == q or (bool(q_mp) and c_mp == q_mp) or (bool(q_ny) and c_ny == q_ny)


def middle_compatible(q: str, c: str) -> bool:
    """An unknown middle name fits anything; an initial fits a full name."""
    if not q or not c:
        return True
    if len(q) == 1 or len(c) == 1:
        return q[0] == c[0]
    return q == c


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


def normalize_dob(value: str, today: _dt.date | None = None) -> str:
    """A DOB as CCYYMMDD from ``CCYYMMDD`` or ``MMDDYY`` (FIELDS.md ``DOB``).

    The century of ``MMDDYY`` is chosen by
    :func:`~nlets_switch.wire.domain.parse_dob`: the latest that does not
    put the date after ``today``, or without ``today`` the two-digit-year
    pivot. Anything that is not a real date raises :class:`MessageError`
    ``.05.``.
    """
    found = parse_dob(value, today)
    if found is None:
        raise MessageError(ErCode.DOB, f"DOB/{printable(value.strip())[:20]}")
    return found.strftime("%Y%m%d")


def digits(value: str) -> str:
    """``value`` with blanks and hyphens dropped (``900-33-1234`` -> ``900331234``)."""
    return re.sub(r"[\s-]", "", value)


def normalize_arn(value: str) -> str | None:
    """An A-number as 9 digits (``A`` prefix, hyphens and spaces dropped, an
    8-digit number zero-padded), or None when it is not 8 or 9 digits."""
    text = digits(value.upper())
    if text.startswith("A"):
        text = text[1:]
    if not re.fullmatch(r"\d{8,9}", text):
        return None
    return text.zfill(9)


def printable(text: str) -> str:
    """Printable ASCII only: anything else becomes ``?`` (answers are 7-bit)."""
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def to_ascii(text: str) -> str:
    """Upper case, accents dropped (MUÑOZ -> MUNOZ), spaces collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.upper().split())


def location_address(address: str, city: str, state: str) -> str:
    """A known location as address searches compare it: ``address city state``, normalised."""
    return normalize_address(f"{address} {city} {state}")


def index_terms(p: Person) -> tuple[tuple[str, str], ...]:
    """The search keys a person is found by, as ``(field, value)`` pairs.

    ``last``, ``last_mp``, ``last_ny``: the last name of every name and alias,
    spelled and coded (metaphone, NYSIIS); ``dob``: every date of birth;
    ``ident``: ``KIND:VALUE`` of every identifier; ``adr``: every word of every
    normalised address; ``din``. A search finds candidates by them, then checks
    each candidate by its full rule; so they need only contain every key
    that rule can match on.
    """
    terms = {("din", p.din)}
    for full in (p.name, *p.aliases):
        last = parse_name(full).last
        last_mp, last_ny = phonetic(last)
        terms.update((("last", last), ("last_mp", last_mp), ("last_ny", last_ny)))
    terms.update(("dob", d) for d in p.dobs)
    terms.update(("ident", f"{i.kind}:{i.value}") for i in p.identifiers)
    for loc in p.locations:
        terms.update(("adr", w) for w in location_address(loc.address, loc.city,
                                                           loc.state).split())
    return tuple(sorted(terms))


def person_row(p: Person, origin: str) -> PersonRow:
    """A person with the search keys the store indexes it by (:func:`index_terms`)."""
    return PersonRow(p, origin, index_terms(p))
