"""The journal on PostgreSQL: the switch's hot path, one transaction per batch, group commit.

The same API as the SQLite :class:`~nlets_switch.store.journal.Journal`, which
it extends, so the server does not know which it has: :meth:`recover`,
:meth:`start`, :meth:`write` / :meth:`owed` / :meth:`expire`, :meth:`submit` /
:meth:`call` for the cold tables, :meth:`barrier`, :meth:`close`,
:attr:`backlog`, :attr:`path` (here the URL without its password).

The writer is the SQLite journal's writer process, framing and group commit
(store/writer.py), with a PostgreSQL backend
(:class:`~nlets_switch.store.postgres_writer.PostgresWriter`): everything
submitted while the previous transaction ran goes into the next one; its
COMMIT returns only once the database made it durable (``synchronous_commit``
on, see :func:`~nlets_switch.store.postgres.connect`), and only then are the
callbacks run on the loop, so no ``A`` leaves for a message that is not
committed. The commit's Python work (COPY rows, sealing, word tokens) runs in
that process, outside the event loop's GIL. Operations cross to it pickled,
as for SQLite; cold-table ones get a
:class:`~nlets_switch.store.postgres.PostgresStore` on the writer's connection
(the functions of ``ops/`` take a store or a connection and use
:func:`~nlets_switch.store.sqlite.as_store`, which passes a store through).
The functions below that run there (:func:`write_batch`, :func:`load_owed`,
:func:`expire_due`, :func:`number_outputs`) are module-level for that reason.

When the connection is lost, every operation of the batch fails with
:class:`DatabaseUnavailable` (the switch answers ``N``, PROTOCOL part 1: the
sender keeps custody) and the next batch connects again; while the database
stays unreachable, batches fail at once between attempts (:data:`RETRY_S`), so
senders hear ``N`` quickly and the loop is never blocked. A read-back of what
is owed to a link (an ORI signing on meanwhile) is not failed but submitted
again every :data:`RETRY_S`, so the link gets its deliveries when the database
returns, with no new traffic needed to ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TypeAlias

from nlets_switch.errors import StoreError
from nlets_switch.log import get_logger
from nlets_switch.store.journal import Journal, JournalError
from nlets_switch.store.postgres import (
    PostgresStore,
    connect,
    is_postgres_url,
    redact,
    translated_errors,
)
from nlets_switch.store.postgres_cluster import notify_wake
from nlets_switch.store.postgres_schema import migrate
from nlets_switch.store.records import (
    Batch,
    DeliveryRow,
    DoneRow,
    ExpiredRow,
    MessageRow,
    OwedRow,
    Recovered,
    RefusedRow,
)
from nlets_switch.store.textcrypt import open_or_note, seal_text, word_tokens
from nlets_switch.wire.message import MAX_NUMBER

__all__ = ["AnyJournal", "DatabaseUnavailable", "PostgresJournal", "expire_due",
           "journal_for", "load_owed", "number_outputs", "recover", "write_batch"]

Op = Callable[[Any], Any]
Done = Callable[[Any, BaseException | None], None]

#: Least seconds between two attempts to reach a database that is gone (the
#: writer's), and between two submissions of a read-back waiting for it (here).
RETRY_S: Final = 0.5
#: The writer process's last argument (what it opens): the database is in ``WRITER_ENV``.
POSTGRES_TARGET: Final = "postgresql"
#: Environment variable carrying the database to the writer process
#: (store/postgres_writer.py's ENV).
WRITER_ENV: Final = "NLETS_JOURNAL_POSTGRES"

log = get_logger("journal")


def journal_for(url: str | None, data_dir: Path, node_id: str | None = None) -> AnyJournal:
    """The journal a configuration asks for: PostgreSQL for a ``postgresql://`` URL,
    else the embedded SQLite file ``<data_dir>/journal.sqlite`` (the default).
    ``node_id``: a cluster node's name (its counters and its audit chain are its own)."""
    if url and is_postgres_url(url):
        return PostgresJournal(url, node_id)
    return Journal(Path(data_dir) / "journal.sqlite")


class DatabaseUnavailable(StoreError):
    """The database cannot be reached (connection lost or refused)."""


class PostgresJournal(Journal):
    """The journal's writer process on PostgreSQL (:mod:`~nlets_switch.store.postgres_writer`).
    Create, :meth:`start`, submit, :meth:`close`."""

    def __init__(self, url: str, node_id: str | None = None) -> None:
        super().__init__(Path(redact(url)))
        self.url = url
        #: The cluster node's name (``""``: no cluster): the operations' store appends
        #: to this node's audit chain (store/postgres.py).
        self.node_id = node_id or ""
        #: Cluster mode: the node's counters are rows of its own (``name@node``), so
        #: two nodes' commits never wait for (or deadlock on) each other's rows.
        self.scope = f"@{node_id}" if node_id else ""
        #: What logs and the status show as the journal's place (no password).
        self.path = redact(url)  # type: ignore[assignment]
        #: This process's connection, for :meth:`open` and :meth:`recover` (before start).
        self._pg: Any = None
        self._down_since: float | None = None
        #: Batches that failed because the database was unreachable.
        self.unavailable = 0
        #: Cluster mode (server/cluster.py): the ``nlets_wake`` payloads of a batch,
        #: notified in its transaction so the other nodes hear of it on commit.
        self.wake: Callable[[Batch], list[str]] | None = None

    # -- life cycle -------------------------------------------------------

    def open(self) -> Any:
        """Connect and bring the schema up to date (blocking; before start).

        Raises StoreError (one line, naming the database) when it cannot be
        reached or is at a newer schema version than this program's.
        """
        if self._pg is None:
            conn = connect(self.url, application="nlets-switch journal")
            try:
                with translated_errors(str(self.path)):
                    migrate(conn, str(self.path))
            except BaseException:
                conn.close()
                raise
            self._pg = conn
        return self._pg

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer process; callbacks will run on ``loop``."""
        try:
            super().start(loop)
        finally:
            self._close_own()

    def close(self) -> None:
        """Finish every submitted operation, stop the writer process."""
        super().close()
        self._close_own()

    def _close_own(self) -> None:
        # The writer has a connection of its own: this one is no longer needed.
        if self._pg is not None:
            self._pg.close()
            self._pg = None

    _writer_backend = "nlets_switch.store.postgres_writer:open_backend"

    def _writer_target(self, env: dict[str, str]) -> str:
        env[WRITER_ENV] = json.dumps({"url": self.url, "node": self.node_id})
        return POSTGRES_TARGET

    def _writer_state(self, state: Any) -> None:
        down, error, failed = state
        self.unavailable += int(failed)
        if down and self._down_since is None:
            self._down_since = time.monotonic()
            log.error("database_unreachable", database=self.path, error=error)
        elif not down and self._down_since is not None:
            log.warning("database_back", database=self.path,
                        after_s=round(time.monotonic() - self._down_since, 1))
            self._down_since = None

    @property
    def available(self) -> bool:
        """False while the database is unreachable (as of the last commit's answer)."""
        return self._down_since is None

    def checkpoint(self) -> None:
        """Nothing to do: PostgreSQL checkpoints by itself (the switch asks SQLite's journal)."""

    # -- submitting -------------------------------------------------------

    def submit(self, op: Op, done: Done | None = None, *, wait_out: bool = False) -> None:
        """Queue ``op`` (a function of a store; it must pickle, see
        :meth:`Journal.submit`); ``done(result, error)`` runs on the loop after the
        commit. ``wait_out``: while the database is unreachable, submit the operation
        again every :data:`RETRY_S` instead of failing it (reads only)."""
        if wait_out:
            done = functools.partial(self._waited_out, op, done)
        super().submit(op, done)

    def _waited_out(self, op: Op, done: Done | None, result: Any,
                    exc: BaseException | None) -> None:
        if isinstance(exc, DatabaseUnavailable) and not self._closing and self._loop:
            self._loop.call_later(RETRY_S, self._again, op, done)
        elif done is not None:
            done(result, exc)

    def _again(self, op: Op, done: Done | None) -> None:
        try:
            self.submit(op, done, wait_out=True)
        except JournalError as e:  # closed meanwhile
            if done is not None:
                done(None, e)

    # -- the typed hot path ------------------------------------------------

    def recover(self) -> Recovered:
        """The highest ids handed out and the counters (blocking; before start)."""
        conn = self.open()
        with translated_errors(str(self.path)):
            return recover(PostgresStore(conn), self.scope)

    def write(self, batch: Batch, done: Callable[[BaseException | None], None]) -> None:
        """Make ``batch`` durable in one commit; ``done(error)`` runs on the loop after
        it, with ``batch.numbers`` set in cluster mode."""
        wake = self.wake(batch) if self.wake is not None else None
        op = functools.partial(write_packed, packed=PackedBatch.of(batch), scope=self.scope,
                               payloads=wake or None)

        def finished(numbers: dict[int, int] | None, exc: BaseException | None) -> None:
            if numbers:
                batch.numbers = numbers  # given by the writer, in the transaction
            done(exc)

        self._typed(op, finished)

    def owed(self, link: str, after: int, limit: int,
             done: Callable[[list[OwedRow] | None, BaseException | None], None]) -> None:
        """Deliveries still owed to ``link`` with id above ``after``, in id order;
        waits out an outage."""
        try:
            self.submit(functools.partial(load_owed, link=link, after=after, limit=limit),
                        done, wait_out=True)
        except JournalError as e:
            if self._loop is None:
                raise
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon(done, None, e)

    def expire(self, now: float, limit: int,
               done: Callable[[list[ExpiredRow] | None, BaseException | None], None]) -> None:
        """Mark open deliveries whose hold ended by ``now`` expired; return them."""
        self._typed(functools.partial(expire_due, now=now, limit=limit, scope=self.scope),
                    done)


#: Either journal: the server and ``ops/`` use only what both have.
AnyJournal: TypeAlias = "Journal | PostgresJournal"


def _nothing(store: PostgresStore) -> None:
    return None


# --------------------------------------------------------------------------
# The hot path's statements (run on the writer, inside its transaction).
# --------------------------------------------------------------------------

_MSG_COLUMNS: Final = ("id, received_at, link, key, origin, destinations, control, input_no, "
                       "status, reason, reply_to, body_start, text, words")
_DLV_COLUMNS: Final = ("id, msg_id, link, receiver, addressed, output_no, priority, state, "
                       "created_at, expires_at, held")
_OPEN_SQL: Final = "('queued', 'held', 'sent')"


def write_batch(store: PostgresStore, batch: Batch, scope: str = "") -> dict[int, int] | None:
    """Everything one batch holds: the inserts by COPY, each kind of change in one
    statement over arrays (a round trip per table, not per row). ``scope``: a
    cluster node's suffix of its counters' names; its deliveries are numbered here,
    and their numbers returned (the switch's copy of ``batch`` has none)."""
    conn = store.conn
    with conn.cursor() as cur:
        if batch.messages:
            with cur.copy(f"COPY messages ({_MSG_COLUMNS}) FROM STDIN") as cp:
                for m in batch.messages:
                    # Sealed here, in the writer process, as SQLite's writer does
                    # (store/textcrypt.py): the database never holds the text in clear,
                    # and its words only as blind tokens (a tsvector's input form:
                    # lexemes separated by spaces).
                    cp.write_row((*m[:12], seal_text(m.text, m.id), word_tokens(m.text)))
        if batch.deliveries:
            rows = batch.deliveries
            if scope:
                numbers = batch.numbers  # number_outputs gave them, in this transaction
                rows = [d._replace(output_no=numbers[d.id]) for d in rows]
            with cur.copy(f"COPY deliveries ({_DLV_COLUMNS}) FROM STDIN") as cp:
                for d in rows:
                    cp.write_row(d)
        if batch.counters:
            names = list(batch.counters)
            cur.execute("INSERT INTO counters (name, value) SELECT * FROM "
                        "unnest(%s::text[], %s::bigint[]) ON CONFLICT (name) DO UPDATE "
                        "SET value = excluded.value",
                        ([n + scope for n in names] if scope else names,
                         [batch.counters[n] for n in names]))
        # The updates by id are planned afresh each time (prepare=False), never from
        # psycopg's prepared statement: a generic plan made while the table was small
        # (a new database, a node's first seconds) joins by a sequential scan of all of
        # deliveries, and keeps doing so, a batch's cost growing with the table, until
        # autovacuum's ANALYZE (a minute or more later) invalidates it. Planning costs
        # tens of microseconds; the scan cost milliseconds per batch at 20,000 rows.
        if batch.sent:
            cur.execute("UPDATE deliveries d SET state = 'sent', sent_at = u.at FROM "
                        "unnest(%s::bigint[], %s::float8[]) AS u(id, at) "
                        "WHERE d.id = u.id AND d.state IN ('queued', 'held')",
                        (list(batch.sent), list(batch.sent.values())), prepare=False)
        if batch.done:
            cur.execute("UPDATE deliveries d SET state = u.state, done_at = u.done_at, "
                        "sent_at = COALESCE(d.sent_at, u.sent_at) FROM "
                        "unnest(%s::text[], %s::float8[], %s::float8[], %s::bigint[]) "
                        "AS u(state, done_at, sent_at, id) WHERE d.id = u.id",
                        ([r.state for r in batch.done], [r.done_at for r in batch.done],
                         [r.sent_at for r in batch.done], [r.id for r in batch.done]),
                        prepare=False)
        if batch.refused:
            cur.executemany("UPDATE messages SET status = 'rejected', reason = %s WHERE id = %s",
                            batch.refused)
    return batch.numbers if scope else None


def number_outputs(store: PostgresStore, ops: list[Op]) -> None:
    """Cluster mode, first in a transaction: the output numbers of every delivery its
    batches make, from their receivers' shared counters (PROTOCOL part 3: one sequence
    per receiving link, whatever node made the delivery), into each ``batch.numbers``.

    One statement locks the counter rows of the whole transaction in name order, so
    two nodes' transactions wait for each other at most, never deadlock; the numbers
    are this transaction's, so one that fails hands out none.
    """
    batches = [b for b in (_batch_of(op) for op in ops) if b is not None and b.deliveries]
    if not batches:
        return
    counts = Counter(d.link for b in batches for d in b.deliveries)
    links = sorted(counts)
    top = dict(store.conn.execute(
        "INSERT INTO counters (name, value) SELECT 'out:' || l, n FROM "
        "unnest(%s::text[], %s::bigint[]) AS u(l, n) ORDER BY l ON CONFLICT (name) "
        "DO UPDATE SET value = counters.value + excluded.value RETURNING name, value",
        (links, [counts[x] for x in links])).fetchall())
    nxt = {x: int(top[f"out:{x}"]) - counts[x] for x in links}
    for b in batches:
        numbers: dict[int, int] = {}
        for d in b.deliveries:
            nxt[d.link] += 1
            numbers[d.id] = (nxt[d.link] - 1) % MAX_NUMBER + 1
        b.numbers = numbers


def _batch_of(op: Op) -> Batch | None:
    """The batch a write operation carries (None for any other operation)."""
    if isinstance(op, functools.partial) and op.func is write_packed:
        p = op.keywords.get("packed")
        return p.batch if isinstance(p, PackedBatch) else None
    if isinstance(op, functools.partial) and op.func is write_batch:
        b = op.keywords.get("batch")
        return b if isinstance(b, Batch) else None
    return None


class PackedBatch:
    """A batch on its way to the writer: its rows as plain tuples, which pickle several
    times faster than named tuples on the loop (as SQLite's journal sends them); the
    writer makes the :class:`Batch` again, once (:attr:`batch`)."""

    __slots__ = ("_batch", "rows")

    def __init__(self, rows: tuple[Any, ...]) -> None:
        self.rows = rows
        self._batch: Batch | None = None

    @classmethod
    def of(cls, b: Batch) -> PackedBatch:
        """``b``'s rows, packed."""
        return cls((list(map(tuple, b.messages)), list(map(tuple, b.deliveries)), b.counters,
                    b.sent, list(map(tuple, b.done)), list(map(tuple, b.refused))))

    def __reduce__(self) -> tuple[Any, ...]:
        return (PackedBatch, (self.rows,))

    @property
    def batch(self) -> Batch:
        """The batch again (made once: :func:`number_outputs` sets its numbers)."""
        if self._batch is None:
            m, d, counters, sent, done, refused = self.rows
            self._batch = Batch(messages=[MessageRow(*r) for r in m],
                                deliveries=[DeliveryRow(*r) for r in d], counters=counters,
                                sent=sent, done=[DoneRow(*r) for r in done],
                                refused=[RefusedRow(*r) for r in refused])
        return self._batch


def write_packed(store: PostgresStore, packed: PackedBatch, scope: str,
                 payloads: list[str] | None) -> dict[int, int] | None:
    """:func:`write_batch` of a packed batch, and the cluster's wake-ups (``payloads``)
    notified in the same transaction."""
    numbers = write_batch(store, packed.batch, scope)
    if payloads:
        notify_wake(store.conn, payloads)
    return numbers


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
                open_or_note(r[13], r[1])[r[12]:].rstrip("\r\n"), r[14], r[15])
        for r in rows
    ]


def expire_due(store: PostgresStore, now: float, limit: int = 1000,
               scope: str = "") -> list[ExpiredRow]:
    """Open deliveries whose hold ended by ``now``: marked expired and returned.

    ``scope``: a cluster node's, whose watermark is its own row.
    """
    conn = store.conn
    mark_name = "expiry_watermark" + scope
    row = conn.execute("SELECT value FROM meta WHERE name = %s", (mark_name,)).fetchone()
    mark = float(row[0]) if row else 0.0
    rows = [ExpiredRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], open_or_note(r[7], r[2]))
            for r in conn.execute(
        "SELECT d.id, d.addressed, m.id, m.link, m.key, m.origin, m.control, m.text "
        "FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        f"WHERE d.expires_at > %s AND d.expires_at <= %s AND d.state IN {_OPEN_SQL} "
        # Cluster mode: every node sweeps; a row another node's sweep has is skipped,
        # so each expiry (and its SM .04) happens once.
        "ORDER BY d.expires_at LIMIT %s FOR UPDATE OF d SKIP LOCKED",
        (mark, now, limit)).fetchall()]
    if rows:
        conn.execute("UPDATE deliveries SET state = 'expired', done_at = %s "
                     "WHERE id = ANY(%s)", (now, [r.delivery_id for r in rows]))
    if len(rows) < limit:
        conn.execute("INSERT INTO meta (name, value) VALUES (%s, %s) "
                     "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                     (mark_name, repr(now)))
    return rows


def recover(store: PostgresStore, scope: str = "") -> Recovered:
    """The highest message and delivery ids ever handed out, and the counters.

    ``scope`` (a cluster node's): each counter is the highest of every node's
    row of it, so a node goes on above what any node handed out.
    """
    conn = store.conn
    mid = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
    did = conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()[0]
    counters: dict[str, int] = {}
    for n, v in conn.execute("SELECT name, value FROM counters").fetchall():
        name = str(n).split("@", 1)[0] if scope else str(n)
        counters[name] = max(int(v), counters.get(name, int(v)))
    return Recovered(max(int(mid), int(counters.get("id:msg", 0))),
                     max(int(did), int(counters.get("id:dlv", 0))), counters)
