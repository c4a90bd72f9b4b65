"""The operator console's reads and its one table: queues, items, remove status.

One query builder for both stores: :class:`ConsoleStore` writes each query
once, with the few words the two databases spell differently in a
:class:`Dialect` (placeholders; how a message's text is read: sealed at rest
in SQLite, store/textcrypt.py). :class:`SqliteConsole` is the embedded
journal's (here); the PostgreSQL store's is
:class:`~nlets_switch.store.postgres_console.PgConsole`.

Reads run on a read-only connection in a worker thread (as the message
log's do); the remove-status table is written by the HTTP server's own short
write transaction (an operator's action is rare; the journal's writer takes
custody traffic). Nothing here returns message text unless the caller asks
for it (``items``, for the engine and for a token with ``see_text``).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from nlets_switch.core.console import Item
from nlets_switch.store._sqlite import translated, write_transaction
from nlets_switch.store.schema import migrate


@dataclass(frozen=True, slots=True)
class Dialect:
    """What differs between the stores in the console's queries."""

    #: The parameter placeholder (``?``, ``%s``).
    mark: str
    #: The expression of a message's text in clear (``m`` is the messages table).
    text: str


SQLITE: Final = Dialect("?", "ns_open(m.text, m.id)")

_ITEM_COLUMNS: Final = (
    "d.id, d.msg_id, d.link, d.receiver, d.addressed, d.state, d.priority, d.expires_at, "
    "m.key, m.origin, m.link, m.control, m.received_at, m.input_no, m.body_start")


def _item(r: Sequence[Any], text: str) -> Item:
    return Item(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or "", r[9] or "",
                r[10], r[11], r[12], r[13] or 0, r[14], text)


class ConsoleStore:
    """The console's queries on one connection (``conn.execute(sql, args)``), in a dialect."""

    dialect: Dialect
    #: The driver's error for a table an older store lacks (a read-only tool may
    #: meet an old file; the switch's own store is always migrated).
    missing_table: tuple[type[BaseException], ...] = ()

    def _clear(self, value: Any, msg_id: int) -> str:
        """The clear text of the selected text column (SQLite opened it in SQL)."""
        return str(value)

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def _marks(self, n: int) -> str:
        return ",".join([self.dialect.mark] * n)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write transaction (the store's own)."""
        raise NotImplementedError
        yield  # pragma: no cover

    def items(self, *, ids: Sequence[int] = (), msg_id: int | None = None,
              link: str | None = None, states: Sequence[str] = ()) -> list[Item]:
        """Deliveries (with their messages) by id, by message or by link, in given states."""
        m = self.dialect.mark
        where: list[str] = []
        args: list[Any] = []
        if ids:
            where.append(f"d.id IN ({self._marks(len(ids))})")
            args += list(ids)
        if msg_id is not None:
            where.append(f"d.msg_id = {m}")
            args.append(msg_id)
        if link is not None:
            where.append(f"(d.link = {m} OR d.receiver = {m} OR d.addressed = {m})")
            args += [link, link, link]
        if states:
            where.append(f"d.state IN ({self._marks(len(states))})")
            args += list(states)
        sql = (f"SELECT {_ITEM_COLUMNS}, {self.dialect.text} FROM deliveries d "
               f"JOIN messages m ON m.id = d.msg_id WHERE {' AND '.join(where) or '1 = 1'} "
               "ORDER BY d.id LIMIT 10000")
        return [_item(r, self._clear(r[15], int(r[1]))) for r in self.conn.execute(sql, args)]

    def held_by_destination(self) -> dict[str, int]:
        """How many deliveries wait in review, per destination link."""
        return {str(r[0]): int(r[1]) for r in self.conn.execute(
            "SELECT link, COUNT(*) FROM deliveries WHERE state = 'review' GROUP BY link")}

    def edits(self, msg_id: int) -> list[dict[str, Any]]:
        """The edited versions of a message (ids, time, who), oldest first, without text."""
        return [{"msg_id": r[0], "at": r[1], "reason": r[2]} for r in self.conn.execute(
            "SELECT id, received_at, reason FROM messages WHERE reply_to = "
            f"{self.dialect.mark} AND status = 'edited' ORDER BY id", (msg_id,))]

    # -- remove status ------------------------------------------------------------------

    def load_removed(self) -> dict[str, frozenset[str] | None]:
        """ORI -> the keys it is removed for (None: every key)."""
        try:
            rows = self.conn.execute("SELECT ori, keys FROM remove_status").fetchall()
        except self.missing_table:
            return {}  # a store of an older version, read-only: nothing is removed
        return {str(r[0]): (frozenset(r[1].split(",")) if r[1] else None) for r in rows}

    def list_removed(self) -> list[dict[str, Any]]:
        """The remove-status table, for the API."""
        try:
            rows = self.conn.execute("SELECT ori, keys, since, operator, reason "
                                     "FROM remove_status ORDER BY ori").fetchall()
        except self.missing_table:
            return []
        return [{"ori": r[0], "keys": r[1].split(",") if r[1] else None, "since": r[2],
                 "operator": r[3], "reason": r[4]} for r in rows]

    def save_removed(self, ori: str, keys: Sequence[str] | None, since: float, operator: str,
                     reason: str) -> None:
        """Keep ``ori``'s remove status (replacing an earlier one)."""
        with self._writing():
            self.conn.execute(
                "INSERT INTO remove_status (ori, keys, since, operator, reason) "
                f"VALUES ({self._marks(5)}) ON CONFLICT (ori) DO UPDATE SET keys = "
                "excluded.keys, since = excluded.since, operator = excluded.operator, "
                "reason = excluded.reason",
                (ori, ",".join(sorted(keys)) if keys else None, since, operator, reason))

    def delete_removed(self, ori: str) -> None:
        """Lift ``ori``'s remove status."""
        with self._writing():
            self.conn.execute(f"DELETE FROM remove_status WHERE ori = {self.dialect.mark}",
                              (ori,))


class SqliteConsole(ConsoleStore):
    """The console's queries on the embedded journal (a ``sqlite3`` connection)."""

    dialect = SQLITE
    missing_table = (sqlite3.OperationalError,)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        migrate(self.conn)  # a journal of an older version gains the table here
        with write_transaction(self.conn):
            yield


# SQLite's errors reach callers as StoreError, as the PostgreSQL store's do.
for _name in ("items", "held_by_destination", "edits", "load_removed", "list_removed",
              "save_removed", "delete_removed"):
    setattr(SqliteConsole, _name, translated(getattr(SqliteConsole, _name)))


def describe(it: Item, with_text: bool) -> dict[str, Any]:
    """An item as the API shows it (``text`` only when asked)."""
    out: dict[str, Any] = {
        "id": it.id, "msg_id": it.msg_id, "key": it.key, "origin": it.origin,
        "sender_link": it.sender_link, "control": it.control, "to": it.addressed,
        "receiver": it.receiver, "link": it.link, "state": it.state,
        "received_at": it.received_at}
    if with_text:
        out["text"] = it.text
    return out


def save_removed(conn: sqlite3.Connection, ori: str, keys: Sequence[str] | None, since: float,
                 operator: str, reason: str) -> None:
    """:meth:`ConsoleStore.save_removed` on a SQLite connection (tools, tests)."""
    SqliteConsole(conn).save_removed(ori, keys, since, operator, reason)
