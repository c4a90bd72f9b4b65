"""The DHS LEIS person tables in the PostgreSQL store: one data set for every cluster node.

With a PostgreSQL store (docs/cluster.md) the tables of
:mod:`nlets_switch.store.leis` are the database's ``leis_person``,
``leis_term`` and ``leis_meta`` (schema version 6,
:mod:`nlets_switch.store.postgres_schema`): the same sealed records and
blind-index tags, under keys derived from the text keyring every node
shares, so an agency's ``leis load`` through one node is found through any
other, and the node that takes the ``AX`` service over after a failure
answers from the same data. :class:`PgLeisDb` is the dialect
:class:`~nlets_switch.store.leis.LeisStore` runs its statements through;
nothing of the search is written twice.

Writers (the build, a load) take a transaction-level advisory lock
(:data:`LEIS_LOCK`): the first node to find the data missing builds it, the
others wait on the lock and then find it built. The connection is the
store's own, reopened on the next call after the database went away (a
call meanwhile raises :class:`~nlets_switch.errors.StoreError`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Final

from nlets_switch.store.leis import LeisStore
from nlets_switch.store.leiscrypt import LeisCipher
from nlets_switch.store.postgres import connect, redact, translated_errors
from nlets_switch.store.postgres_schema import create_leis_tables, migrate

__all__ = ["LEIS_LOCK", "PgLeisDb", "open_leis"]

#: The advisory lock key of writes to the LEIS tables ("nlets-ls").
LEIS_LOCK: Final = 0x6E6C6574732D6C73


class PgLeisDb:
    """:class:`~nlets_switch.store.leis.LeisDb` on the PostgreSQL store's ``leis_*`` tables."""

    person, term, meta = "leis_person", "leis_term", "leis_meta"
    path: Path | None = None

    def __init__(self, url: str) -> None:
        """Connect to ``url`` and bring its schema up to date (version 6 has the tables)."""
        self.url = url
        self.where = f"the LEIS tables of {redact(url)}"
        self.reset_hint = "empty them (DELETE FROM leis_meta)"
        self._conn: Any = None
        with translated_errors(redact(url)):
            conn = self._connection()
            migrate(conn, redact(url))
            if conn.execute("SELECT to_regclass('leis_meta')").fetchone()[0] is None:
                # A database that reached version 7 before version 6 existed (a
                # development build): the tables are made all the same.
                with conn.transaction():
                    create_leis_tables(conn)

    def _connection(self) -> Any:
        # A connection the database dropped (a restart, an outage) is replaced at
        # the next call; the call that met the failure has raised StoreError.
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = connect(self.url, application="nlets-switch leis")
        return self._conn

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement (``?`` placeholders); its rows."""
        with translated_errors(self.where):
            cur = self._connection().execute(sql.replace("?", "%s"), tuple(args))
            return list(cur.fetchall()) if cur.description is not None else []

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """``COPY`` the rows in (a build writes some 200,000 index rows)."""
        if not rows:
            return
        with translated_errors(self.where), self._connection().cursor() as cur, \
                cur.copy(f"COPY {table} FROM STDIN") as copy:
            for r in rows:
                copy.write_row(r)

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        """A transaction under :data:`LEIS_LOCK`: one writer at a time, cluster-wide."""
        with translated_errors(self.where):
            conn = self._connection()
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (LEIS_LOCK,))
                yield

    def has_tables(self) -> bool:
        """Always: the schema migration made them."""
        return True

    def reset(self) -> None:
        """Empty the tables (their layout is the schema migration's)."""
        for table in (self.term, self.person, self.meta):
            self.rows(f"DELETE FROM {table}")

    def built(self) -> None:
        """Nothing: the tables' indexes exist from the migration."""

    def purge(self) -> None:
        """Nothing to rewrite (no clear-text layout ever lived here); forget the mark."""
        self.rows(f"DELETE FROM {self.meta} WHERE key = 'purge'")

    def close(self) -> None:
        """Close the connection."""
        if self._conn is not None:
            self._conn.close()


def open_leis(url: str, cipher: LeisCipher) -> LeisStore:
    """The LEIS tables of the PostgreSQL store at ``url``, sealed under ``cipher``
    (StoreError, one line, when the database cannot be reached or is too new)."""
    return LeisStore(PgLeisDb(url), cipher)
