"""The journal: SQLite in WAL mode, written by its own process, group commit.

Custody (PROTOCOL part 1) means an ``M`` is answered ``A`` only once it is
durable. Doing an fsync per message would cap the switch at the disk's
fsync rate, so one writer commits *batches*: everything submitted while the
previous commit was running goes into the next transaction, one fsync
(``synchronous=FULL``) covers all of it, and the loop is woken once per
batch to release every acknowledgement in it.

The writer is a process of its own (:mod:`nlets_switch.store.writer`), so
SQLite's work runs on another core than the event loop and never holds its
GIL. Operations are plain functions of a :class:`sqlite3.Connection`,
module-level or :func:`functools.partial` of one, because they cross to the
writer pickled; they run in submission order, and their results reach
callbacks on the event loop in the same order. Reads go through the same
queue, so a read sees every write submitted before it. See docs/journal.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import pickle
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from nlets_switch.log import get_logger
from nlets_switch.store.base import submit_and_wait
from nlets_switch.store.records import (
    OPEN_STATES,
    Batch,
    ExpiredRow,
    OwedRow,
    Recovered,
)
from nlets_switch.store.tables import (
    SCHEMA_VERSION,
    batch_args,
    connect,
    create,
    expire_due,
    load_owed,
    nothing,
    recover,
    write_batch,
    write_rows,
)
from nlets_switch.store.writer import OP_HEADER, PROTOCOL, SYS_PATH_ENV
from nlets_switch.store.writerlink import Done, Finished, JournalError, WriterLink, complete

__all__ = [
    "OPEN_STATES",
    "SCHEMA_VERSION",
    "Journal",
    "JournalError",
    "UnpicklableOp",
    "connect",
    "expire_due",
    "load_owed",
    "nothing",
    "recover",
    "write_batch",
    "write_rows",
]

Op = Callable[[sqlite3.Connection], Any]

log = get_logger("journal")

#: Socket buffers asked for (the kernel may grant less): a large batch goes in
#: one send, and the loop is seldom told to wait for room.
_SOCK_BUFFER: Final = 1 << 20
#: Where this nlets_switch package is imported from.
_PACKAGE_ROOT: Final = Path(__file__).resolve().parent.parent.parent
#: The writer's command (``python -S -c``); ``{root}`` is :data:`_PACKAGE_ROOT`.
#: Once done, it skips the interpreter's tear-down: nothing is left to clean up.
_BOOT: Final = ("import os, sys; sys.path.insert(0, {root!r}); "
                "from nlets_switch.store.writer import main; main(backend={backend!r}); "
                "os._exit(0)")
#: Longest :meth:`Journal.close` waits for the writer to finish what it was sent.
_CLOSE_TIMEOUT: Final = 60.0
#: Longest :meth:`Journal.start` waits for the writer to come up.
_START_TIMEOUT: Final = 60.0


class UnpicklableOp(TypeError):
    """An operation that cannot be sent to the writer process (it must pickle)."""


def _op_name(op: object) -> str:
    f = op.func if isinstance(op, functools.partial) else op
    return f"{getattr(f, '__module__', '?')}.{getattr(f, '__qualname__', type(f).__name__)}"


class Journal(WriterLink):
    """The writer process and the queue to it. Create, :meth:`start`, submit, :meth:`close`."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._closing = False
        #: Seconds the loop spent pickling operations for the writer (wall time:
        #: thread_time() would be a system call per submit here, ~2.6 us; on a busy
        #: machine this over-counts by the time the loop was preempted).
        self.pickle_seconds = 0.0

    # -- life cycle -------------------------------------------------------

    def open(self) -> sqlite3.Connection:
        """Open the database and create the tables (blocking; before start).

        The connection stays this process's, for :meth:`recover` and tools;
        the writer process opens its own.
        """
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = connect(self.path)
            create(conn)
            self._conn = conn
        return self._conn

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the writer process; callbacks will run on ``loop``.

        Blocks until the writer has opened the journal and committed what was
        submitted before: a writer that cannot start fails here, and the first
        message is not the one to wait for the process to come up.
        """
        if self._proc is not None:
            raise JournalError("journal already started")
        self.open()
        self._loop = loop
        ours, theirs = socket.socketpair()
        for s in (ours, theirs):
            for opt in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, opt, _SOCK_BUFFER)
        env = dict(os.environ)
        # The writer imports what the operations name (the switch's modules, a
        # test's): it gets this process's sys.path. It starts without `site`
        # (-S), which saves most of an interpreter's start-up; the package's
        # own root comes first so that it imports this very nlets_switch.
        env[SYS_PATH_ENV] = json.dumps([p or os.getcwd() for p in sys.path])
        target = self._writer_target(env)
        try:
            # fork+exec (vfork): nothing of this process's threads or loop is
            # carried into the writer.
            self._proc = subprocess.Popen(
                [sys.executable, "-S", "-c",
                 _BOOT.format(root=str(_PACKAGE_ROOT), backend=self._writer_backend), "--fd",
                 str(theirs.fileno()), target],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, env=env)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self.submit(nothing)  # still buffered: the socket is not the journal's yet
        self._sock, self._fd = ours, ours.fileno()
        finished, ended = self._exchange(finish=False, timeout=_START_TIMEOUT)
        if ended:
            self._closing = True
            self._reap()
            ours.close()
            self._sock = None
            raise JournalError(f"the journal writer process did not start (exit status "
                               f"{self._proc.returncode}); see its error above")
        loop.add_reader(self._fd, self._readable)
        if finished:
            loop.call_soon(complete, finished)

    #: The writer process's backend other than SQLite's (``module:function``, see
    #: store/writer.py's main), or None.
    _writer_backend: str | None = None

    def _writer_target(self, env: dict[str, str]) -> str:
        """The writer's last argument, what it opens (this journal's file); a
        subclass for another backend may add to the writer's environment ``env``."""
        return str(self.path)

    @property
    def pid(self) -> int | None:
        """The writer process's id (None before start)."""
        return self._proc.pid if self._proc is not None else None

    def close(self) -> None:
        """Finish every submitted operation, stop the writer process, close the database.

        Blocking. Callbacks of what finished here run on the loop afterwards,
        if it still runs.
        """
        if self._closing:
            return
        self._closing = True
        finished: list[Finished] = []
        if self._proc is not None:
            self._unwatch()
            if self._broken is None:
                finished, _ended = self._exchange(finish=True, timeout=_CLOSE_TIMEOUT)
            while self._waiting:
                finished.append((self._waiting.popleft(), None, JournalError(
                    "the journal closed before this operation was committed")))
            self._reap()
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._proc is not None:
            log.info("journal_closed", commits=self.batches, operations=self.ops,
                     commit_seconds=round(self.commit_seconds, 3),
                     pickle_seconds=round(self.pickle_seconds, 3))
        if finished and self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                self._loop.call_soon(complete, finished)

    # -- submitting -------------------------------------------------------

    def submit(self, op: Op, done: Done | None = None) -> None:
        """Queue ``op``; ``done(result, error)`` runs on the loop after the commit.

        Raises :class:`UnpicklableOp` if ``op`` cannot be sent to the writer,
        and :class:`JournalError` once the journal is closed or its writer gone.
        """
        if self._broken is not None:
            raise JournalError(self._broken)
        if self._closing:
            raise JournalError("journal is closed")
        t0 = time.perf_counter()
        try:
            payload = pickle.dumps(op, PROTOCOL)
        except Exception as e:
            raise UnpicklableOp(
                f"journal operation {_op_name(op)} cannot be sent to the writer process "
                f"({type(e).__name__}: {e}); use a module-level function, or a "
                "functools.partial of one, with arguments that pickle") from e
        self.pickle_seconds += time.perf_counter() - t0
        self._waiting.append(done)
        self._send(OP_HEADER.pack(len(payload)), payload)

    async def call(self, op: Op) -> Any:
        """Submit ``op`` and wait for its committed result."""
        assert self._loop is not None
        return await submit_and_wait(self._loop, self.submit, op)

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
        await self.call(nothing)

    @property
    def backlog(self) -> int:
        """Operations submitted and not yet answered by the writer."""
        return len(self._waiting)

    # -- the typed hot path (what the switch asks of any store) -------------

    def recover(self) -> Recovered:
        """The highest ids handed out and the counters (blocking; before start)."""
        return recover(self.open())

    def write(self, batch: Batch, done: Callable[[BaseException | None], None]) -> None:
        """Make ``batch`` durable in one commit; ``done(error)`` runs on the loop after it.

        If the journal cannot take it (closed, writer gone), ``done`` gets
        that error on the loop's next turn: every sender then gets an answer.
        """
        # Rows go as plain tuples: several times cheaper to pickle on the loop.
        self._typed(functools.partial(write_rows, **batch_args(batch)),
                    lambda _result, exc: done(exc))

    def owed(self, link: str, after: int, limit: int,
             done: Callable[[list[OwedRow] | None, BaseException | None], None]) -> None:
        """Deliveries still owed to ``link`` with id above ``after``, in id order.

        Runs after every write submitted before it, so it never returns a
        delivery whose acknowledgement was already handed over.
        """
        self._typed(functools.partial(load_owed, link=link, after=after, limit=limit), done)

    def expire(self, now: float, limit: int,
               done: Callable[[list[ExpiredRow] | None, BaseException | None], None]) -> None:
        """Mark open deliveries whose hold ended by ``now`` expired; return them."""
        self._typed(functools.partial(expire_due, now=now, limit=limit), done)

    def _typed(self, op: Op, done: Done) -> None:
        try:
            self.submit(op, done)
        except JournalError as e:
            if self._loop is None:
                raise
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon(done, None, e)
