"""The message log (what Nlets calls RAND): search, show and export the journal.

Everything here reads through the store's
:class:`~nlets_switch.store.base.MessageLogStore` (or a SQLite connection to
the journal, which :func:`~nlets_switch.store.sqlite.as_store` wraps); tools
use a read-only one (``open_store(path, readonly=True)``), which works while
the switch runs because the journal is in WAL mode. This module holds no SQL:
it turns the store's typed rows into the records and wire answers users see.
No clock is read here: relative times are resolved by :func:`parse_when`
against a ``now`` the caller passes.

Visibility (issue 4, "an ORI may see only messages that it sent or
received"): a message is *sent* by an ORI when the ORI is its origin or the
link it came in on, and *received* by an ORI when one of its deliveries went
to that ORI as receiver or link. :attr:`Query.visible_to` applies that rule,
and the wire answers :func:`answer_nlq` and :func:`answer_nfq` always do.

Text search matches whole words, all of a query's, in any case, through the
store's word index of keyed blind tokens (no clear word is ever indexed;
:mod:`nlets_switch.store.logquery`, docs/records.md).

Message text is criminal-justice information: :func:`search` never returns
it, :func:`get` and :func:`export` only when asked.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, Final, TextIO, TypeAlias

from nlets_switch.errors import MessageError
from nlets_switch.store.base import DEFAULT_LIMIT, LoggedMessage, MessageLogStore, MessageQuery
from nlets_switch.store.sqlite import Connection, as_store
from nlets_switch.wire.message import format_message, parse_message
from nlets_switch.wire.xml import XmlCodec, is_xml, pretty

#: NLQ's ``LIM`` is at most 999 (schemas/NLQ.yaml); without it the NL service lists this many.
NLQ_DEFAULT_LIMIT: Final = 20
NO_RECORD: Final = "NO RECORD"

_EXPORT_CHUNK: Final = 1000
CSV_COLUMNS: Final = ("id", "received_at", "key", "origin", "link", "destinations", "control",
                      "input_no", "status", "reason", "reply_to", "deliveries")

#: What to look for in the log (the store's :class:`~nlets_switch.store.base.MessageQuery`;
#: ``DEFAULT_LIMIT`` rows unless told).
Query = MessageQuery

__all__ = ["CSV_COLUMNS", "DEFAULT_LIMIT", "FORMS", "NLQ_DEFAULT_LIMIT", "NO_RECORD", "LogSource",
           "Query", "answer_nfq", "answer_nlq", "count", "export", "get", "in_form", "iso",
           "nlq_query", "parse_when", "search"]

#: The forms ``log show --as`` gives a message's text in.
FORMS: Final = ("text", "xml")


# --------------------------------------------------------------------------
# Times
# --------------------------------------------------------------------------

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_when(text: str, now: float, tz: tzinfo = UTC, end_of_day: bool = False) -> float:
    """A POSIX time from ``30m``, ``1h``, ``2d``, ``1w`` (that long before ``now``),
    an ISO date (``2024-01-02``: its start, or its end with ``end_of_day``) or an
    ISO date and time (``2024-01-02T12:00``, ``2024-01-02 12:00:30Z``; without an
    offset it is in ``tz``). Raises ValueError on anything else."""
    m = _RELATIVE.match(text)
    if m:
        return now - float(m[1]) * _UNITS[m[2].lower()]
    s = text.strip()
    if re.fullmatch(r"\d{4}-\d\d-\d\d", s):
        d = date.fromisoformat(s)
        t = time.max if end_of_day else time.min
        return datetime.combine(d, t, tz).timestamp()
    try:
        dt = datetime.fromisoformat(s.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"not a time: {text!r} (use e.g. 30m, 1h, 2d, 2024-01-02 or "
                         "2024-01-02T12:00)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=tz)
    return dt.timestamp()


def iso(ts: float | None) -> str | None:
    """A POSIX time as ISO 8601 UTC with milliseconds (``2024-01-02T12:00:00.000Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _nlets_time(ts: float, tz: tzinfo) -> str:
    return datetime.fromtimestamp(ts, tz).strftime("%Y%m%d%H%M")


def _parse_nlets_time(value: str, tz: tzinfo) -> float:
    """``CCYYMMDDHHMM`` (schemas/NLQ.yaml ``format: datetime``) in the switch's zone."""
    return datetime.strptime(value[:12], "%Y%m%d%H%M").replace(tzinfo=tz).timestamp()


# --------------------------------------------------------------------------
# Queries
# --------------------------------------------------------------------------

#: What the functions below read: any message-log store, or a SQLite connection
#: to the journal (a journal operation's, or a tool's read-only one).
LogSource: TypeAlias = MessageLogStore | Connection


def _fields(m: LoggedMessage) -> dict[str, Any]:
    return {
        "id": m.id, "received_at": iso(m.received_at), "link": m.link, "key": m.key,
        "origin": m.origin, "destinations": list(m.destinations), "control": m.control,
        "input_no": m.input_no, "status": m.status, "reason": m.reason,
        "reply_to": m.reply_to,
    }


def _delivery_states(m: LoggedMessage) -> list[dict[str, Any]]:
    return [{"receiver": d.receiver, "link": d.link, "addressed": d.addressed, "state": d.state}
            for d in m.deliveries]


def _summary(m: LoggedMessage) -> dict[str, Any]:
    d = _fields(m)
    d["deliveries"] = _delivery_states(m)
    return d


def search(db: LogSource, q: Query) -> list[dict[str, Any]]:
    """The messages matching ``q``, newest first, without their text.

    Each is a dict: id, received_at (ISO UTC), key, origin, link,
    destinations (list), control, input_no, status (accepted|rejected),
    reason (the ER code and detail when rejected), reply_to (the message an
    ER/SM answers), deliveries (list of {receiver, link, addressed, state}).
    """
    return [_summary(m) for m in as_store(db).find_messages(q)]


def get(db: LogSource, msg_id: int, with_text: bool = False) -> dict[str, Any] | None:
    """One message and its whole life, or None when the log has no such id.

    Besides the fields of :func:`search`: ``deliveries`` in full (id, receiver,
    link, addressed, output_no, state, created_at, expires_at, sent_at,
    done_at, open), ``caused`` (the ER and SM messages the switch sent about
    it: id, key, received_at, receiver, code, deliveries), and ``text`` (the
    whole input message as received) only when ``with_text``.
    """
    store = as_store(db)
    m = store.get_message(msg_id, with_text=with_text)
    if m is None:
        return None
    msg = _fields(m)
    msg["deliveries"] = [
        {"id": d.id, "receiver": d.receiver, "link": d.link, "addressed": d.addressed,
         "output_no": d.output_no, "state": d.state, "created_at": iso(d.created_at),
         "expires_at": iso(d.expires_at), "sent_at": iso(d.sent_at), "done_at": iso(d.done_at),
         "open": d.open, "held": d.held}
        for d in m.deliveries
    ]
    msg["caused"] = [
        {"id": c.id, "key": c.key, "received_at": iso(c.received_at),
         "receiver": ",".join(c.destinations) or None,
         # The first line of an ER/SM is its numbered reason (PROTOCOL part 4): no CJI.
         "code": (c.text or "").split("\n", 1)[0][:80], "deliveries": _delivery_states(c)}
        for c in store.replies_to(msg_id)
    ]
    if with_text:
        msg["text"] = m.text
    return msg


def in_form(msg: dict[str, Any], form: str, codec: XmlCodec) -> str:
    """The text of a message :func:`get` returned, as legacy text or as XML.

    The journal keeps what the sender sent: the document of an XML link, the
    text of a text link, the bare text of the switch's ER and SM (their
    header is the row's). ``form`` ``text`` translates a document to its
    input text (PROTOCOL part 2); ``xml`` translates the input text to its
    document, pretty-printed. Raises :class:`~nlets_switch.errors.MessageError`
    for what has no other form (a refused message that never parsed).
    """
    stored: str = msg["text"]
    doc = is_xml(stored.encode("ascii", "replace"))
    if form == "text":
        return codec.to_text(stored.encode("ascii")) if doc else stored
    if doc:
        return pretty(stored.encode("ascii"))
    try:
        parse_message(stored)
        text = stored
    except MessageError:
        if msg["status"] != "accepted" or not msg["key"]:
            raise
        # A message of the switch itself (ER, SM): the row holds its header.
        text = format_message(msg["key"], msg["origin"] or msg["link"], msg["destinations"],
                              msg["control"], stored)
    return codec.input_to_xml(text, pretty=True).decode("ascii")


def count(db: LogSource, q: Query) -> int:
    """How many messages match ``q`` (ignoring its limit)."""
    n = as_store(db).count_messages(q)
    return n if q.limit is None else min(n, q.limit)


def _iter_export(store: MessageLogStore, q: Query,
                 with_text: bool) -> Iterator[dict[str, Any]]:
    """Matching messages oldest first, read in chunks so memory stays bounded."""
    last = 0
    left = q.limit
    while left is None or left > 0:
        n = _EXPORT_CHUNK if left is None else min(_EXPORT_CHUNK, left)
        rows = store.find_messages(replace(q, limit=n), after_id=last, oldest_first=True,
                                   with_text=with_text)
        if not rows:
            return
        for m in rows:
            d = _summary(m)
            if with_text:
                d["text"] = m.text
            yield d
        last = rows[-1].id
        if left is not None:
            left -= len(rows)
        if len(rows) < n:
            return


def export(db: LogSource, q: Query, fmt: str, out: TextIO,
           progress: Callable[[int, int], None] | None = None, with_text: bool = False) -> int:
    """Write the messages matching ``q``, oldest first, as ``jsonl`` or ``csv``.

    Each record has the fields of :func:`search` (CSV flattens destinations
    to ``A,B`` and deliveries to ``RECEIVER:state;...``), plus ``text`` when
    ``with_text``. ``progress(done, total)`` is called now and then and at
    the end. Returns the number of messages written.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    store = as_store(db)
    total = count(store, q)
    writer: Any = None
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS + (("text",) if with_text else ()))
    done = 0
    if progress is not None:
        progress(0, total)
    if total == 0:
        return 0
    for d in _iter_export(store, q, with_text):
        if writer is None:
            out.write(json.dumps(d, separators=(",", ":")) + "\n")
        else:
            row = [d["id"], d["received_at"], d["key"], d["origin"], d["link"],
                   ",".join(d["destinations"]), d["control"], d["input_no"], d["status"],
                   d["reason"], d["reply_to"],
                   ";".join(f"{x['receiver']}:{x['state']}" for x in d["deliveries"])]
            if with_text:
                row.append(d["text"])
            writer.writerow(["" if v is None else v for v in row])
        done += 1
        if progress is not None and done % 500 == 0:
            progress(done, total)
    if progress is not None:
        progress(done, max(total, done))
    return done


# --------------------------------------------------------------------------
# The wire: NLQ and NFQ to NL (answers NLR and NFR)
# --------------------------------------------------------------------------


def _summary_line(m: LoggedMessage, tz: tzinfo) -> str:
    """``MID/1042 202401021201 DR TX0000000 AZNLETS20 *CTL`` (schemas/NLR.yaml)."""
    parts = [f"MID/{m.id}", _nlets_time(m.received_at, tz), m.key or "?", m.origin or m.link,
             ",".join(m.destinations) or "-"]
    if m.control:
        parts.append(f"*{m.control}")
    if m.status == "rejected":
        parts.append("REJECTED")
    return " ".join(parts)


def nlq_query(requester_ori: str, fields: Sequence[tuple[str, str]], tz: tzinfo = UTC) -> Query:
    """The :class:`Query` an NLQ's fields ask for, restricted to what the requester may see."""
    f = dict(fields)
    lim = int(f["LIM"]) if f.get("LIM") else NLQ_DEFAULT_LIMIT
    until = _parse_nlets_time(f["TOT"], tz) + 59.999 if f.get("TOT") else None
    return Query(ori=f.get("ORI") or None, key=f.get("MKE") or None,
                 control=f.get("CTL") or None,
                 since=_parse_nlets_time(f["FRM"], tz) if f.get("FRM") else None,
                 until=until, text=f.get("SRC") or None, limit=max(1, min(lim, 999)),
                 visible_to=requester_ori)


def answer_nlq(db: LogSource, requester_ori: str, fields: Sequence[tuple[str, str]],
               tz: tzinfo = UTC) -> str:
    """The text of the NLR answering an NLQ: a count line and one line per message
    (``MID/id CCYYMMDDHHMM KEY ORIGIN DESTINATIONS [*CTL] [REJECTED]``, newest first),
    or ``NO RECORD``. Only messages the requester sent or received are listed.
    ``fields`` are the validated ``(TAG, value)`` pairs (schemas/NLQ.yaml);
    times are read and written in ``tz``, the switch's time zone."""
    q = nlq_query(requester_ori, fields, tz)
    rows = as_store(db).find_messages(q, with_deliveries=False)
    if not rows:
        return NO_RECORD
    head = "1 MESSAGE" if len(rows) == 1 else f"{len(rows)} MESSAGES"
    return "\n".join([head, *(_summary_line(m, tz) for m in rows)])


def answer_nfq(db: LogSource, requester_ori: str, fields: Sequence[tuple[str, str]],
               tz: tzinfo = UTC) -> str:
    """The text of the NFR answering an NFQ (``MID/id``): the message's summary line
    (as in NLR), its delivery states (``TO/RECEIVER STATE``), then the message text
    as the switch received it; or ``NO RECORD`` when there is no such message or
    the requester neither sent nor received it (the two look the same, so that an
    ORI cannot probe for other ORIs' traffic)."""
    f = dict(fields)
    try:
        mid = int(f.get("MID", ""))
    except ValueError:
        return NO_RECORD
    if not 0 <= mid < 2**63:  # beyond 64-bit ids: no such message
        return NO_RECORD
    m = as_store(db).get_message(mid, with_text=True, visible_to=requester_ori)
    if m is None:
        return NO_RECORD
    lines = [_summary_line(m, tz)]
    lines += [f"TO/{d.receiver} {d.state.upper()}" for d in m.deliveries]
    # A document an XML link sent may hold TABs between its elements; the
    # text of an NFR may not (PROTOCOL part 2).
    lines.append((m.text or "").rstrip("\r\n").replace("\t", " "))
    return "\n".join(lines)
