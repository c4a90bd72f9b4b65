"""The message log's queries, once, for both stores: one builder, a dialect each.

SQLite (:mod:`nlets_switch.store.msglog`) and PostgreSQL
(:mod:`nlets_switch.store.postgres_msglog`) ask the same questions of the
same two tables; what differs is small and lives in a :class:`Dialect`:
parameter marks, how an id list is bound, how the text is read (SQLite opens
it in SQL with ``ns_open``; PostgreSQL hands the sealed value back and
:meth:`SqlMessageLog._text` opens it), and how the word index is matched.

Text search goes through the word index (:mod:`nlets_switch.store.textcrypt`:
keyed blind tokens, never a clear word): the query's words become tokens, and
a message matches when it holds every word. SQLite keeps the tokens in the
FTS5 table ``message_words`` (external content: the ``messages.words``
column), PostgreSQL in the ``tsvector`` column ``messages.words`` under a GIN
index. No other criterion changed: the rest is what the two modules had.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nlets_switch.errors import StoreError
from nlets_switch.store.base import OPEN_STATES, DeliveryRecord, LoggedMessage, MessageQuery
from nlets_switch.store.textcrypt import query_terms

__all__ = ["POSTGRES", "SQLITE", "Dialect", "SqlMessageLog", "delivery", "message"]

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
#: Signed 64-bit integers in both: a larger id cannot be a message's.
_MAX_ID: Final = 2**63 - 1
#: Ids per ``IN (...)`` list in SQLite: below its bound on parameters on every build.
_IN_CHUNK: Final = 500


def _fts5_match(terms: list[list[str]]) -> str:
    return " AND ".join("(" + " OR ".join(f'"{t}"' for t in alts) + ")" for alts in terms)


def _tsquery(terms: list[list[str]]) -> str:
    return " & ".join("(" + " | ".join(alts) + ")" for alts in terms)


@dataclass(frozen=True, slots=True)
class Dialect:
    """What one database says differently."""

    name: str
    #: The parameter mark (the builder writes ``?``).
    mark: str
    #: The selected text column: opened in SQL, or the stored value.
    text: str
    #: The open deliveries, as the owed-deliveries index states its predicate.
    open_where: str
    #: The word-index condition, given the match expression.
    words: str
    #: The match expression of a text query's tokens.
    match: Callable[[list[list[str]]], str]
    #: Bind id lists as one array (``= ANY(?)``), else in chunks of ``IN (?, ...)``.
    arrays: bool

    def sql(self, text: str) -> str:
        """``text`` with this dialect's parameter marks."""
        return text if self.mark == "?" else text.replace("?", self.mark)


SQLITE: Final = Dialect(
    "sqlite", "?", "ns_open(m.text, m.id)",
    # ORs, exactly as the deliveries_owed index states it (store/tables.py OPEN_WHERE).
    "(state = 'queued' OR state = 'held' OR state = 'sent')",
    "m.id IN (SELECT rowid FROM message_words WHERE message_words MATCH ?)",
    _fts5_match, False)
POSTGRES: Final = Dialect(
    "postgresql", "%s", "m.text",
    # Literal, so that the planner can use the partial index deliveries_open.
    "state IN (" + ",".join(f"'{s}'" for s in OPEN_STATES) + ")",
    "m.words @@ ?::tsquery", _tsquery, True)


def _where(q: MessageQuery, d: Dialect) -> tuple[list[str], list[Any]]:
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
        terms = query_terms(q.text)
        if terms:
            conds.append(d.words)
            args.append(d.match(terms))
        else:
            conds.append("1 = 0")  # no word to look for: nothing matches
    return conds, args


def message(r: Sequence[Any], text: str | None = None,
            deliveries: tuple[DeliveryRecord, ...] = ()) -> LoggedMessage:
    """A :class:`LoggedMessage` from a row of the builder's columns."""
    return LoggedMessage(
        id=int(r[0]), received_at=float(r[1]), link=str(r[2]), key=r[3], origin=r[4],
        destinations=tuple(r[5].split(",")) if r[5] else (), control=r[6], input_no=r[7],
        status=str(r[8]), reason=r[9], reply_to=r[10], text=text, deliveries=deliveries)


def delivery(r: Sequence[Any]) -> DeliveryRecord:
    """A :class:`DeliveryRecord` from a row of the deliveries' columns."""
    return DeliveryRecord(
        id=int(r[0]), msg_id=int(r[1]), receiver=str(r[2]), link=str(r[3]),
        addressed=str(r[4]), output_no=int(r[5]), priority=int(r[6]), state=str(r[7]),
        created_at=float(r[8]), expires_at=float(r[9]), sent_at=r[10], done_at=r[11],
        held=bool(r[12]))


class SqlMessageLog:
    """:class:`~nlets_switch.store.base.MessageLogStore` over a DB-API connection, in
    :attr:`dialect`. A store subclasses it and gives :meth:`_rows` (and, where it
    applies, :meth:`_has`, :meth:`_text`)."""

    __slots__ = ()
    dialect: Dialect = SQLITE

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        raise NotImplementedError

    def _has(self, table: str) -> bool:
        """Whether the database has ``table`` (a read-only tool may meet an old file)."""
        return True

    def _text(self, value: Any, msg_id: int) -> str:
        """The clear text of a selected text column."""
        return str(value)

    def _run(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        return self._rows(self.dialect.sql(sql), args)

    def _deliveries(self, ids: Sequence[int]) -> dict[int, tuple[DeliveryRecord, ...]]:
        out: dict[int, list[DeliveryRecord]] = {i: [] for i in ids}
        chunks: list[tuple[str, list[Any]]]
        if self.dialect.arrays:
            chunks = [("= ANY(?)", [list(ids)])] if ids else []
        else:
            chunks = [(f"IN ({','.join('?' * len(c))})", c)
                      for c in (list(ids[i:i + _IN_CHUNK]) for i in range(0, len(ids),
                                                                          _IN_CHUNK))]
        for cond, args in chunks:
            for r in self._run(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE msg_id "
                               f"{cond} ORDER BY id", args):
                out[int(r[1])].append(delivery(r))
        return {i: tuple(d) for i, d in out.items()}

    def _complete(self, rows: list[Any], with_text: bool,
                  with_deliveries: bool) -> list[LoggedMessage]:
        dl = self._deliveries([int(r[0]) for r in rows]) if with_deliveries else {}
        return [message(r, self._text(r[11], int(r[0])) if with_text else None,
                        dl.get(int(r[0]), ())) for r in rows]

    def _conditions(self, q: MessageQuery) -> tuple[list[str], list[Any]]:
        if q.text and not self._has("message_words"):
            raise StoreError("this journal has no word index for text search yet (it is "
                             "older than schema version 6): open it once with this "
                             "version of nlets-switch (serve, or any tool that writes)")
        return _where(q, self.dialect)

    def find_messages(self, q: MessageQuery, *, after_id: int | None = None,
                      oldest_first: bool = False, with_text: bool = False,
                      with_deliveries: bool = True) -> list[LoggedMessage]:
        """Messages matching ``q`` (see the protocol)."""
        if not self._has("messages"):
            return []
        conds, args = self._conditions(q)
        if after_id is not None:
            conds.append("m.id > ?")
            args.append(after_id)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        cols = _COLUMNS + (f", {self.dialect.text}" if with_text else "")
        sql = (f"SELECT {cols} FROM messages m{where} ORDER BY m.id "
               f"{'ASC' if oldest_first else 'DESC'}")
        if q.limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, q.limit))
        return self._complete(self._run(sql, args), with_text, with_deliveries)

    def count_messages(self, q: MessageQuery) -> int:
        """How many messages match ``q``, ignoring its limit."""
        if not self._has("messages"):
            return 0
        conds, args = self._conditions(q)
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        return int(self._run(f"SELECT COUNT(*) FROM messages m{where}", args)[0][0])

    def get_message(self, msg_id: int, *, with_text: bool = False,
                    visible_to: str | None = None) -> LoggedMessage | None:
        """One message with its deliveries (see the protocol)."""
        if not 0 <= msg_id <= _MAX_ID or not self._has("messages"):
            return None
        sql = f"SELECT {_COLUMNS}, {self.dialect.text} FROM messages m WHERE m.id = ?"
        args: list[Any] = [msg_id]
        if visible_to is not None:
            sql += f" AND {_SENT_OR_RECEIVED}"
            args += [visible_to] * 4
        rows = self._run(sql, args)
        return self._complete(rows, with_text, True)[0] if rows else None

    def replies_to(self, msg_id: int) -> list[LoggedMessage]:
        """The ER and SM messages about ``msg_id``, with text and deliveries."""
        if not 0 <= msg_id <= _MAX_ID or not self._has("messages"):
            return []
        return self._complete(self._run(f"SELECT {_COLUMNS}, {self.dialect.text} FROM "
                                        "messages m WHERE m.reply_to = ? ORDER BY m.id",
                                        [msg_id]), True, True)

    def owed_per_link(self) -> dict[str, int]:
        """Deliveries still owed, per destination link."""
        if not self._has("deliveries"):
            return {}
        # The owed-deliveries index's own predicate, or the database scans the table.
        rows = self._run(f"SELECT link, COUNT(*) FROM deliveries WHERE "
                         f"{self.dialect.open_where} GROUP BY link")
        return {str(link): int(n) for link, n in rows}
