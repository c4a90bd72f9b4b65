"""Attaching monitoring to a switch: the monitor, metrics, HTTP and MQTT together.

The composition root of ``ops``: it imports the HTTP server, the metrics and
the MQTT publisher, which all import :mod:`nlets_switch.ops.monitor`; kept
apart so that no module of the package imports one that imports it back.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from nlets_switch.config import Config
from nlets_switch.ops.monitor import (
    Event,
    HttpSettings,
    Monitor,
    held_counts,
    http_address_from,
    http_settings,
    log,
    mqtt_settings,
    stats_snapshot,
)

if TYPE_CHECKING:
    from nlets_switch.ops.cluster_view import ClusterView
    from nlets_switch.ops.http import HttpServer
    from nlets_switch.ops.metrics import Metrics
    from nlets_switch.ops.mqtt import MqttPublisher
    from nlets_switch.server.switch import Switch


class Monitoring:
    """What :func:`attach_monitoring` started; ``await stop()`` ends it."""

    def __init__(self, switch: Switch, cfg: Config, monitor: Monitor, metrics: Metrics,
                 http_settings: HttpSettings) -> None:
        self.switch = switch
        self.cfg = cfg
        self.monitor = monitor
        self.metrics = metrics
        self.http_settings = http_settings
        self.mqtt: MqttPublisher | None = None
        self.http: HttpServer | None = None
        self.held: dict[str, int] = {}
        self.last_stats: Event | None = None
        #: The node registry and this node's database (a PostgreSQL store), else None.
        self.cluster: ClusterView | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def http_address(self) -> tuple[str, int] | None:
        """Where the HTTP server listens (the real port when 0 was asked)."""
        return self.http.address if self.http is not None else None

    async def refresh_held(self) -> dict[str, int]:
        """Query the held queues now (in a thread) and remember them."""
        j = self.switch.journal
        self.held = await asyncio.to_thread(held_counts, getattr(j, "url", j.path))
        return self.held

    async def snapshot(self) -> Event:
        """A fresh stats snapshot (queries the held queues)."""
        await self.refresh_held()
        return stats_snapshot(self.switch, self.monitor, self.held, self.cluster)

    async def _tick(self, interval: float) -> None:
        # One shared ticker: the held-queue query runs once per interval however
        # many browsers and brokers listen; the snapshot goes through the fan-out.
        while True:
            try:
                snap = await self.snapshot()
            except Exception as e:  # monitoring must not die of a failed query
                log.warning("stats_failed", error=type(e).__name__)
            else:
                self.last_stats = snap
                self.monitor.publish(snap)
            await asyncio.sleep(interval)

    def start_ticker(self, interval: float) -> None:
        """Start publishing stats snapshots every ``interval`` seconds."""
        self._ticker = asyncio.create_task(self._tick(interval), name="monitor-stats")

    async def stop(self) -> None:
        """Stop the HTTP server, MQTT publisher and ticker; detach the observers."""
        if self.cluster is not None:
            await self.cluster.stop()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self.http is not None:
            await self.http.stop()
        if self.mqtt is not None:
            await self.mqtt.stop()
        for obs in (self.monitor, self.metrics.observe):
            with contextlib.suppress(ValueError):
                self.switch.observers.remove(obs)


async def attach_monitoring(switch: Switch, cfg: Config, http: str | None = None) -> Monitoring:
    """Attach the event fan-out, metrics, MQTT (when configured) and the HTTP server.

    ``http`` is the ``serve --http`` value (``HOST:PORT`` or ``off``); None
    takes ``http.listen`` from the configuration, else 127.0.0.1:7331. Call
    it before or after ``switch.start()``; the HTTP server is up on return.
    """
    from nlets_switch.ops.metrics import Metrics

    monitor = Monitor()
    metrics = Metrics(switch, monitor)
    hs = http_settings(cfg, http_address_from(http, cfg))
    mon = Monitoring(switch, cfg, monitor, metrics, hs)
    switch.observers.append(monitor)
    switch.observers.append(metrics.observe)
    from nlets_switch.ops.cluster_view import ClusterView, wants_view

    if wants_view(switch):
        # Every node of the cluster, and this node's database (docs/cluster.md).
        mon.cluster = metrics.collector.cluster = ClusterView(switch, monitor)
        mon.cluster.start()
    ms = mqtt_settings(cfg)
    # HTTP first: if its port is taken, nothing has been said on MQTT (a
    # second switch failing to start must not mark the running one offline).
    if hs.listen is not None:
        # Imported only when it serves: aiohttp is 11 MiB of the switch's memory.
        from nlets_switch.ops.http import HttpServer

        mon.http = HttpServer(mon, hs)
        await mon.http.start()
    if ms is not None:
        from nlets_switch.ops.mqtt import MqttPublisher

        mon.mqtt = MqttPublisher(switch, monitor, ms, mon.cluster)
        mon.mqtt.start()
    mon.start_ticker(min(hs.stats_interval, ms.stats_interval if ms else hs.stats_interval))
    return mon
