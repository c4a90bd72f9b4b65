"""The message log on PostgreSQL: :mod:`nlets_switch.store.logquery`'s queries in its dialect.

``%s`` parameters, ``= ANY(array)`` for id lists; the text comes back sealed
(the database never sees it in clear, nor the key) and is opened here
(:func:`~nlets_switch.store.textcrypt.open_or_note`); text search matches the
blind tokens of the ``tsvector`` column ``messages.words`` under its GIN
index (schema version 4).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nlets_switch.store.logquery import POSTGRES, SqlMessageLog
from nlets_switch.store.textcrypt import open_or_note


class PgMessageLog(SqlMessageLog):
    """:class:`~nlets_switch.store.base.MessageLogStore` on a psycopg connection."""

    __slots__ = ()
    conn: Any
    dialect = POSTGRES

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        rows: list[Any] = self.conn.execute(sql, args).fetchall()
        return rows

    def _text(self, value: Any, msg_id: int) -> str:
        return open_or_note(value, msg_id)
