"""The journal: SQLite in WAL mode, one writer thread, group commit.

Custody (PROTOCOL part 1) means an ``M`` is answered ``A`` only once it is
durable. Doing an fsync per message would cap the switch at the disk's
fsync rate, so one writer thread owns the connection and commits *batches*:
everything submitted while the previous commit was running goes into the next
transaction, one fsync (``synchronous=FULL``) covers all of it, and the loop
is woken once per batch to release every acknowledgement in it.

Operations are plain functions of a :class:`sqlite3.Connection`, run in
submission order; their results reach callbacks on the event loop in the
same order. Reads go through the same queue, so a read sees every write
submitted before it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

Op = Callable[[sqlite3.Connection], Any]
Done = Callable[[Any, BaseException | None], None]

SCHEMA_VERSION: Final = 1

_DDL = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    received_at REAL NOT NULL,
    link TEXT NOT NULL,
    key TEXT,
    origin TEXT,
    destinations TEXT,
    control TEXT,
    input_no INTEGER,
    status TEXT NOT NULL,
    reason TEXT,
    reply_to INTEGER,
    body_start INTEGER NOT NULL DEFAULT 0,
    text TEXT NOT NULL
);
-- Every index costs each insert; the message log's searches scan by id
-- (newest first, with OR over origin, link and deliveries), so only the time
-- index (retention pruning) is kept.
DROP INDEX IF EXISTS messages_link;
DROP INDEX IF EXISTS messages_origin;
CREATE INDEX IF NOT EXISTS messages_time ON messages(received_at);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    msg_id INTEGER NOT NULL,
    link TEXT NOT NULL,
    receiver TEXT NOT NULL,
    addressed TEXT NOT NULL,
    output_no INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    sent_at REAL,
    done_at REAL,
    held INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(link, id)
    WHERE state IN ('queued', 'held', 'sent');
CREATE INDEX IF NOT EXISTS deliveries_msg ON deliveries(msg_id);
-- Not partial: a state change then never touches it. The expiry sweep reads
-- only the range past its watermark (meta 'expiry_watermark').
DROP INDEX IF EXISTS deliveries_expiry;
CREATE INDEX IF NOT EXISTS deliveries_expires ON deliveries(expires_at);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

#: States of a delivery that is still owed to its destination.
OPEN_STATES: Final = ("queued", "held", "sent")


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the journal with the pragmas the switch relies on."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsync'd before it returns; that is what custody needs.
        conn.execute("PRAGMA synchronous=FULL")
        # Checkpoints run beside the writer (Journal.checkpoint), not inside its
        # commits; this is only the backstop if they stop.
        conn.execute("PRAGMA wal_autocheckpoint=20000")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


class Journal:
    """The writer thread and its queue. Create, :meth:`start`, submit, :meth:`close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._queue: deque[tuple[Op, Done | None]] = deque()
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._conn: sqlite3.Connection | None = None
        #: Commit statistics for metrics: batches, ops, seconds spent committing.
        self.batches = 0
        self.ops = 0
        self.commit_seconds = 0.0
        self.last_commit_seconds = 0.0
        self.on_commit: Callable[[float, int], None] | None = None

    # -- life cycle -------------------------------------------------------

    def open(self) -> sqlite3.Connection:
        """Open the database and create the tables (blocking; before start)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        conn.executescript(_DDL)
        # A journal made before `held` existed gets the column (defaults to 0).
        cols = {r[1] for r in conn.execute("PRAGMA table_info(deliveries)")}
        if "held" not in cols:
            conn.execute("ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0")
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                     (str(SCHEMA_VERSION),))
        self._conn = conn
        return conn

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread; callbacks will run on ``loop``."""
        if self._conn is None:
            self.open()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Finish every submitted operation, stop the thread, close the database."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- submitting -------------------------------------------------------

    def submit(self, op: Op, done: Done | None = None) -> None:
        """Queue ``op``; ``done(result, error)`` runs on the loop after the commit."""
        with self._cv:
            if self._closing:
                raise RuntimeError("journal is closed")
            self._queue.append((op, done))
            if len(self._queue) == 1:
                self._cv.notify()

    async def call(self, op: Op) -> Any:
        """Submit ``op`` and wait for its committed result."""
        assert self._loop is not None
        fut: asyncio.Future[Any] = self._loop.create_future()

        def done(result: Any, exc: BaseException | None) -> None:
            if fut.done():
                return
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(result)

        self.submit(op, done)
        return await fut

    def checkpoint(self) -> None:
        """Copy the WAL back into the database from a second connection (blocking).

        PASSIVE never waits for, nor blocks, the writer; run it in a thread.
        """
        conn = connect(self.path)
        try:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    async def barrier(self) -> None:
        """Wait until everything submitted so far is committed."""
        await self.call(lambda conn: None)

    @property
    def backlog(self) -> int:
        """Operations waiting for the writer."""
        return len(self._queue)

    # -- the writer thread -----------------------------------------------

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None and self._loop is not None
        loop = self._loop
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue and self._closing:
                    return
                batch = list(self._queue)
                self._queue.clear()
            results = self._commit(conn, batch)
            try:
                loop.call_soon_threadsafe(_complete, results)
            except RuntimeError:
                # The loop is closed (shutdown after a crash): nobody waits any more.
                return

    def _commit(self, conn: sqlite3.Connection,
                batch: list[tuple[Op, Done | None]]) -> list[tuple[Done | None, Any,
                                                                   BaseException | None]]:
        t0 = time.perf_counter()
        results: list[tuple[Done | None, Any, BaseException | None]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, done in batch:
                results.append((done, op(conn), None))
            conn.execute("COMMIT")
        except Exception:
            # One bad operation must not cost the others their custody: roll
            # back and run each on its own, so only the culprit fails.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            results = []
            for op, done in batch:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    r = op(conn)
                    conn.execute("COMMIT")
                    results.append((done, r, None))
                except Exception as e:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    results.append((done, None, e))
        dt = time.perf_counter() - t0
        self.batches += 1
        self.ops += len(batch)
        self.commit_seconds += dt
        self.last_commit_seconds = dt
        if self.on_commit is not None:
            self.on_commit(dt, len(batch))
        return results


def _complete(results: list[tuple[Done | None, Any, BaseException | None]]) -> None:
    for done, result, exc in results:
        if done is not None:
            done(result, exc)
