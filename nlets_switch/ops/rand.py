"""RAND, Nlets' message-log search on the wire: ``NLQ`` as Nlets has it (docs/records.md).

Fields (schemas/NLQ.yaml): ``TYP`` one or more keys, ``BEG`` and ``END``
(mandatory, ``CCYYMMDDHHMM`` in the switch's time zone), exactly one of
``FND`` (free text) or ``NAM`` (a name: its components in any order, ``*``
after the first character of a component matches the rest of a word), then
``AND`` (a further term the message must also hold) and ``ORR`` (an
alternative term), each read as the first term is (text or name), and
``SRC``/``DST`` (the sending and a destination ORI).

Visibility: a requester sees the messages it sent or received; a control
terminal, those of every ORI of its state. Keys of ``TYP`` the switch does
not know are named in a warning line. The old fields of the switch's first
message log (``ORI MKE CTL FRM TOT LIM``) are refused, naming the new ones.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from datetime import UTC, tzinfo
from typing import Final

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.ops.msglog import LogSource, _parse_nlets_time, _summary_line
from nlets_switch.store.base import LoggedMessage, MessageQuery
from nlets_switch.store.sqlite import as_store

#: Nlets' answer when nothing matches (PROTOCOL part 6 reads it as no record).
NOT_ON_FILE: Final = "NOT ON FILE"
#: The fields of the first message log, and what replaces each.
OLD_FIELDS: Final = {"ORI": "SRC OR DST", "MKE": "TYP", "CTL": "FND", "FRM": "BEG",
                     "TOT": "END", "LIM": "(NONE)"}
#: Most messages one NLR lists; most the search reads in one period.
MAX_LISTED: Final = 999
MAX_SCANNED: Final = 100_000
_WORD = re.compile(r"[A-Z0-9']+")


def check_fields(fields: Sequence[tuple[str, str]]) -> None:
    """Refuse the old field names with ER ``.22.`` naming Nlets' own."""
    old = [t for t, _ in fields if t in OLD_FIELDS]
    if old:
        raise MessageError(ErCode.FORMAT, "RAND FIELDS ARE TYP BEG END FND OR NAM, AND ORR "
                           "SRC DST; NOT " + " ".join(old))


def _name_matches(term: str, text_words: list[str]) -> bool:
    words = set(text_words)
    for p in (p for p in re.split(r"[ ,]+", term.upper()) if p):
        stem = p.rstrip("*")
        if p.endswith("*") and stem:
            if not any(w.startswith(stem) for w in text_words):
                return False
        elif stem not in words:
            return False
    return True


def _holds(text: str, term: str, by_name: bool) -> bool:
    upper = text.upper()
    if not by_name:
        return term.upper() in upper
    return _name_matches(term, _WORD.findall(upper))


def matches(text: str, first: str, ands: Sequence[str], orrs: Sequence[str],
            by_name: bool) -> bool:
    """Whether a message text holds the search: (first and every AND) or any ORR."""
    if all(_holds(text, t, by_name) for t in (first, *ands)):
        return True
    return any(_holds(text, t, by_name) for t in orrs)


def _involves(m: LoggedMessage, ori: str) -> bool:
    return ori in m.destinations or any(d.receiver == ori or d.addressed == ori
                                        for d in m.deliveries)


def answer_rand(db: LogSource, requester_ori: str, fields: Sequence[tuple[str, str]],
                known_keys: Collection[str], *, control_terminal: bool = False,
                tz: tzinfo = UTC) -> str:
    """The text of the NLR answering a RAND ``NLQ``: a warning line for keys not
    searched, a count line and one line per message (newest first), or
    ``NOT ON FILE``. ``control_terminal`` widens what the requester sees to its
    state's traffic. Raises MessageError for the old field names."""
    check_fields(fields)
    f = dict(fields)
    keys = f["TYP"].split(",")
    unknown = [k for k in keys if k not in known_keys]
    keys = [k for k in keys if k in known_keys]
    by_name = "NAM" in f
    first = f["NAM"] if by_name else f["FND"]
    ands = [v for t, v in fields if t == "AND"]
    orrs = [v for t, v in fields if t == "ORR"]
    q = MessageQuery(key=keys[0] if len(keys) == 1 else None,
                     since=_parse_nlets_time(f["BEG"], tz),
                     until=_parse_nlets_time(f["END"], tz) + 59.999, limit=MAX_SCANNED,
                     visible_to=None if control_terminal else requester_ori,
                     visible_state=requester_ori[:2] if control_terminal else None)
    found: list[LoggedMessage] = []
    for m in as_store(db).find_messages(q, with_text=True):
        if m.key not in keys or not matches(m.text or "", first, ands, orrs, by_name):
            continue
        if "SRC" in f and m.origin != f["SRC"]:
            continue
        if "DST" in f and not _involves(m, f["DST"]):
            continue
        found.append(m)
        if len(found) >= MAX_LISTED:
            break
    lines = [f"WARNING: KEYS NOT SEARCHED: {' '.join(unknown)}"] if unknown else []
    if not found:
        return "\n".join([*lines, NOT_ON_FILE])
    head = "1 MESSAGE" if len(found) == 1 else f"{len(found)} MESSAGES"
    return "\n".join([*lines, head, *(_summary_line(m, tz) for m in found)])
