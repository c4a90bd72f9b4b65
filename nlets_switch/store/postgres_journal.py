"""The journal on PostgreSQL: the switch's hot path, one transaction per batch, group commit.

The same API as the SQLite :class:`~nlets_switch.store.journal.Journal`, so the
server does not know which it has: :meth:`recover`, :meth:`start`,
:meth:`write` / :meth:`owed` / :meth:`expire`, :meth:`submit` / :meth:`call`
for the cold tables, :meth:`barrier`, :meth:`close`, :attr:`backlog`,
:attr:`path` (here the URL without its password).

One writer thread owns one connection. Everything submitted while the
previous transaction ran goes into the next one; its COMMIT returns only
once the database made it durable (``synchronous_commit`` on, see
:func:`~nlets_switch.store.postgres.connect`), and only then are the
callbacks run on the loop, so no ``A`` leaves for a message that is not
committed. Cold-table operations get a
:class:`~nlets_switch.store.postgres.PostgresStore` on the writer's
connection (the functions of ``ops/`` take a store or a connection and use
:func:`~nlets_switch.store.sqlite.as_store`, which passes a store through).

When the connection is lost, every operation of the batch fails (the switch
answers ``N``, PROTOCOL part 1: the sender keeps custody) and the next batch
connects again; while the database stays unreachable, batches fail at once
between attempts (:data:`RETRY_S`), so senders hear ``N`` quickly and the
loop is never blocked. A read-back of what is owed to a link (an ORI signing
on meanwhile) is not failed but waits for the database, so the link gets its
deliveries when the database returns, with no new traffic needed to ask again.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeAlias

from nlets_switch.errors import StoreError
from nlets_switch.log import get_logger
from nlets_switch.store.journal import Journal
from nlets_switch.store.postgres import (
    PostgresStore,
    connect,
    is_postgres_url,
    redact,
    translated_errors,
)
from nlets_switch.store.postgres_schema import migrate
from nlets_switch.store.records import Batch, ExpiredRow, OwedRow, Recovered

__all__ = ["AnyJournal", "PostgresJournal", "expire_due", "journal_for", "load_owed",
           "recover", "write_batch"]

Op = Callable[[Any], Any]
Done = Callable[[Any, BaseException | None], None]
#: An operation, its callback, and whether it waits out an outage (a read-back).
Entry = tuple[Op, "Done | None", bool]
Finished = list[tuple[Done | None, Any, BaseException | None]]

#: Least seconds between two attempts to reach a database that is gone.
RETRY_S: Final = 0.5

log = get_logger("journal")


def journal_for(url: str | None, data_dir: Path) -> AnyJournal:
    """The journal a configuration asks for: PostgreSQL for a ``postgresql://`` URL,
    else the embedded SQLite file ``<data_dir>/journal.sqlite`` (the default)."""
    if url and is_postgres_url(url):
        return PostgresJournal(url)
    return Journal(Path(data_dir) / "journal.sqlite")


class DatabaseUnavailable(StoreError):
    """The database cannot be reached (connection lost or refused)."""


class PostgresJournal:
    """The writer thread and its queue on PostgreSQL. Create, :meth:`start`, submit,
    :meth:`close`."""

    def __init__(self, url: str) -> None:
        self.url = url
        #: What logs and the status show as the journal's place (no password).
        self.path = redact(url)
        self._queue: deque[Entry] = deque()
        #: Read-backs waiting for the database to return.
        self._parked: list[Entry] = []
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._conn: Any = None
        self._down_since: float | None = None
        self._last_attempt = 0.0
        self._last_error: BaseException | None = None
        #: Commit statistics for metrics: batches, ops, seconds spent committing.
        self.batches = 0
        self.ops = 0
        self.commit_seconds = 0.0
        self.last_commit_seconds = 0.0
        #: Batches that failed because the database was unreachable.
        self.unavailable = 0
        self.on_commit: Callable[[float, int], None] | None = None

    # -- life cycle -------------------------------------------------------

    def open(self) -> Any:
        """Connect and bring the schema up to date (blocking; before start).

        Raises StoreError (one line, naming the database) when it cannot be
        reached or is at a newer schema version than this program's.
        """
        if self._conn is None:
            conn = connect(self.url, application="nlets-switch journal")
            try:
                with translated_errors(self.path):
                    migrate(conn, self.path)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer thread; callbacks will run on ``loop``."""
        self.open()
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="journal-writer-pg",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Finish every submitted operation, stop the thread, close the connection."""
        with self._cv:
            self._closing = True
            self._cv.notify()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def available(self) -> bool:
        """False while the database is unreachable (since the last failed attempt)."""
        return self._down_since is None

    # -- submitting -------------------------------------------------------

    def submit(self, op: Op, done: Done | None = None, *, wait_out: bool = False) -> None:
        """Queue ``op`` (a function of a store); ``done(result, error)`` runs on the loop
        after the commit. ``wait_out``: while the database is unreachable, keep the
        operation for when it returns instead of failing it (reads only)."""
        with self._cv:
            if self._closing:
                raise RuntimeError("journal is closed")
            self._queue.append((op, done, wait_out))
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

    async def barrier(self) -> None:
        """Wait until everything submitted so far is committed (or failed)."""
        await self.call(_nothing)

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself (the switch asks SQLite's journal)."""

    @property
    def backlog(self) -> int:
        """Operations waiting for the writer."""
        return len(self._queue)

    # -- the typed hot path ------------------------------------------------

    def recover(self) -> Recovered:
        """The highest ids handed out and the counters (blocking; before start)."""
        conn = self.open()
        with translated_errors(self.path):
            return recover(PostgresStore(conn))

    def write(self, batch: Batch, done: Callable[[BaseException | None], None]) -> None:
        """Make ``batch`` durable in one commit; ``done(error)`` runs on the loop after it."""
        self.submit(functools.partial(write_batch, batch=batch),
                    lambda _result, exc: done(exc))

    def owed(self, link: str, after: int, limit: int,
             done: Callable[[list[OwedRow] | None, BaseException | None], None]) -> None:
        """Deliveries still owed to ``link`` with id above ``after``, in id order."""
        self.submit(functools.partial(load_owed, link=link, after=after, limit=limit), done,
                    wait_out=True)

    def expire(self, now: float, limit: int,
               done: Callable[[list[ExpiredRow] | None, BaseException | None], None]) -> None:
        """Mark open deliveries whose hold ended by ``now`` expired; return them."""
        self.submit(functools.partial(expire_due, now=now, limit=limit), done)

    # -- the writer thread -----------------------------------------------

    def _run(self) -> None:
        assert self._loop is not None
        loop = self._loop
        while True:
            with self._cv:
                while not self._queue and not self._closing and not self._parked:
                    self._cv.wait()
                if self._parked and not self._queue and not self._closing:
                    self._cv.wait(RETRY_S)  # then try the database again
                if not self._queue and not self._parked and self._closing:
                    return
                batch = self._parked + list(self._queue)
                self._parked = []
                self._queue.clear()
                closing = self._closing
            results = self._commit(batch, closing)
            try:
                loop.call_soon_threadsafe(_complete, results)
            except RuntimeError:
                return  # the loop is closed: nobody waits any more

    def _connection(self) -> Any:
        """The writer's connection, connecting again after a loss (at most every RETRY_S)."""
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        now = time.monotonic()
        if now - self._last_attempt < RETRY_S and self._last_error is not None:
            raise DatabaseUnavailable(f"{self.path}: unreachable") from self._last_error
        self._last_attempt = now
        try:
            conn = connect(self.url, application="nlets-switch journal")
        except StoreError as e:
            self._last_error = e
            self._went_down(e)
            raise DatabaseUnavailable(str(e)) from e
        self._conn, self._last_error = conn, None
        if self._down_since is not None:
            log.warning("database_back", database=self.path,
                        after_s=round(time.monotonic() - self._down_since, 1))
            self._down_since = None
        return conn

    def _went_down(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("database_unreachable", database=self.path,
                      error=type(error).__name__)

    def _unavailable(self, batch: list[Entry], error: BaseException,
                     closing: bool) -> Finished:
        """Fail the batch, except the read-backs that wait for the database's return."""
        self.unavailable += 1
        if not closing:
            self._parked = [e for e in batch if e[2]]
        return [(done, None, error) for _, done, wait in batch if closing or not wait]

    def _commit(self, batch: list[Entry], closing: bool = False) -> Finished:
        t0 = time.perf_counter()
        try:
            conn = self._connection()
        except DatabaseUnavailable as e:
            return self._unavailable(batch, e, closing)
        store = PostgresStore(conn)
        results: Finished = []
        try:
            with conn.transaction():
                for op, done, _ in batch:
                    results.append((done, op(store), None))
                if conn.info.transaction_status == _INERROR:
                    raise StoreError("an operation's error aborted the batch")
        except Exception as e:
            if conn.closed or conn.broken:
                # Lost while committing: nothing of the batch may be acknowledged.
                self._went_down(e)
                err = DatabaseUnavailable(f"{self.path}: connection lost")
                err.__cause__ = e
                return self._unavailable(batch, err, closing)
            results = self._one_by_one(store, batch)
        dt = time.perf_counter() - t0
        self.batches += 1
        self.ops += len(batch)
        self.commit_seconds += dt
        self.last_commit_seconds = dt
        if self.on_commit is not None:
            self.on_commit(dt, len(batch))
        return results

    def _one_by_one(self, store: PostgresStore, batch: list[Entry]) -> Finished:
        """One bad operation must not cost the others their custody: each on its own."""
        results: Finished = []
        for op, done, _ in batch:
            try:
                with store.conn.transaction():
                    r = op(store)
                results.append((done, r, None))
            except Exception as e:
                results.append((done, None, e))
        return results


#: Either journal: the server and ``ops/`` use only what both have.
AnyJournal: TypeAlias = "Journal | PostgresJournal"


def _complete(results: Finished) -> None:
    for done, result, exc in results:
        if done is not None:
            done(result, exc)


def _nothing(store: PostgresStore) -> None:
    return None


#: psycopg's TransactionStatus.INERROR (a failed statement aborted the transaction).
_INERROR: Final = 3


# --------------------------------------------------------------------------
# The hot path's statements (run on the writer, inside its transaction).
# --------------------------------------------------------------------------

_MSG_COLUMNS: Final = ("id, received_at, link, key, origin, destinations, control, input_no, "
                       "status, reason, reply_to, body_start, text")
_DLV_COLUMNS: Final = ("id, msg_id, link, receiver, addressed, output_no, priority, state, "
                       "created_at, expires_at, held")
_OPEN_SQL: Final = "('queued', 'held', 'sent')"


def write_batch(store: PostgresStore, batch: Batch) -> None:
    """Everything one batch holds: the inserts by COPY, each kind of change in one
    statement over arrays (a round trip per table, not per row)."""
    conn = store.conn
    with conn.cursor() as cur:
        if batch.messages:
            with cur.copy(f"COPY messages ({_MSG_COLUMNS}) FROM STDIN") as cp:
                for m in batch.messages:
                    cp.write_row(m)
        if batch.deliveries:
            with cur.copy(f"COPY deliveries ({_DLV_COLUMNS}) FROM STDIN") as cp:
                for d in batch.deliveries:
                    cp.write_row(d)
        if batch.counters:
            names = list(batch.counters)
            cur.execute("INSERT INTO counters (name, value) SELECT * FROM "
                        "unnest(%s::text[], %s::bigint[]) ON CONFLICT (name) DO UPDATE "
                        "SET value = excluded.value",
                        (names, [batch.counters[n] for n in names]))
        if batch.sent:
            cur.execute("UPDATE deliveries d SET state = 'sent', sent_at = u.at FROM "
                        "unnest(%s::bigint[], %s::float8[]) AS u(id, at) "
                        "WHERE d.id = u.id AND d.state IN ('queued', 'held')",
                        (list(batch.sent), list(batch.sent.values())))
        if batch.done:
            cur.execute("UPDATE deliveries d SET state = u.state, done_at = u.done_at, "
                        "sent_at = COALESCE(d.sent_at, u.sent_at) FROM "
                        "unnest(%s::text[], %s::float8[], %s::float8[], %s::bigint[]) "
                        "AS u(state, done_at, sent_at, id) WHERE d.id = u.id",
                        ([r.state for r in batch.done], [r.done_at for r in batch.done],
                         [r.sent_at for r in batch.done], [r.id for r in batch.done]))
        if batch.refused:
            cur.executemany("UPDATE messages SET status = 'rejected', reason = %s WHERE id = %s",
                            batch.refused)


def load_owed(store: PostgresStore, link: str, after: int, limit: int) -> list[OwedRow]:
    """Open deliveries of ``link`` past id ``after``, oldest first, with their bodies."""
    rows = store.conn.execute(
        "SELECT d.id, d.msg_id, d.link, d.receiver, d.addressed, d.output_no, d.priority, "
        "m.key, m.origin, m.received_at, m.input_no, m.control, m.body_start, m.text, "
        "d.expires_at, d.sent_at FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        f"WHERE d.link = %s AND d.state IN {_OPEN_SQL} AND d.id > %s "
        "ORDER BY d.id LIMIT %s", (link, after, limit)).fetchall()
    return [
        OwedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                r[13][r[12]:].rstrip("\r\n"), r[14], r[15])
        for r in rows
    ]


def expire_due(store: PostgresStore, now: float, limit: int = 1000) -> list[ExpiredRow]:
    """Open deliveries whose hold ended by ``now``: marked expired and returned."""
    conn = store.conn
    row = conn.execute("SELECT value FROM meta WHERE name = 'expiry_watermark'").fetchone()
    mark = float(row[0]) if row else 0.0
    rows = [ExpiredRow(*r) for r in conn.execute(
        "SELECT d.id, d.addressed, m.id, m.link, m.key, m.origin, m.control, m.text "
        "FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        f"WHERE d.expires_at > %s AND d.expires_at <= %s AND d.state IN {_OPEN_SQL} "
        "ORDER BY d.expires_at LIMIT %s", (mark, now, limit)).fetchall()]
    if rows:
        conn.execute("UPDATE deliveries SET state = 'expired', done_at = %s "
                     "WHERE id = ANY(%s)", (now, [r.delivery_id for r in rows]))
    if len(rows) < limit:
        conn.execute("INSERT INTO meta (name, value) VALUES ('expiry_watermark', %s) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value", (repr(now),))
    return rows


def recover(store: PostgresStore) -> Recovered:
    """The highest message and delivery ids ever handed out, and the counters."""
    conn = store.conn
    mid = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
    did = conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()[0]
    counters = {str(n): int(v) for n, v in
                conn.execute("SELECT name, value FROM counters").fetchall()}
    return Recovered(max(int(mid), int(counters.get("id:msg", 0))),
                     max(int(did), int(counters.get("id:dlv", 0))), counters)
