"""The journal's writer process: one SQLite connection, group commit.

:class:`nlets_switch.store.journal.Journal` starts this module as its own
process (``python -m nlets_switch.store.writer --fd N PATH``), so SQLite's
work and its fsync run on another core than the event loop, outside its GIL.

The two talk over one Unix stream socket in length-prefixed frames:

* switch to writer: one frame per operation, ``<size u32>`` and the pickled
  operation (a module-level function of a :class:`sqlite3.Connection`, or a
  :func:`functools.partial` of one);
* writer to switch: one frame per transaction, ``<size u32><count u32>`` and
  the pickled ``(seconds, [(result, error), ...])`` of its ``count``
  operations, in the order they were sent.

The same process and protocol serve the PostgreSQL journal, with another
backend (``main(backend="nlets_switch.store.postgres_writer:open_backend")``):
its result frames carry a third item, the database's state, for the
switch to log and show.

Group commit: the writer waits for one operation, then takes every one that
has arrived meanwhile, runs them all in one transaction and commits it (one
fsync, ``synchronous=FULL``). If that transaction fails, it is rolled back
and each operation is run again in a transaction of its own, so only the
culprit fails. The writer ends when the switch closes its end of the socket
(after finishing what it was sent), or when the switch's process dies.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import pickle
import signal
import socket
import sqlite3
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from nlets_switch.store import tables

__all__ = ["SYS_PATH_ENV", "Backend", "OpFailed", "Runner", "dump_results", "frame", "main",
           "run_batch", "serve", "take_frames"]

Op = Callable[[sqlite3.Connection], Any]
Result = tuple[Any, BaseException | None]
#: A backend's transaction: the pickled operations in, their results and the
#: backend's state (or None) out.
Runner = Callable[[list[bytes]], tuple[list[Result], Any]]
#: Opens another backend from the writer's last argument: its runner and its close.
Backend = Callable[[str], tuple[Runner, Callable[[], None]]]

#: Frame header from the switch: payload size.
OP_HEADER: Final = struct.Struct("<I")
#: Frame header from the writer: payload size, operations it answers.
RESULT_HEADER: Final = struct.Struct("<II")
#: Pickle protocol 5 (out-of-band buffers unused; the fastest in-band one).
PROTOCOL: Final = 5
_CHUNK: Final = 1 << 20
#: Environment variable carrying the switch's ``sys.path`` to its writer, so
#: that the writer imports the modules the operations name as the switch does.
SYS_PATH_ENV: Final = "NLETS_JOURNAL_SYS_PATH"


class OpFailed(RuntimeError):
    """An operation could not be loaded, or its error or result not sent back."""


def frame(payload: bytes) -> bytes:
    """One operation frame."""
    return OP_HEADER.pack(len(payload)) + payload


def take_frames(buf: bytearray, header: struct.Struct = OP_HEADER) -> list[tuple[int, bytes]]:
    """Complete frames at the start of ``buf`` (removed from it), as (count, payload).

    ``count`` is the header's second field for result frames, else 1.
    """
    out: list[tuple[int, bytes]] = []
    pos, end, hsize = 0, len(buf), header.size
    while end - pos >= hsize:
        fields = header.unpack_from(buf, pos)
        stop = pos + hsize + fields[0]
        if stop > end:
            break
        out.append((fields[1] if len(fields) > 1 else 1, bytes(buf[pos + hsize:stop])))
        pos = stop
    if pos:
        del buf[:pos]
    return out


def _fail(conn: sqlite3.Connection, error: BaseException) -> None:
    raise error


def _load(raw: bytes) -> Op:
    try:
        op: Op = pickle.loads(raw)
    except Exception as e:
        # Failing inside the transaction makes this operation alone fail.
        return functools.partial(_fail, error=OpFailed(
            f"the journal writer could not load an operation: {type(e).__name__}: {e}"))
    return op


def run_batch(conn: sqlite3.Connection, raw_ops: list[bytes]) -> list[Result]:
    """Run the pickled operations in one transaction; results in their order."""
    ops = [_load(raw) for raw in raw_ops]
    results: list[Result] = []
    try:
        conn.execute("BEGIN IMMEDIATE")
        for op in ops:
            results.append((op(conn), None))
        conn.execute("COMMIT")
    except Exception:
        # One bad operation must not cost the others their custody: roll
        # back and run each on its own, so only the culprit fails.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        results = []
        for op in ops:
            try:
                conn.execute("BEGIN IMMEDIATE")
                r = op(conn)
                conn.execute("COMMIT")
                results.append((r, None))
            except Exception as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                results.append((None, _sendable(e)))
    return results


def _sendable(e: BaseException) -> BaseException:
    """``e`` with where it was raised as a note, or a stand-in if it cannot cross."""
    # Code locations only: a traceback's text holds no values.
    e.add_note("raised in the journal writer process:\n"
               + "".join(traceback.format_tb(e.__traceback__)).rstrip())
    try:
        pickle.loads(pickle.dumps(e, PROTOCOL))
    except Exception:
        return OpFailed(f"{type(e).__name__}: {e}")
    return e


def dump_results(seconds: float, results: list[Result], state: Any = None) -> bytes:
    """The result frame of one transaction (header included); ``state``, a
    backend's (None: none), goes as the frame's third item."""
    extra: tuple[Any, ...] = () if state is None else (state,)
    try:
        payload = pickle.dumps((seconds, results, *extra), PROTOCOL)
    except Exception:
        safe: list[Result] = []
        for r, e in results:
            try:
                pickle.dumps(r, PROTOCOL)
                safe.append((r, e))
            except Exception as x:
                safe.append((None, OpFailed(
                    f"the result of a journal operation cannot be sent back: "
                    f"{type(x).__name__}: {x}")))
        payload = pickle.dumps((seconds, safe, *extra), PROTOCOL)
    return RESULT_HEADER.pack(len(payload), len(results)) + payload


def serve(sock: socket.socket, conn: sqlite3.Connection | None,
          run: Runner | None = None) -> None:
    """Commit what arrives on ``sock`` in groups until it ends (blocking): each
    group by :func:`run_batch` on ``conn``, or by ``run`` (another backend)."""
    inbox = bytearray()
    # One buffer for every read: a fresh 1 MiB bytes per recv() would be an
    # mmap and munmap each time.
    chunk = memoryview(bytearray(_CHUNK))
    eof = False
    while True:
        ops: list[bytes] = []
        while not ops:  # wait for the first operation
            if eof:
                return
            n = sock.recv_into(chunk)
            eof = n == 0
            inbox += chunk[:n]
            ops.extend(p for _n, p in take_frames(inbox))
        while not eof:  # and take everything that came meanwhile, without waiting
            try:
                n = sock.recv_into(chunk, 0, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            eof = n == 0
            inbox += chunk[:n]
            ops.extend(p for _n, p in take_frames(inbox))
        t0 = time.perf_counter()
        state = None
        if run is not None:
            results, state = run(ops)
        else:
            assert conn is not None
            results = run_batch(conn, ops)
        out = dump_results(time.perf_counter() - t0, results, state)
        try:
            sock.sendall(out)
        except OSError:
            return  # the switch is gone; what was committed stays committed


def main(argv: list[str] | None = None, backend: str | None = None) -> int:
    """The writer process: ``--fd N PATH``, its end of the socket and the journal
    (SQLite's file, or what ``backend``, a :data:`Backend` named ``module:function``,
    opens from ``PATH``; imported once ``sys.path`` is the switch's)."""
    # No argparse: the writer's start-up is on the switch's start-up path.
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3 or args[0] != "--fd" or not args[1].isdigit():
        print("usage: python -m nlets_switch.store.writer --fd N PATH", file=sys.stderr)
        return 2
    fd, path = int(args[1]), Path(args[2])
    given = os.environ.pop(SYS_PATH_ENV, None)
    if given:
        first = [p for p in json.loads(given) if isinstance(p, str)]
        sys.path[:] = first + [p for p in sys.path if p not in first]
    # A Ctrl-C or SIGTERM to the process group is for the switch: it stops
    # gracefully, and the writer must stay to commit what it is still sent.
    # The writer ends when its socket does (SIGKILL still ends it at once).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=fd)
    sock.setblocking(True)
    # The keyring the switch named (store/textcrypt.py): text is sealed here.
    from nlets_switch.store import textcrypt

    textcrypt.configure_from_env()
    conn: sqlite3.Connection | None = None
    run: Runner | None = None
    close: Callable[[], None]
    if backend is not None:
        module, _, name = backend.partition(":")
        opener: Backend = getattr(importlib.import_module(module), name)
        run, close = opener(args[2])
    else:
        conn = tables.connect(path)
        close = conn.close
    try:
        serve(sock, conn, run)
    except ConnectionError:
        pass  # the switch died
    finally:
        close()
        sock.close()  # the switch reads the end of the stream: the writer is done
    return 0


if __name__ == "__main__":
    # Run the module under its own name, so that what it pickles (OpFailed)
    # names nlets_switch.store.writer, not __main__.
    from nlets_switch.store.writer import main as _main

    _main()
    # Nothing is left to clean up: skip the interpreter's tear-down.
    os._exit(0)
