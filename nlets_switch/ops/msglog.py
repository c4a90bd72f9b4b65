"""The message log (what Nlets calls RAND): search, show and export the journal.

Everything here reads the journal through any :class:`sqlite3.Connection`;
tools use a read-only one (``journal.connect(path, readonly=True)``), which
works while the switch runs because the journal is in WAL mode. No clock is
read here: relative times are resolved by :func:`parse_when` against a
``now`` the caller passes.

Visibility (issue 4, "an ORI may see only messages that it sent or
received"): a message is *sent* by an ORI when the ORI is its origin or the
link it came in on, and *received* by an ORI when one of its deliveries went
to that ORI as receiver or link. :attr:`Query.visible_to` applies that rule,
and the wire answers :func:`answer_nlq` and :func:`answer_nfq` always do.

Text search is a case-insensitive ``LIKE`` on the whole message text (a scan
of the rows the other criteria leave); no full-text index is kept, so that
the hot path of the switch writes nothing more per message.

Message text is criminal-justice information: :func:`search` never returns
it, :func:`get` and :func:`export` only when asked.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, Final, TextIO

from nlets_switch.store.journal import OPEN_STATES

#: Most rows a search returns when the caller does not say (and NLQ's default).
DEFAULT_LIMIT: Final = 100
#: NLQ's ``LIM`` is at most 999 (schemas/NLQ.yaml); without it the NL service lists this many.
NLQ_DEFAULT_LIMIT: Final = 20
NO_RECORD: Final = "NO RECORD"

_EXPORT_CHUNK: Final = 1000
CSV_COLUMNS: Final = ("id", "received_at", "key", "origin", "link", "destinations", "control",
                      "input_no", "status", "reason", "reply_to", "deliveries")


@dataclass(frozen=True, slots=True)
class Query:
    """What to look for in the log; every criterion given must match.

    ``ori`` matches a message's origin, its link, or any delivery's receiver,
    link or addressed ORI. ``since``/``until`` are POSIX times (inclusive)
    of receipt. ``text`` is a case-insensitive substring of the message
    text. ``limit`` None means no limit (exports). ``visible_to`` keeps only
    messages that ORI sent or received.
    """

    ori: str | None = None
    key: str | None = None
    control: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    limit: int | None = DEFAULT_LIMIT
    visible_to: str | None = None


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

# A message an ORI sent (origin or link) or received (a delivery to it).
_INVOLVES = ("(m.origin = ? OR m.link = ? OR EXISTS (SELECT 1 FROM deliveries d "
             "WHERE d.msg_id = m.id AND (d.receiver = ? OR d.link = ? OR d.addressed = ?)))")
_SENT_OR_RECEIVED = ("(m.origin = ? OR m.link = ? OR EXISTS (SELECT 1 FROM deliveries d "
                     "WHERE d.msg_id = m.id AND (d.receiver = ? OR d.link = ?)))")

_COLUMNS = ("m.id, m.received_at, m.link, m.key, m.origin, m.destinations, m.control, "
            "m.input_no, m.status, m.reason, m.reply_to")


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _where(q: Query) -> tuple[str, list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if q.ori:
        conds.append(_INVOLVES)
        args += [q.ori] * 5
    if q.visible_to:
        conds.append(_SENT_OR_RECEIVED)
        args += [q.visible_to] * 4
    if q.key:
        conds.append("m.key = ?")
        args.append(q.key)
    if q.control:
        conds.append("m.control = ?")
        args.append(q.control)
    if q.since is not None:
        conds.append("m.received_at >= ?")
        args.append(q.since)
    if q.until is not None:
        conds.append("m.received_at <= ?")
        args.append(q.until)
    if q.text:
        conds.append("m.text LIKE ? ESCAPE '\\'")
        args.append(_like(q.text))
    return (" WHERE " + " AND ".join(conds)) if conds else "", args


def _deliveries(conn: sqlite3.Connection, ids: Sequence[int]) -> dict[int, list[dict[str, Any]]]:
    out: dict[int, list[dict[str, Any]]] = {i: [] for i in ids}
    if not ids:
        return out
    marks = ",".join("?" * len(ids))
    for msg_id, receiver, link, addressed, state in conn.execute(
            f"SELECT msg_id, receiver, link, addressed, state FROM deliveries "
            f"WHERE msg_id IN ({marks}) ORDER BY id", list(ids)):
        out[msg_id].append({"receiver": receiver, "link": link, "addressed": addressed,
                            "state": state})
    return out


def _row(r: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": r[0], "received_at": iso(r[1]), "link": r[2], "key": r[3], "origin": r[4],
        "destinations": r[5].split(",") if r[5] else [], "control": r[6], "input_no": r[7],
        "status": r[8], "reason": r[9], "reply_to": r[10],
    }


def _has_journal(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'messages'").fetchone() is not None


def search(conn: sqlite3.Connection, q: Query) -> list[dict[str, Any]]:
    """The messages matching ``q``, newest first, without their text.

    Each is a dict: id, received_at (ISO UTC), key, origin, link,
    destinations (list), control, input_no, status (accepted|rejected),
    reason (the ER code and detail when rejected), reply_to (the message an
    ER/SM answers), deliveries (list of {receiver, link, addressed, state}).
    """
    if not _has_journal(conn):
        return []
    where, args = _where(q)
    sql = f"SELECT {_COLUMNS} FROM messages m{where} ORDER BY m.id DESC"
    if q.limit is not None:
        sql += " LIMIT ?"
        args.append(max(0, q.limit))
    rows = [_row(r) for r in conn.execute(sql, args).fetchall()]
    dl = _deliveries(conn, [r["id"] for r in rows])
    for r in rows:
        r["deliveries"] = dl[r["id"]]
    return rows


def get(conn: sqlite3.Connection, msg_id: int, with_text: bool = False) -> dict[str, Any] | None:
    """One message and its whole life, or None when the log has no such id.

    Besides the fields of :func:`search`: ``deliveries`` in full (id, receiver,
    link, addressed, output_no, state, created_at, expires_at, sent_at,
    done_at, open), ``caused`` (the ER and SM messages the switch sent about
    it: id, key, received_at, receiver, code, deliveries), and ``text`` (the
    whole input message as received) only when ``with_text``.
    """
    if not _has_journal(conn):
        return None
    r = conn.execute(f"SELECT {_COLUMNS}, m.text FROM messages m WHERE m.id = ?",
                     (msg_id,)).fetchone()
    if r is None:
        return None
    msg = _row(r)
    msg["deliveries"] = [
        {"id": d[0], "receiver": d[1], "link": d[2], "addressed": d[3], "output_no": d[4],
         "state": d[5], "created_at": iso(d[6]), "expires_at": iso(d[7]), "sent_at": iso(d[8]),
         "done_at": iso(d[9]), "open": d[5] in OPEN_STATES, "held": bool(d[10])}
        for d in conn.execute(
            "SELECT id, receiver, link, addressed, output_no, state, created_at, expires_at, "
            "sent_at, done_at, held FROM deliveries WHERE msg_id = ? ORDER BY id", (msg_id,))
    ]
    caused = conn.execute(
        "SELECT id, key, received_at, destinations, text FROM messages WHERE reply_to = ? "
        "ORDER BY id", (msg_id,)).fetchall()
    dl = _deliveries(conn, [c[0] for c in caused])
    msg["caused"] = [
        {"id": c[0], "key": c[1], "received_at": iso(c[2]), "receiver": c[3],
         # The first line of an ER/SM is its numbered reason (PROTOCOL part 4): no CJI.
         "code": c[4].split("\n", 1)[0][:80], "deliveries": dl[c[0]]}
        for c in caused
    ]
    if with_text:
        msg["text"] = r[11]
    return msg


def count(conn: sqlite3.Connection, q: Query) -> int:
    """How many messages match ``q`` (ignoring its limit)."""
    if not _has_journal(conn):
        return 0
    where, args = _where(q)
    n = conn.execute(f"SELECT COUNT(*) FROM messages m{where}", args).fetchone()[0]
    return int(n) if q.limit is None else min(int(n), q.limit)


def _iter_export(conn: sqlite3.Connection, q: Query, with_text: bool) -> Iterator[dict[str, Any]]:
    """Matching messages oldest first, read in chunks so memory stays bounded."""
    where, args = _where(q)
    joiner = " AND " if where else " WHERE "
    last = 0
    left = q.limit
    cols = _COLUMNS + (", m.text" if with_text else "")
    while left is None or left > 0:
        n = _EXPORT_CHUNK if left is None else min(_EXPORT_CHUNK, left)
        rows = conn.execute(f"SELECT {cols} FROM messages m{where}{joiner}m.id > ? "
                            f"ORDER BY m.id LIMIT ?", [*args, last, n]).fetchall()
        if not rows:
            return
        dl = _deliveries(conn, [r[0] for r in rows])
        for r in rows:
            d = _row(r)
            d["deliveries"] = dl[r[0]]
            if with_text:
                d["text"] = r[11]
            yield d
        last = rows[-1][0]
        if left is not None:
            left -= len(rows)
        if len(rows) < n:
            return


def export(conn: sqlite3.Connection, q: Query, fmt: str, out: TextIO,
           progress: Callable[[int, int], None] | None = None, with_text: bool = False) -> int:
    """Write the messages matching ``q``, oldest first, as ``jsonl`` or ``csv``.

    Each record has the fields of :func:`search` (CSV flattens destinations
    to ``A,B`` and deliveries to ``RECEIVER:state;...``), plus ``text`` when
    ``with_text``. ``progress(done, total)`` is called now and then and at
    the end. Returns the number of messages written.
    """
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"unknown export format {fmt!r} (jsonl or csv)")
    total = count(conn, q)
    writer: Any = None
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS + (("text",) if with_text else ()))
    done = 0
    if progress is not None:
        progress(0, total)
    if total == 0:
        return 0
    for d in _iter_export(conn, q, with_text):
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


def _summary_line(row: Sequence[Any], tz: tzinfo) -> str:
    """``MID/1042 202401021201 DR TX0000000 AZNLETS20 *CTL`` (schemas/NLR.yaml)."""
    mid, received_at, link, key, origin, dests, control, status = row
    parts = [f"MID/{mid}", _nlets_time(received_at, tz), key or "?", origin or link,
             dests or "-"]
    if control:
        parts.append(f"*{control}")
    if status == "rejected":
        parts.append("REJECTED")
    return " ".join(parts)


_SUMMARY_COLS = "m.id, m.received_at, m.link, m.key, m.origin, m.destinations, m.control, m.status"


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


def answer_nlq(conn: sqlite3.Connection, requester_ori: str, fields: Sequence[tuple[str, str]],
               tz: tzinfo = UTC) -> str:
    """The text of the NLR answering an NLQ: a count line and one line per message
    (``MID/id CCYYMMDDHHMM KEY ORIGIN DESTINATIONS [*CTL] [REJECTED]``, newest first),
    or ``NO RECORD``. Only messages the requester sent or received are listed.
    ``fields`` are the validated ``(TAG, value)`` pairs (schemas/NLQ.yaml);
    times are read and written in ``tz``, the switch's time zone."""
    q = nlq_query(requester_ori, fields, tz)
    if not _has_journal(conn):
        return NO_RECORD
    where, args = _where(q)
    rows = conn.execute(f"SELECT {_SUMMARY_COLS} FROM messages m{where} ORDER BY m.id DESC "
                        f"LIMIT ?", [*args, q.limit]).fetchall()
    if not rows:
        return NO_RECORD
    head = "1 MESSAGE" if len(rows) == 1 else f"{len(rows)} MESSAGES"
    return "\n".join([head, *(_summary_line(r, tz) for r in rows)])


def answer_nfq(conn: sqlite3.Connection, requester_ori: str, fields: Sequence[tuple[str, str]],
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
    if not 0 <= mid < 2**63:  # beyond SQLite's integers: no such message
        return NO_RECORD
    if not _has_journal(conn):
        return NO_RECORD
    r = conn.execute(f"SELECT {_SUMMARY_COLS}, m.text FROM messages m WHERE m.id = ? AND "
                     f"{_SENT_OR_RECEIVED}", [mid, *[requester_ori] * 4]).fetchone()
    if r is None:
        return NO_RECORD
    lines = [_summary_line(r[:8], tz)]
    lines += [f"TO/{d['receiver']} {d['state'].upper()}"
              for d in _deliveries(conn, [mid])[mid]]
    lines.append(r[8].rstrip("\r\n"))
    return "\n".join(lines)
