"""DHS LEIS: an agency's own persons, from a JSON Lines load file (docs/leis.md).

:func:`parse_load_file` checks every row first and returns the persons, or
raises :class:`LeisLoadError` listing every bad row; loading them into the
data set is :meth:`nlets_switch.services.leis.LeisData.load_file`. Names
must have the form of FIELDS.md's ``NAM``
(:data:`nlets_switch.wire.domain.NAME_PATTERN`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from nlets_switch.errors import NletsError
from nlets_switch.services.leis_data import FIXED_DINS
from nlets_switch.services.leis_model import (
    COMPONENTS,
    IDENTIFIER_KINDS,
    digits,
    normalize_arn,
    to_ascii,
)
from nlets_switch.store.leis import Contact, Identifier, Location, Person
from nlets_switch.wire.domain import NAME_MAX_LEN, NAME_PATTERN, parse_name, real_date

__all__ = ["LeisLoadError", "parse_load_file"]


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


_NAME = re.compile(NAME_PATTERN)
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
        clean = to_ascii(value)
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
        if text and real_date(int(text[:4]), int(text[4:6]), int(text[6:])) is None:
            self.bad(where, "not a real date")
            return ""
        return text

    def name(self, where: str, value: object) -> str:
        text = self.text(where, value, max_len=NAME_MAX_LEN, pattern=_NAME,
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
                    norm = digits(value)
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
