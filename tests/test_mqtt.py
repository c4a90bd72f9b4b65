"""Events on MQTT, against a real Mosquitto that each test starts on a free port."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from nlets_switch.tools.client import Client

if TYPE_CHECKING:
    from tests.conftest_monitoring import Broker, MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]

Seen = list[tuple[str, Any]]


def mqtt_raw(port: int, **kw: Any) -> dict[str, Any]:
    return {"mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min": 0.05,
                     "reconnect_max": 0.3, "stats_interval": 0.2, **kw}}


class Watcher:
    """A real MQTT subscriber to ``nlets/#`` that records (topic, JSON payload)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: Seen = []
        self.ready = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port) as c:
            await c.subscribe("nlets/#")
            self.ready.set()
            async for m in c.messages:
                assert isinstance(m.payload, bytes)
                self.seen.append((str(m.topic), json.loads(m.payload)))

    async def wait_for(self, pred: Callable[[str, Any], bool], timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while True:
                for topic, payload in self.seen:
                    if pred(topic, payload):
                        return payload
                await asyncio.sleep(0.02)

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
            await self.task


@pytest.fixture
async def watch() -> AsyncIterator[Callable[[int], Any]]:
    made: list[Watcher] = []

    async def factory(port: int) -> Watcher:
        w = Watcher(port)
        made.append(w)
        async with asyncio.timeout(5):
            await w.ready.wait()
        return w

    yield factory
    for w in made:
        await w.close()


async def test_routing_events_links_and_stats_on_mqtt(
        monitored: MonitoredFactory, broker: Broker, watch: Any) -> None:
    sw, mon = await monitored(mqtt_raw(broker.port))
    assert mon.mqtt is not None
    async with asyncio.timeout(5):
        await mon.mqtt.connected.wait()
    w = await watch(broker.port)
    # Retained on connect: the switch is online, NY is offline.
    st = await w.wait_for(lambda t, p: t == "nlets/demo/status")
    assert st["state"] == "online"
    assert (await w.wait_for(lambda t, p: t == "nlets/demo/links/NYNLETS00"))["state"] == \
        "offline"
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    await w.wait_for(lambda t, p: t == "nlets/demo/links/NYNLETS00" and p["state"] == "online")
    assert (await az.send("AM.AZNLETS20.NY.TXT MQTT SECRET TEXT")).ok
    assert "MQTT SECRET TEXT" in await ny.receive(5)
    am = "nlets/demo/events/AM"
    got = await w.wait_for(lambda t, p: t == am and p["event"] == "received")
    routed = await w.wait_for(lambda t, p: t == am and p["event"] == "routed")
    delivered = await w.wait_for(lambda t, p: t == am and p["event"] == "delivered")
    assert got["ori"] == "AZNLETS20" and routed["to"] == ["NYNLETS00"]
    assert routed["msg_id"] == got["msg_id"] == delivered["msg_id"]
    assert delivered["latency_s"] >= 0
    stats = await w.wait_for(lambda t, p: t == "nlets/demo/stats" and p["messages"].get("AM"))
    assert stats["messages"]["AM"] == {"routed": 1}
    # Never message text, in any payload.
    assert all("SECRET" not in json.dumps(p) for _, p in w.seen)
    await ny.close()
    await w.wait_for(lambda t, p: t == "nlets/demo/links/NYNLETS00" and p["state"] == "offline")
    await az.close()


async def test_broker_goes_away_and_comes_back(
        monitored: MonitoredFactory, broker: Broker, watch: Any) -> None:
    sw, mon = await monitored(mqtt_raw(broker.port, queue_size=5))
    assert mon.mqtt is not None
    async with asyncio.timeout(5):
        await mon.mqtt.connected.wait()
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    broker.kill()
    async with asyncio.timeout(5):
        await mon.mqtt.disconnected.wait()
    # Routing goes on untouched while the broker is away; events beyond the
    # small queue are dropped and counted.
    for i in range(10):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT WHILE DOWN {i}")).ok
        assert f"WHILE DOWN {i}" in await ny.receive(5)
    assert mon.monitor.dropped["mqtt"] > 0
    dropped = mon.monitor.dropped["mqtt"]
    broker.start()  # same port; persistence off, so no retained message survived
    w = await watch(broker.port)
    async with asyncio.timeout(5):
        await mon.mqtt.connected.wait()
    # Link states are republished on reconnection, so the retained state is right.
    link = await w.wait_for(lambda t, p: t == "nlets/demo/links/AZNLETS20")
    assert link["state"] == "online"
    assert (await az.send("AM.AZNLETS20.NY.TXT AFTER")).ok
    assert "AFTER" in await ny.receive(5)
    await w.wait_for(lambda t, p: t == "nlets/demo/events/AM" and p["event"] == "routed")
    assert mon.monitor.dropped["mqtt"] >= dropped
    await az.close()
    await ny.close()


async def test_last_will_says_offline_when_the_switch_dies(
        tmp_path: Path, broker: Broker, watch: Any) -> None:
    script = textwrap.dedent(f"""
        import asyncio
        from nlets_switch.config import config_from_dict, with_overrides
        from nlets_switch.ops.monitoring import attach_monitoring
        from nlets_switch.core.events import MemoryAudit
        from nlets_switch.server.switch import Switch

        async def main():
            cfg = config_from_dict({{"mqtt": {{"host": "127.0.0.1", "port": {broker.port},
                                             "keepalive": 5}}}})
            cfg = with_overrides(cfg, ["127.0.0.1:0"], {str(tmp_path / "d")!r})
            sw = Switch(cfg, audit=MemoryAudit())
            await sw.start()
            mon = await attach_monitoring(sw, cfg, http="off")
            await mon.mqtt.connected.wait()
            print("up", flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
    """)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(10):
            while (line := await proc.stdout.readline()).strip() != b"up":  # logs first
                assert line, "the switch process ended before it was up"
        w = await watch(broker.port)
        st = await w.wait_for(lambda t, p: t == "nlets/demo/status")
        assert st["state"] == "online"
        proc.send_signal(signal.SIGKILL)  # dies without saying goodbye
        st = await w.wait_for(
            lambda t, p: t == "nlets/demo/status" and p["state"] == "offline", timeout=5)
        assert st["switch_id"] == "demo"
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


async def test_graceful_stop_says_offline(
        monitored: MonitoredFactory, broker: Broker, watch: Any) -> None:
    _, mon = await monitored(mqtt_raw(broker.port))
    assert mon.mqtt is not None
    async with asyncio.timeout(5):
        await mon.mqtt.connected.wait()
    w = await watch(broker.port)
    await w.wait_for(lambda t, p: t == "nlets/demo/status" and p["state"] == "online")
    await mon.stop()
    await w.wait_for(lambda t, p: t == "nlets/demo/status" and p["state"] == "offline")


async def test_an_operators_release_of_a_held_queue_is_an_event_on_mqtt(
        monitored: MonitoredFactory, broker: Broker, watch: Any) -> None:
    from tests.test_operator_api import OPERATOR, TOKENS, call

    sw, mon = await monitored({**mqtt_raw(broker.port), "api": TOKENS, "intervention": {
        "rules": [{"name": "watch-word", "text": "CONTRABAND"}]}})
    assert mon.mqtt is not None
    async with asyncio.timeout(5):
        await mon.mqtt.connected.wait()
    w = await watch(broker.port)
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT CONTRABAND LIST")).ok  # held for review
    await sw.journal.barrier()
    status, answer = await call(mon.http_address, "POST", "/api/held/NYNLETS00/release",
                                OPERATOR, {"reason": "cleared"})
    assert status == 200
    ev = await w.wait_for(lambda t, p: p.get("event") == "operator")
    assert (ev["action"], ev["operator"], ev["reason"], ev["deliveries"]) == (
        "release", "jane", "cleared", answer["released"])
    assert all("CONTRABAND" not in json.dumps(p) for _, p in w.seen)
    await az.close()
