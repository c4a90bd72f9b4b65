"""The NL service's help files in SQLite (table ``help_files``, PROTOCOL part 5)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Final

from nlets_switch.store._sqlite import has_table, translated, write_transaction
from nlets_switch.store.base import HelpFile
from nlets_switch.store.schema import migrate

_COLUMNS: Final = "state, file, text, updated_at, updated_by"


def _row(hf: HelpFile) -> tuple[str, str, str, float, str]:
    return hf.state, hf.file, hf.text, hf.updated_at, hf.updated_by


class SqliteHelp:
    """:class:`~nlets_switch.store.base.HelpStore` on a SQLite connection."""

    __slots__ = ()
    conn: sqlite3.Connection

    @translated
    def help_file(self, state: str, file: str) -> HelpFile | None:
        """Help file ``file`` of ``state``, or None."""
        if not has_table(self.conn, "help_files"):
            return None
        r = self.conn.execute(f"SELECT {_COLUMNS} FROM help_files WHERE state = ? AND file = ?",
                              (state, file)).fetchone()
        if r is None:
            return None
        return HelpFile(str(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]))

    @translated
    def put_help_file(self, hf: HelpFile) -> None:
        """Write ``hf``, replacing the file of that state and name."""
        with write_transaction(self.conn):
            migrate(self.conn)
            self.conn.execute(
                f"INSERT INTO help_files ({_COLUMNS}) VALUES (?,?,?,?,?) "
                "ON CONFLICT(state, file) DO UPDATE SET text = excluded.text, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by", _row(hf))

    @translated
    def delete_help_file(self, state: str, file: str) -> bool:
        """Remove help file ``file`` of ``state``; whether there was one."""
        with write_transaction(self.conn):
            migrate(self.conn)
            cur = self.conn.execute("DELETE FROM help_files WHERE state = ? AND file = ?",
                                    (state, file))
            return cur.rowcount > 0

    @translated
    def seed_help_files(self, files: Iterable[HelpFile]) -> None:
        """Write those of ``files`` that do not exist yet."""
        with write_transaction(self.conn):
            # The switch's journal may predate the help table (schema version 1).
            migrate(self.conn)
            self.conn.executemany(f"INSERT OR IGNORE INTO help_files ({_COLUMNS}) "
                                  "VALUES (?,?,?,?,?)", [_row(hf) for hf in files])
