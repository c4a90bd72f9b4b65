"""The PostgreSQL journal's writer process: one connection, one transaction per batch.

:class:`~nlets_switch.store.postgres_journal.PostgresJournal` starts the
journal's writer process (:func:`nlets_switch.store.writer.main`, the SQLite
journal's, with its framing and group commit, given :func:`open_backend`) with
``postgresql`` for its file and the database in the environment (:data:`ENV`:
the URL may hold a password, which a command line would show to every user of
the machine). The writer hands each group of operations to
:meth:`PostgresWriter.run`, which runs them in one transaction on its
connection, and sends back with their results the database's state, which the
switch logs and shows (``available``).

So the per-message Python work of a commit (COPY rows, sealing the text, its
word tokens, the cluster's output numbers) runs on another core than the
event loop, outside its GIL, as SQLite's does.

When the connection is lost, every operation of the group fails with
:class:`~nlets_switch.store.postgres_journal.DatabaseUnavailable` (the switch
answers ``N``; the sender keeps custody) and the next group connects again, at
most every :data:`~nlets_switch.store.postgres_journal.RETRY_S`: in between, a
group fails at once. Read-backs that wait the outage out are submitted again
by the switch (the writer answers every operation, in order).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, Final

from nlets_switch.errors import StoreError
from nlets_switch.store.postgres import PostgresStore, connect, redact
from nlets_switch.store.postgres_journal import (
    RETRY_S,
    WRITER_ENV,
    DatabaseUnavailable,
    Op,
    number_outputs,
)
from nlets_switch.store.writer import Result, Runner, _load, _sendable

__all__ = ["ENV", "PostgresWriter", "State", "open_backend"]

#: Environment variable carrying ``{"url": ..., "node": ...}`` to the writer.
ENV: Final = WRITER_ENV

#: What each result frame says of the database: whether it is unreachable, the
#: kind of the error that made it so, and how many groups failed for it since
#: the last frame.
State = tuple[bool, str | None, int]

#: psycopg's TransactionStatus.INERROR (a failed statement aborted the transaction).
_INERROR: Final = 3


class PostgresWriter:
    """The writer process's side of the PostgreSQL journal: :meth:`run` per group."""

    def __init__(self, url: str, node_id: str = "") -> None:
        self.url = url
        self.node_id = node_id
        #: Cluster mode: deliveries are numbered from the shared counters.
        self.scope = f"@{node_id}" if node_id else ""
        self.path = redact(url)
        self._conn: Any = None
        self._down = False
        self._error: str | None = None
        self._failed = 0
        self._last_attempt = 0.0
        self._last_error: BaseException | None = None

    @classmethod
    def from_env(cls) -> PostgresWriter:
        """The writer the switch described in :data:`ENV` (removed from the environment)."""
        spec = json.loads(os.environ.pop(ENV))
        return cls(str(spec["url"]), str(spec.get("node") or ""))

    def close(self) -> None:
        """Close the connection (what was committed stays committed)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def run(self, raw_ops: list[bytes]) -> tuple[list[Result], State]:
        """One group: the pickled operations in one transaction; their results, in
        order, and the database's state."""
        results = self._commit([_load(raw) for raw in raw_ops])
        state: State = (self._down, self._error, self._failed)
        self._failed = 0
        return results, state

    def _connection(self) -> Any:
        """The connection, connecting again after a loss (at most every RETRY_S)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        now = time.monotonic()
        if now - self._last_attempt < RETRY_S and self._last_error is not None:
            raise DatabaseUnavailable(f"{self.path}: unreachable")
        self._last_attempt = now
        try:
            conn = connect(self.url, application="nlets-switch journal")
        except StoreError as e:
            self._last_error = e
            self._went_down(e)
            raise DatabaseUnavailable(str(e)) from None
        self._conn, self._last_error = conn, None
        self._down, self._error = False, None
        return conn

    def _went_down(self, error: BaseException) -> None:
        if not self._down:
            self._down, self._error = True, type(error).__name__

    def _unavailable(self, ops: list[Op], error: DatabaseUnavailable) -> list[Result]:
        self._failed += 1
        return [(None, error) for _ in ops]

    def _commit(self, ops: list[Op]) -> list[Result]:
        try:
            conn = self._connection()
        except DatabaseUnavailable as e:
            return self._unavailable(ops, e)
        store = PostgresStore(conn, node=self.node_id)
        results: list[Result] = []
        try:
            with conn.transaction():
                if self.scope:
                    number_outputs(store, ops)
                for op in ops:
                    results.append((op(store), None))
                if conn.info.transaction_status == _INERROR:
                    raise StoreError("an operation's error aborted the batch")
        except Exception as e:
            if conn.closed or conn.broken:
                # Lost while committing: nothing of the group may be acknowledged.
                self._went_down(e)
                return self._unavailable(ops, DatabaseUnavailable(
                    f"{self.path}: connection lost"))
            results = self._one_by_one(store, ops)
        return results

    def _one_by_one(self, store: PostgresStore, ops: list[Op]) -> list[Result]:
        """One bad operation must not cost the others their custody: each on its own."""
        results: list[Result] = []
        for op in ops:
            try:
                with store.conn.transaction():
                    if self.scope:
                        number_outputs(store, [op])
                    r = op(store)
                results.append((r, None))
            except Exception as e:
                results.append((None, _sendable(e)))
        return results



def open_backend(target: str) -> tuple[Runner, Callable[[], None]]:
    """The writer process's backend (store/writer.py's ``main``): ``target`` is
    ``postgresql``; the database is in :data:`ENV`."""
    w = PostgresWriter.from_env()
    return w.run, w.close
