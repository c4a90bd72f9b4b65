"""The operator console's queries on the PostgreSQL store (``serve --store postgresql://``).

The queries are :class:`~nlets_switch.store.console.ConsoleStore`'s, written
once for both stores; here is only what PostgreSQL spells differently
(:data:`POSTGRES`: ``%s`` placeholders, the text column opened in Python) and
its write transaction. The remove-status table is the store's schema
version 5 (:mod:`nlets_switch.store.postgres_schema`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Final

from nlets_switch.store.console import ConsoleStore, Dialect
from nlets_switch.store.postgres import PostgresStore, _translated, driver
from nlets_switch.store.textcrypt import open_or_note

#: The text column is read as stored (sealed, store/textcrypt.py) and opened here.
POSTGRES: Final = Dialect("%s", "m.text")


class PgConsole(ConsoleStore):
    """The console's queries on a PostgreSQL store's connection."""

    dialect = POSTGRES

    def __init__(self, store: PostgresStore) -> None:
        super().__init__(store.conn)
        # A read-only tool may meet a database older than version 5 (no remove_status).
        self.missing_table = (driver().errors.UndefinedTable,)

    def _clear(self, value: Any, msg_id: int) -> str:
        # Sealed by the journal's writer like SQLite's (PostgreSQL never sees the key).
        return open_or_note(value, msg_id)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        with self.conn.transaction():
            yield


# The driver's errors reach callers as StoreError, as the embedded store's do.
for _name in ("items", "held_by_destination", "edits", "load_removed", "list_removed",
              "save_removed", "delete_removed"):
    setattr(PgConsole, _name, _translated(getattr(PgConsole, _name)))
