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
import contextlib
import functools
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from nlets_switch.store import textcrypt
from nlets_switch.store.records import (
    OPEN_STATES,
    Batch,
    ExpiredRow,
    OwedRow,
    Recovered,
)

__all__ = ["OPEN_STATES", "Journal", "connect"]

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

def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the journal with the pragmas the switch relies on."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Before its first write: the file and its WAL are the owner's alone.
        _private(path)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsync'd before it returns; that is what custody needs.
        conn.execute("PRAGMA synchronous=FULL")
        # Checkpoints run beside the writer (Journal.checkpoint), not inside its
        # commits; this is only the backstop if they stop.
        conn.execute("PRAGMA wal_autocheckpoint=20000")
    conn.execute("PRAGMA busy_timeout=5000")
    # ns_open / ns_seal: message text at rest (store/textcrypt.py).
    return textcrypt.install(conn)


def _private(path: Path) -> None:
    """Journal files 0600 whatever the umask (CJIS 5.10.1.2): SQLite makes the WAL
    and -shm with the main file's mode."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o600)


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
        await self.call(_nothing)

    @property
    def backlog(self) -> int:
        """Operations waiting for the writer."""
        return len(self._queue)

    # -- the typed hot path (what the switch asks of any store) -------------

    def recover(self) -> Recovered:
        """The highest ids handed out and the counters (blocking; before start)."""
        if self._conn is None:
            self.open()
        assert self._conn is not None
        return recover(self._conn)

    def write(self, batch: Batch, done: Callable[[BaseException | None], None]) -> None:
        """Make ``batch`` durable in one commit; ``done(error)`` runs on the loop after it."""
        self.submit(functools.partial(write_batch, batch=batch),
                    lambda _result, exc: done(exc))

    def owed(self, link: str, after: int, limit: int,
             done: Callable[[list[OwedRow] | None, BaseException | None], None]) -> None:
        """Deliveries still owed to ``link`` with id above ``after``, in id order.

        Runs after every write submitted before it, so it never returns a
        delivery whose acknowledgement was already handed over.
        """
        self.submit(functools.partial(load_owed, link=link, after=after, limit=limit), done)

    def expire(self, now: float, limit: int,
               done: Callable[[list[ExpiredRow] | None, BaseException | None], None]) -> None:
        """Mark open deliveries whose hold ended by ``now`` expired; return them."""
        self.submit(functools.partial(expire_due, now=now, limit=limit), done)

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


def _nothing(conn: sqlite3.Connection) -> None:
    return None


# --------------------------------------------------------------------------
# The hot path's statements (run on the writer).
# --------------------------------------------------------------------------

_INSERT_MSG = ("INSERT INTO messages (id, received_at, link, key, origin, destinations, control, "
               "input_no, status, reason, reply_to, body_start, text) "
               # The text is sealed here, on the writer (store/textcrypt.py), bound to its id.
               "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,ns_seal(?13, ?1))")
_INSERT_DLV = ("INSERT INTO deliveries (id, msg_id, link, receiver, addressed, output_no, "
               "priority, state, created_at, expires_at, held) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
_COUNTER = ("INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value")


def write_batch(conn: sqlite3.Connection, batch: Batch) -> None:
    """Everything one batch holds, inside the writer's transaction.

    One ``executemany`` per table: far cheaper for SQLite than a few small
    statements per message.
    """
    if batch.messages:
        conn.executemany(_INSERT_MSG, batch.messages)
    if batch.deliveries:
        conn.executemany(_INSERT_DLV, batch.deliveries)
    if batch.counters:
        conn.executemany(_COUNTER, list(batch.counters.items()))
    if batch.sent:
        conn.executemany(
            "UPDATE deliveries SET state = 'sent', sent_at = ? WHERE id = ? AND state IN "
            "('queued', 'held')", [(at, i) for i, at in batch.sent.items()])
    if batch.done:
        # A delivery sent and acknowledged within one batch is written once.
        conn.executemany(
            "UPDATE deliveries SET state = ?, done_at = ?, sent_at = COALESCE(sent_at, ?) "
            "WHERE id = ?", batch.done)


def load_owed(conn: sqlite3.Connection, link: str, after: int, limit: int) -> list[OwedRow]:
    """Open deliveries of ``link`` past id ``after``, oldest first, with their bodies."""
    rows = conn.execute(
        "SELECT d.id, d.msg_id, d.link, d.receiver, d.addressed, d.output_no, d.priority, "
        "m.key, m.origin, m.received_at, m.input_no, m.control, m.body_start, "
        "ns_open(m.text, m.id), "
        "d.expires_at, d.sent_at FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        "WHERE d.link = ? AND d.state IN ('queued', 'held', 'sent') AND d.id > ? "
        "ORDER BY d.id LIMIT ?", (link, after, limit)).fetchall()
    return [
        OwedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                r[13][r[12]:].rstrip("\r\n"), r[14], r[15])
        for r in rows
    ]


def expire_due(conn: sqlite3.Connection, now: float, limit: int = 1000) -> list[ExpiredRow]:
    """Open deliveries whose hold ended by ``now``: marked expired and returned."""
    # Everything open that expired at or before the watermark is already
    # expired, so only the range past it is read (expires_at never changes).
    row = conn.execute("SELECT value FROM meta WHERE name = 'expiry_watermark'").fetchone()
    mark = float(row[0]) if row else 0.0
    rows = [ExpiredRow(*r) for r in conn.execute(
        "SELECT d.id, d.addressed, m.id, m.link, m.key, m.origin, m.control, "
        "ns_open(m.text, m.id) FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        "WHERE d.expires_at > ? AND d.expires_at <= ? AND d.state IN ('queued', 'held', 'sent') "
        "ORDER BY d.expires_at LIMIT ?", (mark, now, limit)).fetchall()]
    conn.executemany("UPDATE deliveries SET state = 'expired', done_at = ? WHERE id = ?",
                     [(now, r.delivery_id) for r in rows])
    if len(rows) < limit:
        conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('expiry_watermark', ?)",
                     (repr(now),))
    return rows


def recover(conn: sqlite3.Connection) -> Recovered:
    """The highest message and delivery ids ever handed out, and the counters."""
    mid = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
    did = conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()[0]
    counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    return Recovered(max(int(mid), int(counters.get("id:msg", 0))),
                     max(int(did), int(counters.get("id:dlv", 0))), counters)
