"""Cluster mode when things fail, with three real ``serve`` nodes on one throwaway
PostgreSQL: services answered once (and taken over when their node dies), a node
killed with kill -9 under load losing and reordering nothing acknowledged, and a
10 s database outage survived."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.test_cluster import Nodes, _node_rows, _until

if TYPE_CHECKING:
    from tests.conftest_postgres import PgServer

pytest_plugins = ["tests.conftest_postgres"]


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Nodes]:
    c = Nodes(tmp_path, pg_url)
    try:
        yield c
    finally:
        c.stop_all()


def _holder(url: str, ori: str) -> str | None:
    for node, (alive, links) in _node_rows(url).items():
        if alive and ori in links:
            return node
    return None


async def test_services_answer_once_whatever_node_and_move_when_their_node_dies(
        cluster: Nodes) -> None:
    ports = {n: cluster.start(n) for n in ("n1", "n2", "n3")}
    await _until(lambda: _holder(cluster.url, "NL0000000") is not None
                 and _holder(cluster.url, "TXNLETS00") is not None)
    rows = _node_rows(cluster.url)
    for ori in ("NL0000000", "TXNLETS00", "VTICE0900"):
        assert sum(ori in links for _, links in rows.values()) == 1, ori  # one node runs it
    for node in ("n1", "n2", "n3"):
        az = await Client.connect("127.0.0.1", ports[node], "AZNLETS20", timeout=5)
        assert (await az.send("DQ.AZNLETS20.TX.TXT\nOLN/Z99999999")).ok
        assert (await az.send("AM.AZNLETS20.NLNLEHELP.TXT\nSEND")).ok
        got = await az.drain(1.5)
        keys = sorted(parse_output(t).key for t in got)
        # One DR from the simulated state, one help file from NL: once each.
        assert keys == ["AM", "DR"], (node, got)
        await az.close()
    # The node that runs the simulated states dies: another takes them over.
    dead = _holder(cluster.url, "TXNLETS00")
    assert dead is not None
    cluster.kill(dead)
    await _until(lambda: _holder(cluster.url, "TXNLETS00") not in (None, dead), 5)
    other = next(n for n in ports if n != dead)
    az = await Client.connect("127.0.0.1", ports[other], "AZNLETS20", timeout=5)
    assert (await az.send("DQ.AZNLETS20.TX.TXT\nOLN/Z99999999")).ok
    got = await az.drain(1.5)
    assert [parse_output(t).key for t in got] == ["DR"]
    await az.close()


def _first_occurrences(texts: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for t in texts:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


async def test_kill_9_of_a_node_under_load_loses_and_reorders_nothing(cluster: Nodes) -> None:
    p1, p2, p3 = (cluster.start(n) for n in ("n1", "n2", "n3"))
    az = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    ny = await Client.connect("127.0.0.1", p2, "NYNLETS00")
    acked: list[str] = []
    sent: set[str] = set()
    received: list[str] = []
    counter = 0

    async def read(c: Client) -> None:
        while True:
            received.append(parse_output(await c.receive(None)).text)

    async def send_for(c: Client, seconds: float) -> None:
        nonlocal counter
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            batch = []
            for _ in range(4):
                counter += 1
                body = f"LOAD {counter:05d}"
                sent.add(body)
                batch.append((body, c.send_nowait(f"AM.AZNLETS20.NY.TXT\n{body}")))
            for body, fut in batch:
                try:
                    if (await asyncio.wait_for(fut, 5)).ok:
                        acked.append(body)
                except (ConnectionError, TimeoutError):
                    pass
            await asyncio.sleep(0.03)

    reader = asyncio.create_task(read(ny))
    try:
        await send_for(az, 1.0)
        # The receiver's node dies under load; the receiver signs on at n3.
        cluster.kill("n2")
        sender = asyncio.create_task(send_for(az, 1.5))
        await ny.close(sign_off=False)
        reader.cancel()
        ny = await Client.connect("127.0.0.1", p3, "NYNLETS00", timeout=5)
        t0 = time.monotonic()
        before = len(received)
        reader = asyncio.create_task(read(ny))
        await _until(lambda: len(received) > before, 2.0)
        assert time.monotonic() - t0 < 2.0  # owed messages within 2 s of signing on
        await sender
        # Now the sender's node dies; the sender signs on at n3 and goes on.
        cluster.kill("n1")
        await az.close(sign_off=False)
        az = await Client.connect("127.0.0.1", p3, "AZNLETS20", timeout=5)
        await send_for(az, 1.0)
        await _until(lambda: set(acked) <= set(received), 10)
    finally:
        reader.cancel()
        await az.close()
        await ny.close()
    assert len(acked) > 100
    assert set(received) <= sent
    mine = [t for t in _first_occurrences(received) if t in set(acked)]
    assert mine == acked  # every acknowledged message, in the order it was sent


async def test_database_outage_of_10_s_is_survived(cluster: Nodes, pg_server: PgServer) -> None:
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    az = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    ny = await Client.connect("127.0.0.1", p2, "NYNLETS00")
    acked: list[str] = []
    received: set[str] = set()
    refused = 0

    async def read() -> None:
        while True:
            received.add(parse_output(await ny.receive(None)).text)

    async def send_for(seconds: float) -> tuple[int, int]:
        nonlocal refused
        ok = n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            body = f"OUT {len(acked) + refused:05d}"
            a = await az.send(f"AM.AZNLETS20.NY.TXT\n{body}", timeout=10)
            n += 1
            if a.ok:
                ok += 1
                acked.append(body)
            else:
                refused += 1
            await asyncio.sleep(0.02)
        return ok, n

    reader = asyncio.create_task(read())
    try:
        ok, n = await send_for(1.0)
        assert ok == n > 0
        pg_server.stop("fast")
        try:
            ok, n = await send_for(10.0)
            assert n > 0 and ok == 0  # N for everything not committed, never an A
        finally:
            pg_server.start()
        deadline = time.monotonic() + 20
        while True:
            ok, n = await send_for(0.5)
            if ok == n > 0:
                break
            assert time.monotonic() < deadline, "traffic did not resume"
        await _until(lambda: set(acked) <= received, 10)
        # The links stayed up, and each node holds its ORI again.
        assert not az.closed.is_set() and not ny.closed.is_set()
        await _until(lambda: _holder(cluster.url, "NYNLETS00") == "n2", 5)
    finally:
        reader.cancel()
        await az.close()
        await ny.close()


async def test_a_node_whose_session_dies_gives_up_what_another_node_took(
        cluster: Nodes) -> None:
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    old = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    keep = await Client.connect("127.0.0.1", p1, "NYNLETS00")
    # n1's own session (its locks) ends; its process and links live on.
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        killed = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'nlets-switch node n1'").fetchone()[0]
    assert killed == 1
    new = await Client.connect("127.0.0.1", p2, "AZNLETS20", timeout=5)
    try:
        # n1 connects again, takes back NY, finds AZ taken and closes its link of it.
        await asyncio.wait_for(old.closed.wait(), 5)
        await _until(lambda: _holder(cluster.url, "NYNLETS00") == "n1", 5)
        assert _holder(cluster.url, "AZNLETS20") == "n2"
        assert not keep.closed.is_set() and not new.closed.is_set()
        assert (await keep.send("AM.NYNLETS00.AZ.TXT\nSTILL ONE LINK")).ok
        assert parse_output(await new.receive(5)).text == "STILL ONE LINK"
    finally:
        for c in (old, keep, new):
            await c.close(sign_off=False)
