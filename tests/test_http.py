"""Operator HTTP: /metrics moves, the API is token-guarded and audited, text only when allowed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from nlets_switch.config import config_from_dict, demo_config
from nlets_switch.core.events import Audit
from nlets_switch.errors import ConfigError
from nlets_switch.ops.monitor import http_address_from, token_hash
from nlets_switch.tools.client import Client

if TYPE_CHECKING:
    from tests.conftest_monitoring import MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]

READER = "reader-token-0123456789"
OFFICER = "officer-token-0123456789"
API = {"api": {"tokens": [
    {"name": "ops", "token_sha256": token_hash(READER)},
    {"name": "auditor", "token": OFFICER, "see_text": True},
]}}


async def get(addr: tuple[str, int], path: str, token: str | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(
            f"http://{addr[0]}:{addr[1]}{path}", headers=headers) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.text()


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_counters_move(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored()
    assert mon.http_address is not None
    status, before = await get(mon.http_address, "/metrics")
    assert status == 200
    assert 'nlets_messages_total{key="AM",outcome="held"}' not in before
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    # NY is not signed on: the AM is held in NY's queue (and AZ gets an SM saying so).
    assert (await az.send("AM.AZNLETS20.NY.TXT HELLO NEW YORK")).ok
    assert "SM" in (await az.receive(5)).split(".")[0]
    await sw.journal.barrier()
    _, mid = await get(mon.http_address, "/metrics")
    assert metric(mid, 'nlets_messages_total{key="AM",outcome="held"}') == 1
    assert metric(mid, "nlets_switch_sm_total") == 1
    assert metric(mid, 'nlets_link_online{ori="AZNLETS20"}') == 1
    assert metric(mid, 'nlets_link_online{ori="NYNLETS00"}') == 0
    assert metric(mid, 'nlets_held_messages{destination="NYNLETS00"}') == 1
    assert metric(mid, "nlets_journal_commit_seconds_count") > 0
    assert "nlets_monitor_events_dropped_total" in mid
    ny = await Client.connect(host, port, "NYNLETS00")
    assert "HELLO NEW YORK" in await ny.receive(5)
    for _ in range(50):
        _, after = await get(mon.http_address, "/metrics")
        if metric(after, "nlets_delivery_latency_seconds_count") >= 2:
            break
        await asyncio.sleep(0.05)
    # Two deliveries acknowledged: the SM to AZ and the AM to NY.
    assert metric(after, "nlets_delivery_latency_seconds_count") == 2
    assert metric(after, 'nlets_links_online') == 2
    await sw.journal.barrier()
    _, after = await get(mon.http_address, "/metrics")
    assert metric(after, 'nlets_held_messages{destination="NYNLETS00"}') == 0
    await az.close()
    await ny.close()


async def test_api_needs_token_and_audits_every_access(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored(API)
    audits: list[dict[str, Any]] = []
    sw.observers.append(lambda e: audits.append(e.to_dict()) if isinstance(e, Audit) else None)
    addr = mon.http_address
    assert addr is not None
    status, body = await get(addr, "/api/links")
    assert status == 401 and "token" in body["error"]
    status, _ = await get(addr, "/api/links", "wrong-token-000000000")
    assert status == 401
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    status, body = await get(addr, "/api/links", READER)
    assert status == 200
    states = {ln["ori"]: ln["state"] for ln in body["links"]}
    assert states["AZNLETS20"] == "online" and states["NYNLETS00"] == "offline"
    api = [(a["subject"], a["outcome"], a["path"]) for a in audits if a["type"] == "api_access"]
    assert api == [("(no valid token)", "denied", "/api/links"),
                   ("(no valid token)", "denied", "/api/links"),
                   ("ops", "success", "/api/links")]
    await az.close()


async def test_message_text_only_for_a_token_that_may_see_it(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored(API)
    addr = mon.http_address
    assert addr is not None
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT SECRET WORDS")).ok
    await sw.journal.barrier()
    status, body = await get(addr, "/api/messages?key=AM&ori=AZNLETS20", READER)
    assert status == 200 and body["count"] == 1
    found = body["messages"][0]
    assert found["key"] == "AM" and "text" not in found
    assert "SECRET" not in str(body)
    status, held = await get(addr, "/api/held", READER)
    assert held["held"] == {"NYNLETS00": 1}
    status, one = await get(addr, f"/api/messages/{found['id']}", READER)
    assert status == 200 and one["text_withheld"] is True and "text" not in one
    status, one = await get(addr, f"/api/messages/{found['id']}", OFFICER)
    assert status == 200 and "SECRET WORDS" in one["text"]
    status, _ = await get(addr, "/api/messages/999999", OFFICER)
    assert status == 404
    status, _ = await get(addr, "/api/messages?since=yesterday-ish", READER)
    assert status == 400
    await az.close()


async def test_loopback_needs_no_token_when_none_is_configured(
        monitored: MonitoredFactory) -> None:
    _, mon = await monitored()
    assert mon.http_address is not None
    status, body = await get(mon.http_address, "/api/links")
    assert status == 200 and body["links"]


async def test_status_command_prints_links_and_queues(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored(API)
    assert mon.http_address is not None
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT HELLO")).ok
    await sw.journal.barrier()
    h, p = mon.http_address
    env = {**os.environ, "NLETS_API_TOKEN": READER}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nlets_switch", "status", "--http", f"{h}:{p}",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    text = out.decode()
    lines = {ln.split()[0]: ln.split() for ln in text.splitlines() if ln[:2] in ("AZ", "NY")}
    assert lines["AZNLETS20"][1] == "online"
    assert lines["NYNLETS00"][1] == "offline" and lines["NYNLETS00"][-1] == "1"
    assert "1 of" in text and "AM 1" in text
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nlets_switch", "status", "--http", f"{h}:{p}",
        "--token", "not-the-token-at-all", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, err = await proc.communicate()
    assert proc.returncode == 1 and b"401" in err
    await az.close()


def test_config_sections_are_checked_with_key_paths() -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict({"mqtt": {"host": "localhost", "port": 99999, "bogus": 1},
                          "http": {"listen": "nowhere"},
                          "api": {"tokens": [{"name": "x", "token_sha256": "abc"}]}})
    text = "\n".join(e.value.problems)
    assert "mqtt.port:" in text and "mqtt.bogus:" in text
    assert "http.listen:" in text and "api.tokens[0].token_sha256:" in text


def test_http_address_default_flag_and_off() -> None:
    cfg = demo_config()
    assert http_address_from(None, cfg) == ("127.0.0.1", 7331)
    assert http_address_from("0.0.0.0:8080", cfg) == ("0.0.0.0", 8080)
    assert http_address_from("off", cfg) is None


async def test_a_slow_subscriber_loses_events_counted_and_routing_goes_on(
        monitored: MonitoredFactory) -> None:
    sw, mon = await monitored()
    assert mon.http_address is not None
    stuck = mon.monitor.subscribe("sse", maxsize=1)  # a browser that never reads
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    for i in range(5):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT N{i}")).ok
        assert f"N{i}" in await ny.receive(5)
    assert stuck.dropped > 0
    _, text = await get(mon.http_address, "/metrics")
    assert metric(text, 'nlets_monitor_events_dropped_total{subscriber="sse"}') >= stuck.dropped
    stuck.close()
    await az.close()
    await ny.close()
