"""The LEIS person tables in one SQLite file: the embedded home of
:class:`~nlets_switch.store.leis.LeisStore` (``DATA_DIR/leis.sqlite``).

:class:`SqliteLeisDb` is the store's dialect for SQLite, as
:mod:`nlets_switch.store.postgres_leis` is its dialect for PostgreSQL: the
tables' layout, the transaction that builds them, and how to run a statement.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = ["SqliteLeisDb"]


# person: one sealed record per person (kid: the keyring id it is sealed
# under); term: the blind index, one row per (tag, person), the tag being a
# keyed HMAC of a search key, never the key itself.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS person (
    id INTEGER PRIMARY KEY, origin TEXT NOT NULL, kid INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS term (
    tag BLOB NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tag, id)) WITHOUT ROWID;
"""

# Created after the bulk insert of a fresh build: filling indexed tables
# row by row is slower than indexing them once.
_INDEXES = """
CREATE INDEX IF NOT EXISTS term_id ON term (id);
CREATE INDEX IF NOT EXISTS person_origin ON person (origin);
"""

#: The tables of the clear-text layout (schema 1), dropped when it is migrated.
_V1_TABLES = ("name", "dob", "ident", "location", "contact")


class SqliteLeisDb:
    """:class:`LeisDb` on one SQLite file (WAL mode), the embedded default."""

    person, term, meta = "person", "term", "meta"

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        """Wrap an open connection to the file at ``path``."""
        self.conn = conn
        self.path: Path | None = path
        self.where = str(path)
        self.reset_hint = f"remove {path.name}"

    @classmethod
    def open(cls, path: Path) -> SqliteLeisDb:
        """Open (or create) the file at ``path``, WAL mode; its tables may not exist yet."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                               timeout=30.0)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            # What is deleted is overwritten, not left in free pages.
            conn.execute("PRAGMA secure_delete=ON")
        except BaseException:
            conn.close()
            raise
        return cls(conn, path)

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows."""
        return self.conn.execute(sql, args).fetchall()

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """``executemany`` of one INSERT."""
        if rows:
            marks = ",".join("?" * len(rows[0]))
            self.conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """``BEGIN IMMEDIATE``: takes the file's write lock first, so two processes
        opening a new file at once build it once (the second sees the first's meta)."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def has_tables(self) -> bool:
        """Whether the file has its meta table."""
        return bool(self.rows("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                              "AND name = 'meta'"))

    def reset(self) -> None:
        """Drop every table (this layout's and the clear-text one's) and create them."""
        for table in ("meta", "person", "term", *_V1_TABLES):
            self.conn.execute(f"DROP TABLE IF EXISTS {table}")
        # Statement by statement: executescript() would COMMIT first.
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                self.conn.execute(statement)

    def built(self) -> None:
        """Index the filled tables."""
        for statement in _INDEXES.split(";"):
            if statement.strip():
                self.conn.execute(statement)

    def purge(self) -> None:
        """The old layout's pages held clear text, in the file's free pages and in
        its WAL: rewrite the file (VACUUM) and empty the WAL."""
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("DELETE FROM meta WHERE key = 'purge'")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        """Close the file."""
        self.conn.close()
