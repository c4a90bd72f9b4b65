"""The loop's end of the socket to the journal's writer process.

:class:`WriterLink` is the transport under :class:`~nlets_switch.store.journal.Journal`
(and so under the PostgreSQL journal): frames out to the writer without
blocking the loop (buffered when the socket is full), result frames in, each
operation's callback run in submission order, and a writer that ends failing
everything still waiting, loudly. The protocol itself (frame headers, the
pickled results) is :mod:`nlets_switch.store.writer`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import select
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from nlets_switch.log import get_logger
from nlets_switch.store.writer import RESULT_HEADER, take_frames

__all__ = ["Done", "Finished", "JournalError", "WriterLink", "complete"]

Done = Callable[[Any, BaseException | None], None]
Finished = tuple[Done | None, Any, BaseException | None]

log = get_logger("journal")

#: Result frames are small (a write's result is None): 64 KiB per read is plenty.
_CHUNK: Final = 1 << 16


class JournalError(RuntimeError):
    """The journal takes no more operations: it is closed, or its writer process is gone."""


class WriterLink:
    """The socket to a writer process: what was sent, what it answered, what waits."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._fd = -1
        #: Frames not yet written to the writer (before start, or socket full).
        self._out = bytearray()
        self._want_write = False
        #: One entry per operation sent and not yet answered, in order.
        self._waiting: deque[Done | None] = deque()
        self._inbox = bytearray()
        self._broken: str | None = None
        #: Commit statistics for metrics: batches, ops, seconds spent committing
        #: (measured in the writer process).
        self.batches = 0
        self.ops = 0
        self.commit_seconds = 0.0
        self.last_commit_seconds = 0.0
        #: Called on the loop after each commit with (seconds, operations).
        self.on_commit: Callable[[float, int], None] | None = None

    def _writer_state(self, state: Any) -> None:
        """A backend's state, the third item of a result frame (the SQLite writer
        sends none): for a subclass to act on, before the frame's callbacks run."""

    def _send(self, header: bytes, payload: bytes) -> None:
        sock = self._sock
        if sock is None or self._out:
            self._out += header
            self._out += payload
            return
        size = len(header) + len(payload)
        try:
            n = sock.sendmsg((header, payload))
        except BlockingIOError:
            n = 0
        except OSError as e:
            self._out += header
            self._out += payload
            self._gone(e, deferred=True)
            return
        if n < size:
            self._out += (header + payload)[n:]
            self._watch_writable()

    def _watch_writable(self) -> None:
        if not self._want_write and self._loop is not None:
            self._loop.add_writer(self._fd, self._writable)
            self._want_write = True

    def _writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            n = sock.send(self._out)
        except BlockingIOError:
            n = 0
        except OSError as e:
            self._gone(e)
            return
        del self._out[:n]
        if self._out:
            self._watch_writable()
        elif self._want_write and self._loop is not None:
            self._loop.remove_writer(self._fd)
            self._want_write = False

    def _readable(self) -> None:
        """Results of one or more commits: one wake-up of the loop per batch."""
        sock = self._sock
        if sock is None:
            return
        ended: OSError | None = None
        eof = False
        try:
            while True:
                chunk = sock.recv(_CHUNK)
                if not chunk:
                    eof = True
                    break
                self._inbox += chunk
                if len(chunk) < _CHUNK:
                    break
        except BlockingIOError:
            pass
        except OSError as e:
            ended, eof = e, True
        for count, payload in take_frames(self._inbox, RESULT_HEADER):
            self._deliver(count, payload)
        if eof:
            self._gone(ended)

    def _deliver(self, count: int, payload: bytes) -> None:
        failed = complete(self._results(count, payload))
        if failed:
            # Once per batch; an error's text may quote data, so only its kind.
            log.warning("journal_ops_failed", failed=len(failed), errors=sorted(set(failed)))

    def _gone(self, error: OSError | None, deferred: bool = False) -> None:
        """The writer process ended (or its socket broke): fail what waits, refuse more."""
        if self._broken is not None:
            return
        status = self._proc.poll() if self._proc is not None else None
        if status is None and self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                status = self._proc.wait(0.5)
        self._broken = (f"the journal writer process ended (exit status {status}); "
                        "nothing more can be made durable until the switch restarts")
        log.error("journal_writer_ended", exit_status=status, waiting=len(self._waiting),
                  error=type(error).__name__ if error is not None else None)
        self._unwatch()
        waiting = list(self._waiting)
        self._waiting.clear()
        self._out.clear()
        failed: list[Finished] = [(done, None, JournalError(self._broken)) for done in waiting]
        if deferred and self._loop is not None:
            # Inside submit(): callbacks never run before the submitter returns.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon(complete, failed)
        else:
            complete(failed)

    def _unwatch(self) -> None:
        loop = self._loop
        if loop is None or self._fd < 0:
            return
        with contextlib.suppress(Exception):  # the loop may be closed already
            loop.remove_reader(self._fd)
        if self._want_write:
            with contextlib.suppress(Exception):
                loop.remove_writer(self._fd)
            self._want_write = False

    def _exchange(self, finish: bool, timeout: float) -> tuple[list[Finished], bool]:
        """Outside the loop (start, close): send what is buffered and read results
        until every waiting operation is answered, blocking. With ``finish``, end
        the stream too, and read until the writer closes its end. Returns what
        finished, and whether the writer's end closed."""
        sock = self._sock
        assert sock is not None
        finished: list[Finished] = []
        deadline = time.monotonic() + timeout
        shut = ended = False
        try:
            while self._waiting or (finish and not ended):
                if finish and not self._out and not shut:
                    # End of stream: the writer commits what it has, answers, exits.
                    sock.shutdown(socket.SHUT_WR)
                    shut = True
                left = deadline - time.monotonic()
                if left <= 0:
                    log.error("journal_writer_timeout", waiting=len(self._waiting))
                    break
                # poll, not select: a switch with many links may hold fds past 1024.
                poller = select.poll()
                poller.register(sock, select.POLLIN | (select.POLLOUT if self._out else 0))
                events = poller.poll(left * 1000)
                mask = events[0][1] if events else 0
                r = mask & (select.POLLIN | select.POLLHUP | select.POLLERR)
                w = mask & select.POLLOUT
                if w:
                    with contextlib.suppress(BlockingIOError):
                        del self._out[:sock.send(self._out)]
                if r:
                    with contextlib.suppress(BlockingIOError):
                        chunk = sock.recv(_CHUNK)
                        ended = not chunk
                        self._inbox += chunk
                        for count, payload in take_frames(self._inbox, RESULT_HEADER):
                            finished.extend(self._results(count, payload))
                        if ended:
                            break
        except OSError as e:
            ended = True
            log.error("journal_writer_ended", error=type(e).__name__, waiting=len(self._waiting))
        return finished, ended

    def _results(self, count: int, payload: bytes) -> list[Finished]:
        """One result frame: statistics counted, its operations paired with their results."""
        try:
            seconds, results, *state = pickle.loads(payload)
        except Exception as e:
            seconds = 0.0
            results = [(None, JournalError(f"journal results could not be read: "
                                           f"{type(e).__name__}: {e}"))] * count
            state = []
        if state:
            self._writer_state(state[0])
        self.batches += 1
        self.ops += count
        self.commit_seconds += seconds
        self.last_commit_seconds = seconds
        if self.on_commit is not None:
            self.on_commit(seconds, count)
        return [(self._waiting.popleft(), r, e) for r, e in results]

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def complete(results: list[Finished]) -> list[str]:
    """Run callbacks in order (on the loop); one that fails does not stop the rest.

    Returns the kinds of the operations' errors (usually none).
    """
    failed: list[str] = []
    for done, result, exc in results:
        if exc is not None:
            failed.append(type(exc).__name__)
        if done is not None:
            try:
                done(result, exc)
            except Exception as e:
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "journal callback failed", "exception": e})
    return failed
