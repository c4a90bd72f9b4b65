"""The message log on PostgreSQL: the ``messages`` and ``deliveries`` tables, read back.

The same queries as the embedded store's (:mod:`nlets_switch.store.msglog`),
in PostgreSQL's dialect: ``%s`` parameters, ``= ANY(array)`` for id lists,
and ``ILIKE`` for the case-insensitive text match (SQLite's ``LIKE`` is
case-insensitive already). Full-text search (tsvector + GIN) is the cluster
work's; see docs/cluster.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from nlets_switch.store._sqlite import like_pattern
from nlets_switch.store.base import OPEN_STATES, DeliveryRecord, LoggedMessage, MessageQuery

_INVOLVES: Final = (
    "(m.origin = %s OR m.link = %s OR EXISTS (SELECT 1 FROM deliveries d "
    "WHERE d.msg_id = m.id AND (d.receiver = %s OR d.link = %s OR d.addressed = %s)))")
_SENT_OR_RECEIVED: Final = (
    "(m.origin = %s OR m.link = %s OR EXISTS (SELECT 1 FROM deliveries d "
    "WHERE d.msg_id = m.id AND (d.receiver = %s OR d.link = %s)))")
_COLUMNS: Final = ("m.id, m.received_at, m.link, m.key, m.origin, m.destinations, m.control, "
                   "m.input_no, m.status, m.reason, m.reply_to")
_DELIVERY_COLUMNS: Final = ("id, msg_id, receiver, link, addressed, output_no, priority, state, "
                            "created_at, expires_at, sent_at, done_at, held")
#: BIGINT's range: a larger id cannot be a message's.
_MAX_ID: Final = 2**63 - 1
# Literal, so that the planner can use the partial index deliveries_open.
_OPEN: Final = "(" + ",".join(f"'{s}'" for s in OPEN_STATES) + ")"


def _where(q: MessageQuery) -> tuple[list[str], list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    if q.ori:
        conds.append(_INVOLVES)
        args += [q.ori] * 5
    if q.visible_to:
        conds.append(_SENT_OR_RECEIVED)
        args += [q.visible_to] * 4
    if q.key:
        conds.append("m.key = %s")
        args.append(q.key)
    if q.control:
        conds.append("m.control = %s")
        args.append(q.control)
    if q.since is not None:
        conds.append("m.received_at >= %s")
        args.append(q.since)
    if q.until is not None:
        conds.append("m.received_at <= %s")
        args.append(q.until)
    if q.text:
        conds.append("m.text ILIKE %s ESCAPE '\\'")
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


class PgMessageLog:
    """:class:`~nlets_switch.store.base.MessageLogStore` on a psycopg connection."""

    __slots__ = ()
    conn: Any

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any] = self.conn.execute(sql, args).fetchall()
        return rows

    def _deliveries(self, ids: Sequence[int]) -> dict[int, tuple[DeliveryRecord, ...]]:
        out: dict[int, list[DeliveryRecord]] = {i: [] for i in ids}
        if ids:
            for r in self._rows(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries "
                                "WHERE msg_id = ANY(%s) ORDER BY id", [list(ids)]):
                out[int(r[1])].append(_delivery(r))
        return {i: tuple(d) for i, d in out.items()}

    def _complete(self, rows: list[Any], with_text: bool,
                  with_deliveries: bool) -> list[LoggedMessage]:
        dl = self._deliveries([int(r[0]) for r in rows]) if with_deliveries else {}
        return [_message(r, r[11] if with_text else None, dl.get(int(r[0]), ())) for r in rows]

    def find_messages(self, q: MessageQuery, *, after_id: int | None = None,
                      oldest_first: bool = False, with_text: bool = False,
                      with_deliveries: bool = True) -> list[LoggedMessage]:
        """Messages matching ``q`` (see the protocol)."""
        conds, args = _where(q)
        if after_id is not None:
            conds.append("m.id > %s")
            args.append(after_id)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        cols = _COLUMNS + (", m.text" if with_text else "")
        sql = (f"SELECT {cols} FROM messages m{where} ORDER BY m.id "
               f"{'ASC' if oldest_first else 'DESC'}")
        if q.limit is not None:
            sql += " LIMIT %s"
            args.append(max(0, q.limit))
        return self._complete(self._rows(sql, args), with_text, with_deliveries)

    def count_messages(self, q: MessageQuery) -> int:
        """How many messages match ``q``, ignoring its limit."""
        conds, args = _where(q)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        return int(self._rows(f"SELECT COUNT(*) FROM messages m{where}", args)[0][0])

    def get_message(self, msg_id: int, *, with_text: bool = False,
                    visible_to: str | None = None) -> LoggedMessage | None:
        """One message with its deliveries (see the protocol)."""
        if not 0 <= msg_id <= _MAX_ID:
            return None
        sql = f"SELECT {_COLUMNS}, m.text FROM messages m WHERE m.id = %s"
        args: list[Any] = [msg_id]
        if visible_to is not None:
            sql += f" AND {_SENT_OR_RECEIVED}"
            args += [visible_to] * 4
        rows = self._rows(sql, args)
        return self._complete(rows, with_text, True)[0] if rows else None

    def replies_to(self, msg_id: int) -> list[LoggedMessage]:
        """The ER and SM messages about ``msg_id``, with text and deliveries."""
        if not 0 <= msg_id <= _MAX_ID:
            return []
        return self._complete(self._rows(f"SELECT {_COLUMNS}, m.text FROM messages m "
                                         "WHERE m.reply_to = %s ORDER BY m.id", [msg_id]),
                              True, True)

    def owed_per_link(self) -> dict[str, int]:
        """Deliveries still owed, per destination link."""
        rows = self._rows(f"SELECT link, COUNT(*) FROM deliveries WHERE state IN {_OPEN} "
                          "GROUP BY link")
        return {str(link): int(n) for link, n in rows}
