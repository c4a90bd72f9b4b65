"""The message log in SQLite: the journal's ``messages`` and ``deliveries``, read back.

The queries are :mod:`nlets_switch.store.logquery`'s, in SQLite's dialect:
searches scan by id (newest first) and filter with the criteria of a
:class:`~nlets_switch.store.base.MessageQuery`; the text is opened in SQL
(``ns_open``), and text search matches the word index, the FTS5 table
``message_words`` of blind tokens that the journal's writer fills (schema
version 6). A database without the journal's tables (a tool pointed at a new
file) is an empty log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from nlets_switch.errors import StoreError
from nlets_switch.store._sqlite import has_table
from nlets_switch.store.logquery import SQLITE, SqlMessageLog


class SqliteMessageLog(SqlMessageLog):
    """:class:`~nlets_switch.store.base.MessageLogStore` on a SQLite connection."""

    __slots__ = ()
    conn: sqlite3.Connection
    dialect = SQLITE

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}") from e

    def _has(self, table: str) -> bool:
        try:
            return has_table(self.conn, table)
        except sqlite3.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}") from e
