"""The journal's writer process: order, read-after-write, failures, kill -9, close.

Operations cross to the writer pickled, so the ones used here are
module-level functions of this module (the writer imports it as the switch
does).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from nlets_switch.store.journal import Journal, JournalError, UnpicklableOp, connect
from nlets_switch.store.records import Batch, DeliveryRow, DoneRow, MessageRow
from nlets_switch.store.writer import OpFailed

# -- operations (run in the writer process) ------------------------------------------


def make_table(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE IF NOT EXISTS t (n INTEGER PRIMARY KEY, v TEXT)")


def put(conn: sqlite3.Connection, n: int, v: str = "") -> int:
    conn.execute("INSERT INTO t (n, v) VALUES (?, ?)", (n, v))
    return n


def count(conn: sqlite3.Connection) -> int:
    return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])


def boom(conn: sqlite3.Connection) -> None:
    conn.execute("INSERT INTO t (n, v) VALUES (-1, 'from the failing op')")
    raise ValueError("this operation fails")


def writer_pid(conn: sqlite3.Connection) -> int:
    return os.getpid()


def slow(conn: sqlite3.Connection, seconds: float) -> None:
    time.sleep(seconds)


class _Odd(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickles, but does not unpickle
        super().__init__(f"{a}/{b}")


def odd_error(conn: sqlite3.Connection) -> None:
    raise _Odd(1, 2)


def unsendable_result(conn: sqlite3.Connection) -> Any:
    return lambda: None


# -- helpers ---------------------------------------------------------------------------


async def started(tmp_path: Path) -> Journal:
    j = Journal(tmp_path / "j.sqlite")
    j.start(asyncio.get_running_loop())
    await j.call(make_table)
    return j


def rows(path: Path) -> list[tuple[int, str]]:
    with contextlib.closing(connect(path, readonly=True)) as db:
        return [(int(n), str(v)) for n, v in db.execute("SELECT n, v FROM t ORDER BY n")]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has stopped running all the same.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    return True


# -- tests -----------------------------------------------------------------------------


async def test_writer_is_another_process(tmp_path: Path) -> None:
    j = await started(tmp_path)
    try:
        pid = await j.call(writer_pid)
        assert pid != os.getpid()
        assert pid == j.pid
    finally:
        j.close()


async def test_results_come_back_in_submission_order_grouped_in_few_commits(
        tmp_path: Path) -> None:
    j = await started(tmp_path)
    seen: list[int] = []
    try:
        batches0 = j.batches
        for i in range(500):
            j.submit(functools.partial(put, n=i), lambda r, e: seen.append(r))
        await j.barrier()
        assert seen == list(range(500))
        # Group commit: 501 operations (the barrier too) in far fewer transactions.
        assert j.ops >= 501
        assert j.batches - batches0 < 100
        assert j.backlog == 0
    finally:
        j.close()
    assert [n for n, _ in rows(tmp_path / "j.sqlite")] == list(range(500))


async def test_a_read_sees_every_write_submitted_before_it(tmp_path: Path) -> None:
    j = await started(tmp_path)
    try:
        counts: list[int] = []
        for i in range(50):
            j.submit(functools.partial(put, n=i))
            j.submit(count, lambda r, e: counts.append(r))
        await j.barrier()
        assert counts == list(range(1, 51))
    finally:
        j.close()


async def test_typed_write_then_owed_reads_it_back(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    j = Journal(tmp_path / "j.sqlite")
    j.start(loop)
    try:
        text = "DQ.AZ0000000.TX.*1.TXT\nOLN/D11111111"
        b = Batch(messages=[MessageRow(1, 100.0, "AZ0000000", "DQ", "AZ0000000", "TX", "1", 1,
                                       "accepted", None, None, 23, text)],
                  deliveries=[DeliveryRow(1, 1, "TX0000000", "TX0000000", "TX", 1, 1, "queued",
                                          100.0, 4000.0, 0),
                              DeliveryRow(2, 1, "TX0000000", "TX0000000", "TX", 2, 1, "queued",
                                          100.0, 4000.0, 0)],
                  counters={"id:msg": 1, "id:dlv": 2})
        wrote: asyncio.Future[BaseException | None] = loop.create_future()
        owed: asyncio.Future[Any] = loop.create_future()
        j.write(b, wrote.set_result)
        j.write(Batch(done=[DoneRow("acked", 101.0, 100.5, 1)]), lambda e: None)
        j.owed("TX0000000", 0, 10, lambda r, e: owed.set_result((r, e)))
        assert await wrote is None
        got, err = await owed
        assert err is None
        # Delivery 1 was acknowledged by the write submitted before the read.
        assert [(r.id, r.key, r.body) for r in got] == [(2, "DQ", "OLN/D11111111")]
        assert j.recover().counters["id:dlv"] == 2
    finally:
        j.close()


async def test_an_operation_that_raises_fails_alone(tmp_path: Path) -> None:
    j = await started(tmp_path)
    got: list[tuple[Any, BaseException | None]] = []
    try:
        # Same loop turn: one transaction, rolled back and redone op by op.
        j.submit(functools.partial(put, n=1), lambda r, e: got.append((r, e)))
        j.submit(boom, lambda r, e: got.append((r, e)))
        j.submit(functools.partial(put, n=2), lambda r, e: got.append((r, e)))
        j.submit(functools.partial(put, n=1), lambda r, e: got.append((r, e)))  # duplicate key
        await j.barrier()
    finally:
        j.close()
    assert got[0] == (1, None) and got[2] == (2, None)
    assert isinstance(got[1][1], ValueError) and "this operation fails" in str(got[1][1])
    assert isinstance(got[3][1], sqlite3.IntegrityError)
    # The failed operations left nothing behind; the others are committed.
    assert rows(tmp_path / "j.sqlite") == [(1, ""), (2, "")]


async def test_errors_and_results_that_cannot_cross_back_fail_their_op_only(
        tmp_path: Path) -> None:
    j = await started(tmp_path)
    try:
        with pytest.raises(OpFailed, match="_Odd"):
            await j.call(odd_error)
        with pytest.raises(OpFailed, match="cannot be sent back"):
            await j.call(unsendable_result)
        assert await j.call(functools.partial(put, n=7)) == 7
    finally:
        j.close()


async def test_an_operation_that_does_not_pickle_is_refused_at_submit(tmp_path: Path) -> None:
    j = await started(tmp_path)
    try:
        with pytest.raises(UnpicklableOp, match="cannot be sent to the writer process"):
            j.submit(lambda conn: None)
        with pytest.raises(UnpicklableOp, match=r"test_journal_process\.put"):
            j.submit(functools.partial(put, n=1, v=threading.Lock()))  # type: ignore[arg-type]
        assert j.backlog == 0
        assert await j.call(functools.partial(put, n=1)) == 1  # nothing else is affected
    finally:
        j.close()


async def test_kill_9_of_the_writer_gives_errors_not_a_hang(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    j = await started(tmp_path)
    try:
        pid = j.pid
        assert pid is not None
        j.submit(functools.partial(slow, seconds=0.3))
        waiting = [asyncio.ensure_future(j.call(functools.partial(put, n=i))) for i in range(20)]
        await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
        assert all(isinstance(r, JournalError) for r in results), results
        assert "writer process ended" in str(results[0])
        # Later submits fail at once, with the same clear error.
        with pytest.raises(JournalError, match="writer process ended"):
            j.submit(count)
        with pytest.raises(JournalError):
            await asyncio.wait_for(j.barrier(), 5)
        # A typed write gets its error through its callback: its senders get an answer.
        wrote: asyncio.Future[BaseException | None] = loop.create_future()
        j.write(Batch(counters={"x": 1}), wrote.set_result)
        assert isinstance(await asyncio.wait_for(wrote, 5), JournalError)
    finally:
        j.close()  # does not hang either


async def test_close_finishes_what_was_submitted(tmp_path: Path) -> None:
    j = await started(tmp_path)
    done: list[int] = []
    pid = j.pid
    assert pid is not None
    j.submit(functools.partial(slow, seconds=0.2))
    for i in range(2000):
        j.submit(functools.partial(put, n=i, v="x" * 200), lambda r, e: done.append(r))
    j.close()
    assert not alive(pid)
    assert len(rows(tmp_path / "j.sqlite")) == 2000
    await asyncio.sleep(0)  # callbacks of what close() finished run on the loop
    assert done == list(range(2000))
    with pytest.raises(JournalError, match="closed"):
        j.submit(count)


async def test_operations_submitted_before_start_run_after_it(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    j.open()
    got: list[Any] = []
    j.submit(make_table)
    j.submit(functools.partial(put, n=5), lambda r, e: got.append(r))
    j.start(asyncio.get_running_loop())
    try:
        await j.barrier()
        assert got == [5]
    finally:
        j.close()


async def test_the_writer_stays_on_sigint_and_sigterm_until_its_switch_closes(
        tmp_path: Path) -> None:
    """Ctrl-C or SIGTERM to the process group is for the switch, which then stops
    gracefully and still needs its writer to commit the last batches."""
    j = await started(tmp_path)
    try:
        pid = j.pid
        assert pid is not None
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
        await asyncio.sleep(0.2)
        assert await j.call(functools.partial(put, n=3)) == 3
    finally:
        j.close()


def test_the_writer_ends_when_its_switch_is_killed(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from nlets_switch.store.journal import Journal, nothing

        async def main():
            j = Journal(Path({str(tmp_path / "j.sqlite")!r}))
            j.start(asyncio.get_running_loop())
            await j.call(nothing)
            print(j.pid, flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        pid = int(proc.stdout.readline())
        assert alive(pid)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pid)


def test_owed_reads_use_the_partial_index_and_an_old_journal_is_migrated(
        tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    # A journal as written before: its open-deliveries index stated with IN.
    Journal(path).open()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("DROP INDEX deliveries_owed")
        db.execute("CREATE INDEX deliveries_open ON deliveries(link, id) "
                   "WHERE state IN ('queued', 'held', 'sent')")
        db.execute("UPDATE meta SET value = '2' WHERE name = 'schema_version'")
        db.commit()
    j = Journal(path)
    conn = j.open()
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert "deliveries_owed" in names and "deliveries_open" not in names

        from nlets_switch.store import tables

        def plan_of(fn: Any, *args: Any) -> str:
            """The query plan of the first statement ``fn`` runs (SQLite's trace)."""
            seen: list[str] = []
            conn.set_trace_callback(seen.append)
            try:
                fn(conn, *args)
            finally:
                conn.set_trace_callback(None)
            return " ".join(str(r[-1]) for r in conn.execute("EXPLAIN QUERY PLAN " + seen[0]))

        assert "USING INDEX deliveries_owed" in plan_of(tables.load_owed, "TX0000000", 0, 10)
        assert "USING INDEX deliveries_owed" in plan_of(tables.held_counts)
        # And the functions read what they should.
        conn.execute("INSERT INTO messages (id, received_at, link, status, text) "
                     "VALUES (1, 1.0, 'AZ0000000', 'accepted', 'DQ.AZ0000000.TX.TXT\nX')")
        for i, state in enumerate(("queued", "held", "sent", "acked", "expired", "refused")):
            conn.execute("INSERT INTO deliveries (id, msg_id, link, receiver, addressed, "
                         "output_no, priority, state, created_at, expires_at) "
                         "VALUES (?, 1, 'TX0000000', 'TX0000000', 'TX', ?, 1, ?, 1.0, 9e9)",
                         (i + 1, i + 1, state))
        assert [r.id for r in tables.load_owed(conn, "TX0000000", 0, 10)] == [1, 2, 3]
        assert tables.held_counts(conn) == {"TX0000000": 3}
    finally:
        j.close()
