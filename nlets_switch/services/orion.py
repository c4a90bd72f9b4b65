"""ORION on the wire: ``TQ`` looks agencies up, ``TA``/``TU``/``TD`` keep them
(docs/services.md). Pure helpers; the NL service calls them and does the I/O.

* ``TQ`` to ``OD``: by ``ORI``, by ``STA`` + ``CTY``, or by ``TYP`` (``STA``
  narrows it); answered with ``TR``: a count line and one line per record, or
  ``NOT ON FILE``.
* ``TA`` adds a record, ``TU`` changes one, ``TD`` removes one: only from a
  control terminal, and only for ORIs of its own state; anyone else gets
  ER ``.02.``. A change takes effect at once (routing and sign-on), is kept in
  the store and applied over the configuration at every start, and audited.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any, Final

from nlets_switch.core.directory import Directory
from nlets_switch.core.entries import Entry
from nlets_switch.errors import ErCode, MessageError
from nlets_switch.store.base import OrionRecord

#: Nlets' no-record line for ORION (PROTOCOL part 6 reads it as no record).
NOT_ON_FILE: Final = "NOT ON FILE"
#: Keys that change ORION, and their audit events.
CHANGE_KEYS: Final[Mapping[str, str]] = {
    "TA": "orion_add", "TU": "orion_update", "TD": "orion_delete"}

#: The fields of an entry ORION keeps, as stored (``OrionRecord.record``).
_STORED: Final = ("name", "state", "role", "signs_on", "agency_type", "address", "city",
                  "zip", "phone", "active")


def to_record(e: Entry) -> dict[str, Any]:
    """The stored form of an entry."""
    return {k: getattr(e, k) for k in _STORED}


def from_record(ori: str, rec: Mapping[str, Any], base: Entry | None) -> Entry:
    """An entry from its stored form (over the configured one, which keeps its
    credential, keys and speaks-for)."""
    values = {k: rec[k] for k in _STORED if k in rec}
    if base is not None:
        return dataclasses.replace(base, **values)
    return Entry(ori=ori, **{"name": ori, "state": ori[:2], "role": "agency",
                             "signs_on": False, **values})


def apply_records(directory: Directory, configured: Mapping[str, Entry],
                  records: Iterable[OrionRecord]) -> int:
    """Apply stored ORION changes over the configured directory; how many applied."""
    n = 0
    for r in records:
        if r.record is None:
            n += directory.remove(r.ori) is not None
        else:
            directory.put(from_record(r.ori, r.record, configured.get(r.ori)))
            n += 1
    return n


def line(e: Entry) -> str:
    """One record as ``TR`` lists it."""
    parts = [f"ORI/{e.ori}", f"ANM/{e.name}"]
    for tag, value in (("ADR", e.address), ("CTY", e.city), ("STA", e.state),
                       ("ZIP", e.zip), ("PHN", e.phone), ("TYP", e.agency_type)):
        if value:
            parts.append(f"{tag}/{value}")
    parts.append(f"ACT/{'Y' if e.active else 'N'}")
    return ".".join(parts)


def answer(entries: list[Entry]) -> str:
    """The ``TR`` text: a count and the records, or ``NOT ON FILE``."""
    if not entries:
        return f"ORION\n{NOT_ON_FILE}"
    n = len(entries)
    return "\n".join([f"ORION: {n} RECORD{'S' if n != 1 else ''}", *map(line, entries)])


def search(directory: Directory, f: Mapping[str, str]) -> list[Entry]:
    """``TQ``: by ``ORI``; by ``STA`` and ``CTY``; by ``TYP`` (``STA`` narrows it)."""
    if "ORI" in f:
        e = directory.entry(f["ORI"])
        return [e] if e is not None else []
    sta, cty, typ = f.get("STA"), f.get("CTY", "").upper(), f.get("TYP")
    out = [e for e in directory
           if (sta is None or e.state == sta) and (not cty or e.city == cty)
           and (typ is None or e.agency_type == typ)]
    return sorted(out, key=lambda e: e.ori)


def change(directory: Directory, key: str, sender: str,
           f: Mapping[str, str]) -> tuple[Entry, Entry | None]:
    """Check a ``TA``/``TU``/``TD`` from ``sender`` and apply it to ``directory``.

    Returns (the entry before or as added, the entry now; None when deleted);
    raises MessageError for what the sender may not do.
    """
    ori = f["ORI"]
    who = directory.entry(sender)
    if who is None or not who.is_control_terminal:
        raise MessageError(ErCode.KEY_NOT_ALLOWED, f"{key} ONLY FROM A CONTROL TERMINAL")
    if ori[:2] != who.state:
        raise MessageError(ErCode.KEY_NOT_ALLOWED,
                           f"{who.ori} MAY CHANGE ORION RECORDS OF {who.state} ONLY")
    old = directory.entry(ori)
    if old is not None and old.is_control_terminal:
        raise MessageError(ErCode.KEY_NOT_ALLOWED,
                           f"{ori} IS A CONTROL TERMINAL: ITS RECORD IS CONFIGURATION")
    if key == "TA":
        if old is not None:
            raise MessageError(ErCode.FORMAT, f"{ori} IS ALREADY ON FILE; USE TU")
        new = _with_tags(Entry(ori=ori, name=f["ANM"], state=ori[:2], role="agency",
                               signs_on=False), f)
        directory.put(new)
        return new, new
    if old is None:
        raise MessageError.naming(ErCode.DESTINATION, "NOT ON FILE IN ORION", [ori])
    if key == "TD":
        directory.remove(ori)
        return old, None
    new = _with_tags(old, f)
    directory.put(new)
    return old, new


def _with_tags(e: Entry, f: Mapping[str, str]) -> Entry:
    """``e`` with the values a TA or TU gives (tags it lacks keep ``e``'s)."""
    return dataclasses.replace(
        e, name=f.get("ANM", e.name), address=f.get("ADR", e.address).upper(),
        city=f.get("CTY", e.city).upper(), zip=f.get("ZIP", e.zip),
        phone=f.get("PHN", e.phone), agency_type=f.get("TYP", e.agency_type),
        active=f["ACT"] == "Y" if "ACT" in f else e.active)
