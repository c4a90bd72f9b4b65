"""DHS LEIS: the text of the answers, GPR summaries and records and IAR (pure).

Every line is printable ASCII and at most 80 characters; a search that
finds nobody answers the line ``NO RECORD`` (PROTOCOL part 6).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Final

from nlets_switch.services.leis_model import DEFAULT_LIMIT, SearchResult, printable
from nlets_switch.store.leis import Person
from nlets_switch.wire.domain import NO_RECORD

__all__ = ["format_iar", "format_record", "format_summary"]

_LINE_WIDTH: Final = 80


def _fit(line: str, indent: str = "    ") -> list[str]:
    """A line as one or more lines of at most 80 printable characters."""
    line = printable(line)
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
        return NO_RECORD
    lines: list[str] = []
    for hit in result.hits:
        line = printable(f"DIN/{hit.din}.NAM/{hit.name}.DOB/{hit.dob}.SEX/{hit.sex}")
        if hit.matched:
            with_alias = printable(f"{line}.AKA/{hit.matched}")
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
    asked); ``person`` is what
    :meth:`~nlets_switch.services.leis.LeisData.find_for_iaq` found. Without a
    person the text has the line ``NO RECORD`` (PROTOCOL part 6).
    """
    f = {k.strip().upper(): printable(v.strip()) for k, v in fields.items() if v}
    lines = ["DHS LEIS IMMIGRATION ALIEN RESPONSE"]
    asked = ".".join(f"{tag}/{f[tag]}" for tag in ("ATN", "PHN") if tag in f)
    if asked:
        lines.append(asked)
    subject = ".".join(f"{tag}/{f[tag]}" for tag in ("NAM", "DOB", "SEX", "POB", "ARN")
                       if tag in f)
    lines.append(f"SUBJECT {subject}" if subject else "SUBJECT NOT GIVEN")
    if person is None:
        lines.append(NO_RECORD)
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
