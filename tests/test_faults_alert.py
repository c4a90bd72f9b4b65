"""A journal read error while the switch runs raises an alert everywhere an operator
looks (issue 15): the log, the event stream (MQTT, dashboard), /metrics and the
stats snapshot; custody stops until the read works again, and the destination
is then delivered to."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from nlets_switch.ops.monitor import stats_snapshot
from nlets_switch.ops.mqtt import MQTT_EVENTS
from nlets_switch.tools.client import Client
from tests.test_http import get

if TYPE_CHECKING:
    from tests.conftest_monitoring import MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]

FAULT = 'nlets_journal_fault{destination="NYNLETS00",op="read-back"} 1.0'


async def test_a_read_error_alerts_stops_custody_and_clears(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored()
    port = sw.addresses[0][1]
    sub = mon.monitor.subscribe("test-mqtt", 1000, MQTT_EVENTS)
    az = await Client.connect("127.0.0.1", port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT HELD FOR NY")).ok
    real = sw.journal.owed
    loop = asyncio.get_running_loop()

    def damaged(link: str, after: int, limit: int,
                done: Callable[[Any, BaseException | None], None]) -> None:
        loop.call_soon(done, None, OSError("damaged page"))

    sw.journal.owed = damaged  # type: ignore[method-assign]
    ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
    await asyncio.sleep(0.2)
    _, metrics = await get(mon.http_address, "/metrics")
    assert FAULT in metrics
    assert "nlets_custody_stopped 1.0" in metrics
    assert 'nlets_journal_failures_total{op="read-back"}' in metrics
    snap = stats_snapshot(sw, mon.monitor, {})
    assert snap["alerts"] == [{"alert": "journal_fault", "op": "read-back",
                               "error": "OSError", "destination": "NYNLETS00",
                               "custody": "stopped"}]
    events = []
    while not sub.queue.empty():
        events.append(sub.queue.get_nowait())
    faults = [e for e in events if e["event"] == "journal_fault"]
    assert faults and faults[0]["state"] == "failed"
    assert any(e["event"] == "journal_fault" for e in mon.monitor.recent)  # the dashboard's list
    # Custody stopped: the sender hears N .05., not an A the switch may not keep.
    answer = await az.send("AM.AZNLETS20.NY.TXT WHILE FAILING")
    assert not answer.ok and ".05." in answer.text

    sw.journal.owed = real  # type: ignore[method-assign]
    text = await ny.receive(5)                       # retried: delivery goes on
    assert "HELD FOR NY" in text
    _, metrics = await get(mon.http_address, "/metrics")
    assert FAULT not in metrics and "nlets_custody_stopped 0.0" in metrics
    assert stats_snapshot(sw, mon.monitor, {})["alerts"] == []
    assert (await az.send("AM.AZNLETS20.NY.TXT AFTER")).ok
    await ny.close()
    await az.close()


async def test_a_writer_that_fails_fast_stops_custody_with_one_alert(
        monitored: MonitoredFactory) -> None:
    # The journal's writer process gone (branch speed's rule: a failed batch's
    # ops get its error, later submits raise at once): senders get N .05.
    # every time, one alert, and the retry keeps trying without a flood.
    sw, mon = await monitored()
    port = sw.addresses[0][1]
    az = await Client.connect("127.0.0.1", port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT BEFORE")).ok
    real = sw.journal.write
    calls = 0

    def gone(batch: Any, done: Callable[[BaseException | None], None]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("the journal writer process ended")

    sw.journal.write = gone  # type: ignore[method-assign]
    answers = [await az.send(f"AM.AZNLETS20.NY.TXT LOST {i}") for i in range(20)]
    assert all(not a.ok and ".05." in a.text for a in answers)
    await asyncio.sleep(1.5)
    assert 1 <= calls <= 4                     # the first batch and a probe a second
    faults = [e for e in mon.monitor.recent if e["event"] == "journal_fault"]
    assert [(e["state"], e["op"], e["error"]) for e in faults] == [
        ("failed", "write", "RuntimeError")]
    sw.journal.write = real  # type: ignore[method-assign]
    await asyncio.sleep(1.2)
    assert (await az.send("AM.AZNLETS20.NY.TXT AFTER")).ok
    await az.close()
