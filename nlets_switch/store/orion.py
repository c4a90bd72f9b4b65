"""ORION changes made on the wire (``TA``/``TU``/``TD``) in SQLite, table ``orion``.

The configuration is the directory's starting point; each row here is the
latest change a control terminal made to one ORI: its record (JSON of the
directory entry's fields), or none when it was deleted. The switch applies
them over the configuration at every start (docs/services.md).
"""

from __future__ import annotations

import json
import sqlite3
from typing import Final

from nlets_switch.store._sqlite import has_table, translated, write_transaction
from nlets_switch.store.base import OrionRecord
from nlets_switch.store.schema import migrate

_COLUMNS: Final = "ori, record, updated_at, updated_by"


class SqliteOrion:
    """:class:`~nlets_switch.store.base.OrionStore` on a SQLite connection."""

    __slots__ = ()
    conn: sqlite3.Connection

    @translated
    def orion_records(self) -> list[OrionRecord]:
        """Every ORI changed on the wire, oldest change first."""
        if not has_table(self.conn, "orion"):
            return []
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM orion ORDER BY updated_at, ori").fetchall()
        return [OrionRecord(str(r[0]), json.loads(r[1]) if r[1] is not None else None,
                            float(r[2]), str(r[3])) for r in rows]

    @translated
    def put_orion_record(self, rec: OrionRecord) -> None:
        """Record the latest change of ``rec.ori`` (``record`` None: deleted)."""
        with write_transaction(self.conn):
            migrate(self.conn)
            self.conn.execute(
                f"INSERT INTO orion ({_COLUMNS}) VALUES (?,?,?,?) ON CONFLICT(ori) DO UPDATE "
                "SET record = excluded.record, updated_at = excluded.updated_at, "
                "updated_by = excluded.updated_by",
                (rec.ori, json.dumps(dict(rec.record), sort_keys=True)
                 if rec.record is not None else None, rec.updated_at, rec.updated_by))
