"""The message log in SQLite: the journal's ``messages`` and ``deliveries``, read back.

Searches scan by id (newest first) and filter with the criteria of a
:class:`~nlets_switch.store.base.MessageQuery`; text search is a
case-insensitive ``LIKE`` on the whole message text, with no full-text index,
so that the switch's hot path writes nothing more per message. A database
without the journal's tables (a tool pointed at a new file) is an empty log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from nlets_switch.store._sqlite import has_table, like_pattern, translated
from nlets_switch.store.base import OPEN_STATES, DeliveryRecord, LoggedMessage, MessageQuery
from nlets_switch.store.tables import OPEN_WHERE

# A message an ORI sent (origin or link) or received (a delivery to it).
_INVOLVES: Final = (
    "(m.origin = ? OR m.link = ? OR EXISTS (SELECT 1 FROM deliveries d "
    "WHERE d.msg_id = m.id AND (d.receiver = ? OR d.link = ? OR d.addressed = ?)))")
_SENT_OR_RECEIVED: Final = (
    "(m.origin = ? OR m.link = ? OR EXISTS (SELECT 1 FROM deliveries d "
    "WHERE d.msg_id = m.id AND (d.receiver = ? OR d.link = ?)))")

_STATE_SENT_OR_RECEIVED: Final = (
    "(substr(m.origin, 1, 2) = ? OR substr(m.link, 1, 2) = ? OR EXISTS (SELECT 1 FROM "
    "deliveries d WHERE d.msg_id = m.id AND (substr(d.receiver, 1, 2) = ? "
    "OR substr(d.link, 1, 2) = ?)))")

_COLUMNS: Final = ("m.id, m.received_at, m.link, m.key, m.origin, m.destinations, m.control, "
                   "m.input_no, m.status, m.reason, m.reply_to")
_DELIVERY_COLUMNS: Final = ("id, msg_id, receiver, link, addressed, output_no, priority, state, "
                            "created_at, expires_at, sent_at, done_at, held")
#: SQLite's integers are signed 64-bit: a larger id cannot be a message's.
_MAX_ID: Final = 2**63 - 1
# Literal, not bound: the planner can then use the partial index deliveries_open.
_OPEN: Final = "(" + ",".join(f"'{s}'" for s in OPEN_STATES) + ")"
#: Ids per ``IN (...)`` list: below SQLite's bound on parameters on every build.
_IN_CHUNK: Final = 500


def _where(q: MessageQuery) -> tuple[list[str], list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if q.ori:
        conds.append(_INVOLVES)
        args += [q.ori] * 5
    if q.visible_to:
        conds.append(_SENT_OR_RECEIVED)
        args += [q.visible_to] * 4
    if q.visible_state:
        conds.append(_STATE_SENT_OR_RECEIVED)
        args += [q.visible_state] * 4
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
        conds.append("ns_open(m.text, m.id) LIKE ? ESCAPE '\\'")
        args.append(like_pattern(q.text))
    return conds, args


def _message(r: Sequence[Any], text: str | None = None,
             deliveries: tuple[DeliveryRecord, ...] = ()) -> LoggedMessage:
    return LoggedMessage(
        id=int(r[0]), received_at=float(r[1]), link=str(r[2]), key=r[3], origin=r[4],
        destinations=tuple(r[5].split(",")) if r[5] else (), control=r[6], input_no=r[7],
        status=str(r[8]), reason=r[9], reply_to=r[10], text=text, deliveries=deliveries)


def _delivery(r: Sequence[Any]) -> DeliveryRecord:
    return DeliveryRecord(
        id=int(r[0]), msg_id=int(r[1]), receiver=str(r[2]), link=str(r[3]),
        addressed=str(r[4]), output_no=int(r[5]), priority=int(r[6]), state=str(r[7]),
        created_at=float(r[8]), expires_at=float(r[9]), sent_at=r[10], done_at=r[11],
        held=bool(r[12]))


class SqliteMessageLog:
    """:class:`~nlets_switch.store.base.MessageLogStore` on a SQLite connection."""

    __slots__ = ()
    conn: sqlite3.Connection

    def _deliveries(self, ids: Sequence[int]) -> dict[int, tuple[DeliveryRecord, ...]]:
        out: dict[int, list[DeliveryRecord]] = {i: [] for i in ids}
        for i in range(0, len(ids), _IN_CHUNK):
            chunk = list(ids[i:i + _IN_CHUNK])
            marks = ",".join("?" * len(chunk))
            for r in self.conn.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries "
                                       f"WHERE msg_id IN ({marks}) ORDER BY id", chunk):
                out[int(r[1])].append(_delivery(r))
        return {i: tuple(d) for i, d in out.items()}

    def _complete(self, rows: list[Any], with_text: bool,
                  with_deliveries: bool) -> list[LoggedMessage]:
        dl = self._deliveries([int(r[0]) for r in rows]) if with_deliveries else {}
        return [_message(r, r[11] if with_text else None, dl.get(int(r[0]), ())) for r in rows]

    @translated
    def find_messages(self, q: MessageQuery, *, after_id: int | None = None,
                      oldest_first: bool = False, with_text: bool = False,
                      with_deliveries: bool = True) -> list[LoggedMessage]:
        """Messages matching ``q`` (see the protocol)."""
        if not has_table(self.conn, "messages"):
            return []
        conds, args = _where(q)
        if after_id is not None:
            conds.append("m.id > ?")
            args.append(after_id)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        cols = _COLUMNS + (", ns_open(m.text, m.id)" if with_text else "")
        sql = (f"SELECT {cols} FROM messages m{where} ORDER BY m.id "
               f"{'ASC' if oldest_first else 'DESC'}")
        if q.limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, q.limit))
        return self._complete(self.conn.execute(sql, args).fetchall(), with_text,
                              with_deliveries)

    @translated
    def count_messages(self, q: MessageQuery) -> int:
        """How many messages match ``q``, ignoring its limit."""
        if not has_table(self.conn, "messages"):
            return 0
        conds, args = _where(q)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        return int(self.conn.execute(f"SELECT COUNT(*) FROM messages m{where}",
                                     args).fetchone()[0])

    @translated
    def get_message(self, msg_id: int, *, with_text: bool = False,
                    visible_to: str | None = None) -> LoggedMessage | None:
        """One message with its deliveries (see the protocol)."""
        if not 0 <= msg_id <= _MAX_ID or not has_table(self.conn, "messages"):
            return None
        sql = f"SELECT {_COLUMNS}, ns_open(m.text, m.id) FROM messages m WHERE m.id = ?"
        args: list[Any] = [msg_id]
        if visible_to is not None:
            sql += f" AND {_SENT_OR_RECEIVED}"
            args += [visible_to] * 4
        r = self.conn.execute(sql, args).fetchone()
        if r is None:
            return None
        return self._complete([r], with_text, True)[0]

    @translated
    def replies_to(self, msg_id: int) -> list[LoggedMessage]:
        """The ER and SM messages about ``msg_id``, with text and deliveries."""
        if not 0 <= msg_id <= _MAX_ID or not has_table(self.conn, "messages"):
            return []
        rows = self.conn.execute(f"SELECT {_COLUMNS}, ns_open(m.text, m.id) FROM messages m "
                                 "WHERE m.reply_to = ? ORDER BY m.id", (msg_id,)).fetchall()
        return self._complete(rows, True, True)

    @translated
    def owed_per_link(self) -> dict[str, int]:
        """Deliveries still owed, per destination link."""
        if not has_table(self.conn, "deliveries"):
            return {}
        # The owed-deliveries index's own predicate, or SQLite scans the table.
        rows = self.conn.execute(f"SELECT link, COUNT(*) FROM deliveries WHERE {OPEN_WHERE} "
                                 "GROUP BY link").fetchall()
        return {str(link): int(n) for link, n in rows}
