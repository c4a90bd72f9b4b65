"""Operators see the cluster (issue 10): two real ``serve`` nodes on one throwaway
PostgreSQL, with a real Mosquitto. ``status`` (the API's stats), ``/metrics`` and MQTT
show every node, alive or not, with its links; a node killed with kill -9 goes offline
by its last will; a node whose database goes away says so (log line, MQTT, metric) and
says so again when it returns."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from nlets_switch.tools.client import Client
from tests.conftest import free_port

if TYPE_CHECKING:
    from tests.conftest_monitoring import Broker
    from tests.conftest_postgres import PgServer

pytest_plugins = ["tests.conftest_postgres", "tests.conftest_monitoring"]


class Node:
    """One ``serve --node-id`` process with its HTTP API and MQTT."""

    def __init__(self, tmp: Path, name: str, url: str, mqtt_port: int) -> None:
        self.name = name
        self.port, self.http = free_port(), free_port()
        self.dir = tmp / name
        self.dir.mkdir()
        self.log = self.dir / "serve.log"
        cfg = self.dir / "switch.yaml"
        cfg.write_text(f"mqtt:\n  host: 127.0.0.1\n  port: {mqtt_port}\n  stats_interval: 1\n")
        with self.log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "nlets_switch", "serve", "--config", str(cfg),
                 "--listen", f"127.0.0.1:{self.port}", "--http", f"127.0.0.1:{self.http}",
                 "--data-dir", str(self.dir / "data"), "--store", url, "--node-id", name],
                stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.http), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise AssertionError(self.log.read_text()) from None
                time.sleep(0.05)
        raise AssertionError("node did not start")

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}{path}", timeout=5) as r:
            body: bytes = r.read()
            return body

    def cluster(self) -> dict[str, Any]:
        stats: dict[str, Any] = json.loads(self.get("/api/stats"))["cluster"]
        return stats

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def nodes() -> Iterator[list[Node]]:
    started: list[Node] = []
    yield started
    for n in started:
        n.stop()


async def _until(cond: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            got = cond()
        except (OSError, KeyError, ValueError):
            got = None
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("not within the time")
        await asyncio.sleep(0.1)


class Presence:
    """The retained ``nlets/<switch>/nodes/+`` topics, as a subscriber sees them."""

    def __init__(self) -> None:
        self.last: dict[str, dict[str, Any]] = {}

    async def follow(self, port: int) -> None:
        async with aiomqtt.Client("127.0.0.1", port) as client:
            await client.subscribe("nlets/+/nodes/+", qos=1)
            async for msg in client.messages:
                payload = json.loads(bytes(msg.payload))  # type: ignore[arg-type]
                self.last[str(msg.topic).rsplit("/", 1)[1]] = payload


async def test_every_node_is_seen_and_a_node_that_dies_or_loses_the_database_says_so(
        tmp_path: Path, pg_url: str, pg_server: PgServer, broker: Broker,
        nodes: list[Node]) -> None:
    n1 = Node(tmp_path, "n1", pg_url, broker.port)
    nodes.append(n1)
    n2 = Node(tmp_path, "n2", pg_url, broker.port)
    nodes.append(n2)
    presence = Presence()
    follower = asyncio.create_task(presence.follow(broker.port))
    try:
        await _until(lambda: {k: v["state"] for k, v in presence.last.items()}
                     == {"n1": "online", "n2": "online"})
        assert presence.last["n1"]["database"] == "up"

        # Each node's view lists both, alive, with what each holds.
        az = await Client.connect("127.0.0.1", n2.port, "AZNLETS20")
        try:
            def both_alive() -> dict[str, Any] | None:
                view = {n["node"]: n for n in n1.cluster()["nodes"]}
                ok = set(view) == {"n1", "n2"} and all(n["alive"] for n in view.values())
                return view if ok else None

            view = await _until(both_alive)
            base_links = view["n2"]["links"]
            await _until(lambda: {n["node"]: n for n in n1.cluster()["nodes"]}["n2"]["links"]
                         >= 1)
            assert n1.cluster()["database"] == "up" and n1.cluster()["node"] == "n1"
            metrics = n1.get("/metrics").decode()
            assert 'nlets_cluster_node_alive{node="n2"} 1.0' in metrics
            assert "nlets_database_up 1.0" in metrics
            # `status` prints the nodes (it reads the same API).
            out = (await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "nlets_switch", "status", "--http",
                                 f"127.0.0.1:{n1.http}"], capture_output=True, text=True,
                timeout=30)).stdout
            assert "database up; this node: n1" in out
            assert any(line.split()[:2] == ["n2", "alive"] for line in out.splitlines())
        finally:
            await az.close(sign_off=False)
        del base_links

        # kill -9 of n2: its last will says offline at once; n1 sees it down.
        n2.stop(signal.SIGKILL)
        await _until(lambda: presence.last["n2"]["state"] == "offline")
        await _until(lambda: not {n["node"]: n for n in n1.cluster()["nodes"]}["n2"]["alive"])
        assert 'nlets_cluster_node_alive{node="n2"} 0.0' in n1.get("/metrics").decode()

        # The database goes away: n1 says so without any traffic, and again when it is back.
        pg_server.stop()
        try:
            await _until(lambda: presence.last["n1"].get("database") == "down", 15)
            assert presence.last["n1"]["state"] == "online"
            assert "nlets_database_up 0.0" in n1.get("/metrics").decode()
            assert n1.cluster()["database"] == "down" and n1.cluster()["stale"]
        finally:
            pg_server.start()
        await _until(lambda: presence.last["n1"].get("database") == "up", 20)
        assert "nlets_database_up 1.0" in n1.get("/metrics").decode()
    finally:
        follower.cancel()
        await asyncio.gather(follower, return_exceptions=True)
    n1.stop()
    log = n1.log.read_text()
    assert "database_lost" in log and "database_back" in log


async def test_a_multi_host_url_finds_the_writable_database(pg_url: str) -> None:
    """What docs/cluster.md says to put under failover: libpq's multi-host URL with
    ``target_session_attrs=read-write`` skips a host that is down (or a standby)."""
    from nlets_switch.store.postgres_journal import PostgresJournal
    from nlets_switch.store.records import Batch, MessageRow

    head, _, db = pg_url.rpartition("/")
    scheme_user, _, hostport = head.rpartition("@")
    url = f"{scheme_user}@127.0.0.1:{free_port()},{hostport}/{db}?target_session_attrs=read-write"
    j = PostgresJournal(url)
    j.start(asyncio.get_running_loop())
    try:
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        j.write(Batch(messages=[MessageRow(1, 1.0, "AZNLETS20", "AM", "AZNLETS20", "NY", None,
                                           1, "accepted", None, None, 0, "AM.X.Y.TXT\nHI")]),
                done.set_result)
        assert await done is None
    finally:
        j.close()
    from nlets_switch.store.postgres import open_pg_store

    with open_pg_store(pg_url, readonly=True) as store:
        assert store.get_message(1) is not None
