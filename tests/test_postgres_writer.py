"""The PostgreSQL journal's writer process (store/postgres_writer.py): the SQLite
journal's process and framing, with a PostgreSQL backend. Killed with kill -9, its
journal fails what waits and refuses more, so senders get ``N .05.``, never a hang;
operations cross to it pickled and run on a store of its own connection."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from nlets_switch.store.journal import JournalError, UnpicklableOp
from nlets_switch.store.postgres_journal import PostgresJournal
from nlets_switch.store.records import Batch
from nlets_switch.tools.client import Client
from tests.conftest import SwitchFactory

pytest_plugins = ["tests.conftest_postgres"]
# The PostgreSQL make_switch (each switch on the test's own database).
from tests.test_postgres_switch import make_switch  # noqa: E402

__all__ = ["make_switch"]


def slow(store: Any, seconds: float) -> None:
    store.conn.execute("SELECT pg_sleep(%s)", (seconds,))


def echo(store: Any, n: int) -> tuple[int, str, int]:
    """What the writer sees: its own process, a store, the database's answer."""
    (v,) = store.conn.execute("SELECT %s::int", (n,)).fetchone()
    return os.getpid(), type(store).__name__, int(v)


async def test_the_writer_is_a_process_of_its_own(pg_url: str) -> None:
    j = PostgresJournal(pg_url)
    j.start(asyncio.get_running_loop())
    try:
        pid, kind, v = await j.call(functools.partial(echo, n=7))
        assert (pid, kind, v) == (j.pid, "PostgresStore", 7) and pid != os.getpid()
        with pytest.raises(UnpicklableOp):  # operations cross pickled, as for SQLite
            j.submit(lambda store: None)
        assert j.available
    finally:
        j.close()


async def test_kill_9_of_the_writer_gives_errors_not_a_hang(pg_url: str) -> None:
    loop = asyncio.get_running_loop()
    j = PostgresJournal(pg_url)
    j.start(loop)
    try:
        pid = j.pid
        assert pid is not None
        j.submit(functools.partial(slow, seconds=0.3))
        waiting = [asyncio.ensure_future(j.call(functools.partial(echo, n=i)))
                   for i in range(20)]
        await asyncio.sleep(0.05)
        os.kill(pid, signal.SIGKILL)
        results = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 10)
        assert all(isinstance(r, JournalError) for r in results), results
        assert "writer process ended" in str(results[0])
        with pytest.raises(JournalError, match="writer process ended"):
            j.submit(functools.partial(echo, n=1))
        # A typed write gets its error through its callback: its senders get an answer.
        wrote: asyncio.Future[BaseException | None] = loop.create_future()
        j.write(Batch(counters={"x": 1}), wrote.set_result)
        assert isinstance(await asyncio.wait_for(wrote, 5), JournalError)
        # A read-back waiting out outages does not wait for a writer that is gone.
        owed: asyncio.Future[Any] = loop.create_future()
        j.owed("NYNLETS00", 0, 10, lambda rows, exc: owed.set_result(exc))
        assert isinstance(await asyncio.wait_for(owed, 5), JournalError)
    finally:
        j.close()  # does not hang either


async def test_kill_9_of_the_writer_under_a_switch_gives_n_05(
        make_switch: SwitchFactory, tmp_path: Path) -> None:
    sw = await make_switch()
    port = sw.addresses[0][1]
    az = await Client.connect("127.0.0.1", port, "AZNLETS20")
    try:
        assert (await az.send("AM.AZNLETS20.NY.TXT BEFORE")).ok
        pid = sw.journal.pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await asyncio.sleep(0.2)
        answers = [await asyncio.wait_for(az.send(f"AM.AZNLETS20.NY.TXT LOST {i}"), 10)
                   for i in range(5)]
        # Custody stopped: N .05., never an A the switch could not keep; the link stays.
        assert all(not a.ok and ".05." in a.text for a in answers)
    finally:
        await az.close()
