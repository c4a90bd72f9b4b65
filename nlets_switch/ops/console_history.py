"""The last hour of the dashboard's charts, kept by the switch (so a page opened now
shows the hour before it): messages per second by key, round-trip p50 and p99,
ER and SM per second; one point per stats snapshot (every second).

Fed by a subscription to the monitor's fan-out ("stats" and "delivered"
events), like any other subscriber: bounded, and dropping rather than slowing
routing. Counters and latencies only, never message text.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from nlets_switch.ops.monitor import Monitor, Subscription

#: One point a second for an hour.
POINTS: Final = 3600


def _totals(stats: dict[str, Any]) -> dict[str, int]:
    return {k: sum(v.values()) for k, v in (stats.get("messages") or {}).items()}


def _pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    values.sort()
    return values[min(len(values) - 1, int(p * len(values)))]


class History:
    """The points of the last hour; :meth:`feed` takes events, :meth:`as_json` gives them."""

    def __init__(self, points: int = POINTS) -> None:
        self.points: deque[tuple[float, dict[str, float], float | None, float | None, float,
                                 float]] = deque(maxlen=points)
        self._last: dict[str, Any] | None = None
        self._latencies: list[float] = []

    def baseline(self, ts: float) -> None:
        """Counters were zero at ``ts`` (the switch's start), unless a snapshot came."""
        if self._last is None:
            self._last = {"ts": ts, "messages": {}, "er": 0, "sm": 0}

    def feed(self, ev: dict[str, Any]) -> None:
        """One monitor event (others are ignored)."""
        name = ev.get("event")
        if name == "delivered":
            lat = ev.get("latency_s")
            if isinstance(lat, int | float):
                self._latencies.append(float(lat))
        elif name == "stats":
            last, self._last = self._last, ev
            if last is None or ev["ts"] <= last["ts"]:
                return
            dt = ev["ts"] - last["ts"]
            now, before = _totals(ev), _totals(last)
            rates = {k: max(0.0, (n - before.get(k, 0)) / dt) for k, n in now.items()}
            lat, self._latencies = self._latencies, []
            self.points.append((ev["ts"], rates, _pct(lat, 0.5), _pct(lat, 0.99),
                                max(0.0, (ev["er"] - last["er"]) / dt),
                                max(0.0, (ev["sm"] - last["sm"]) / dt)))

    def as_json(self) -> dict[str, Any]:
        """Columns as the charts take them: ``t``, ``keys`` {key: [...]}, ``p50``, ``p99``
        (seconds, null without a delivery), ``er``, ``sm``."""
        pts = list(self.points)
        keys = sorted({k for p in pts for k in p[1]})
        return {"t": [p[0] for p in pts],
                "keys": {k: [p[1].get(k, 0.0) for p in pts] for k in keys},
                "p50": [p[2] for p in pts], "p99": [p[3] for p in pts],
                "er": [p[4] for p in pts], "sm": [p[5] for p in pts]}

    # -- feeding from the monitor ------------------------------------------------------

    async def run(self, sub: Subscription) -> None:
        """Take events from ``sub`` until cancelled."""
        try:
            while True:
                self.feed(await sub.get())
        finally:
            sub.close()


class HistoryTask:
    """Starts and stops :meth:`History.run` with the HTTP application."""

    def __init__(self, history: History, monitor: Monitor) -> None:
        self.history = history
        self.monitor = monitor
        self._task: asyncio.Task[None] | None = None

    async def start(self, app: Any) -> None:
        """aiohttp ``on_startup``."""
        # Subscribed now, before the first stats snapshot goes out (the ticker starts
        # after the HTTP server), so the first point's baseline is the switch's start.
        sub = self.monitor.subscribe("history", 10_000, frozenset({"stats", "delivered"}))
        # The counters start at zero with the switch: what the first snapshot
        # counts happened since about now (it may come late: it queries the journal).
        self.history.baseline(time.time())
        self._task = asyncio.create_task(self.history.run(sub), name="chart-history")

    async def stop(self, app: Any) -> None:
        """aiohttp ``on_cleanup``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
