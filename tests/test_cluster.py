"""Cluster mode: real ``serve`` processes with ``--node-id`` on one throwaway PostgreSQL.

Duplicate node ids are refused; the nodes table lists the nodes and their links;
a message from an ORI on one node to an ORI on another is delivered at once;
a second sign-on at another node replaces the first (the old link closes);
held messages wait in the database for whichever node the ORI signs on at.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from nlets_switch.store.postgres_cluster import nodes
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest import free_port
from tests.test_durability import start_switch

pytest_plugins = ["tests.conftest_postgres"]


class Nodes:
    """Switch nodes of one cluster (``serve`` processes), stopped at the end."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp = tmp
        self.url = url
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}

    def start(self, node: str) -> int:
        port = self.ports.setdefault(node, free_port())
        self.procs[node] = start_switch(self.tmp / node, port, "--store", self.url,
                                        "--node-id", node)
        return port

    def kill(self, node: str) -> None:
        p = self.procs.pop(node)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop_all(self) -> None:
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.procs.clear()


@pytest.fixture
def cluster(tmp_path: Path, pg_url: str) -> Iterator[Nodes]:
    c = Nodes(tmp_path, pg_url)
    try:
        yield c
    finally:
        c.stop_all()


def _node_rows(url: str) -> dict[str, tuple[bool, tuple[str, ...]]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {r.node_id: (r.alive, r.links) for r in nodes(conn)}


async def _until(cond: object, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_duplicate_node_id_is_refused_in_one_line(cluster: Nodes, tmp_path: Path) -> None:
    cluster.start("n1")
    r = subprocess.run(
        [sys.executable, "-m", "nlets_switch", "serve", "--listen", f"127.0.0.1:{free_port()}",
         "--data-dir", str(tmp_path / "dup"), "--http", "off", "--store", cluster.url,
         "--node-id", "n1"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("nlets-switch:")]
    assert len(lines) == 1 and "node id 'n1' is running already" in lines[0], r.stderr
    # The first node is untouched: it still holds its id and serves.
    assert _node_rows(cluster.url)["n1"][0] is True


async def test_nodes_table_shows_alive_nodes_and_their_links(cluster: Nodes) -> None:
    p1 = cluster.start("n1")
    cluster.start("n2")
    az = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    try:
        await _until(lambda: "AZNLETS20" in _node_rows(cluster.url)["n1"][1])
        rows = _node_rows(cluster.url)
        assert rows["n1"][0] and rows["n2"][0]
        assert "AZNLETS20" not in rows["n2"][1]
        cluster.kill("n1")
        await _until(lambda: _node_rows(cluster.url)["n1"] == (False, ()))
    finally:
        await az.close(sign_off=False)


async def test_message_crosses_nodes_at_once(cluster: Nodes) -> None:
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    az = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    ny = await Client.connect("127.0.0.1", p2, "NYNLETS00")
    try:
        # n1 learns of NY's sign-on at n2 by NOTIFY, and at the latest by its view's
        # refresh once a second: with both nodes just started, wait for that second, so
        # that n1 does not answer the first AMs with SM .02 (they would still arrive).
        await _until(lambda: "NYNLETS00" in _node_rows(cluster.url)["n2"][1])
        await asyncio.sleep(1.2)
        texts = [f"AM.AZNLETS20.NY.*X{i}.TXT\nCROSS NODE {i:03d}" for i in range(50)]
        t0 = time.monotonic()
        answers = await asyncio.gather(*(az.send(t) for t in texts))
        assert all(a.ok for a in answers)
        got = [parse_output(await ny.receive(5)) for _ in texts]
        assert [g.text for g in got] == [t.split("TXT\n", 1)[1] for t in texts]  # in order
        assert time.monotonic() - t0 < 3
        # And back: NY's answer reaches AZ on the other node.
        assert (await ny.send("AM.NYNLETS00.AZ.*R1.TXT\nBACK")).ok
        assert parse_output(await az.receive(5)).text == "BACK"
        # SM .04 decisions see the whole cluster: an inquiry (not held) to NY, signed
        # on at the other node, is delivered, not refused as "out of service".
        assert (await az.send("DQ.AZNLETS20.NY.TXT\nOLN/D11111111")).ok
        dq = parse_output(await ny.receive(5))
        assert dq.key == "DQ" and dq.text == "OLN/D11111111"
        assert await az.drain(0.3) == []
        await ny.close()
        sms: list[str] = []
        for _ in range(20):  # NY is gone from the cluster's view within a moment
            assert (await az.send("DQ.AZNLETS20.NY.TXT\nOLN/D11111111")).ok
            sms = await az.drain(0.2)
            if sms:
                break
        assert len(sms) == 1 and parse_output(sms[0]).text.startswith(
            ".04. USER OUT OF SERVICE")
    finally:
        await az.close()
        await ny.close()


async def test_second_sign_on_at_another_node_replaces_the_first(cluster: Nodes) -> None:
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    first = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    for i in range(2):
        assert (await first.send(f"AM.AZNLETS20.NY.TXT\nBEFORE {i}")).ok
    t0 = time.monotonic()
    second = await Client.connect("127.0.0.1", p2, "AZNLETS20", timeout=5)
    try:
        await asyncio.wait_for(first.closed.wait(), 2)
        assert time.monotonic() - t0 < 2
        await _until(lambda: "AZNLETS20" in _node_rows(cluster.url)["n2"][1])
        assert "AZNLETS20" not in _node_rows(cluster.url)["n1"][1]
        # The new link works: a message to it from the first node arrives.
        assert (await second.send("AM.AZNLETS20.NY.TXT\nAFTER")).ok
        assert parse_output(await second.receive(5)).text.startswith(".02.")  # held for NY
        ny = await Client.connect("127.0.0.1", p1, "NYNLETS00")
        assert (await ny.send("AM.NYNLETS00.AZ.*R2.TXT\nTO THE NEW LINK")).ok
        assert parse_output(await second.receive(5)).text == "TO THE NEW LINK"
        got = [parse_output(await ny.receive(5)) for _ in range(3)]
        await ny.close()
        # The sender moved between nodes: its messages keep their order and its input
        # numbers go on where they were.
        assert [g.text for g in got] == ["BEFORE 0", "BEFORE 1", "AFTER"]
        first_no = got[0].input_no
        assert [g.input_no for g in got] == [first_no, first_no + 1, first_no + 2]
    finally:
        await first.close(sign_off=False)
        await second.close()


async def test_held_messages_wait_for_any_node(cluster: Nodes) -> None:
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    az = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    texts = [f"AM.AZNLETS20.NY.*H{i}.TXT\nHELD {i:03d}" for i in range(20)]
    for t in texts:
        assert (await az.send(t)).ok
    ny = await Client.connect("127.0.0.1", p2, "NYNLETS00")
    try:
        got = [parse_output(await ny.receive(5)).text for _ in texts]
        assert got == [t.split("TXT\n", 1)[1] for t in texts]
    finally:
        await az.close()
        await ny.close()


async def test_output_numbers_are_one_sequence_per_receiver_across_nodes(
        cluster: Nodes) -> None:
    p1 = cluster.start("n1")
    p2 = cluster.start("n2")
    az = await Client.connect("127.0.0.1", p1, "AZNLETS20")
    other = await Client.connect("127.0.0.1", p2, "AZ0070500")
    ny = await Client.connect("127.0.0.1", p2, "NYNLETS00")
    try:
        # Both nodes make deliveries to NY at once; NY's output numbers stay one
        # sequence (a receiver drops a duplicate by them, PROTOCOL part 1).
        futs = []
        for i in range(40):
            futs.append(az.send_nowait(f"AM.AZNLETS20.NY.TXT\nFROM N1 {i}"))
            futs.append(other.send_nowait(f"AM.AZ0070500.NY.TXT\nFROM N2 {i}"))
        assert all(a.ok for a in await asyncio.gather(*futs))
        got = [parse_output(await ny.receive(5)) for _ in range(80)]
        numbers = sorted(g.output_no for g in got)
        assert numbers == list(range(numbers[0], numbers[0] + 80))
        for who in ("N1", "N2"):  # and each sender's in order
            mine = [g.text for g in got if g.text.startswith(f"FROM {who}")]
            assert mine == [f"FROM {who} {i}" for i in range(40)]
    finally:
        for c in (az, other, ny):
            await c.close()
