"""Routing events on MQTT (aiomqtt 2.x), behind a bounded queue.

Topic tree (docs/operators.md has the payloads)::

    <prefix>/<switch id>/status          retained {"state": "online"|"offline"}; the
                                         last will makes it "offline" if the switch dies
    <prefix>/<switch id>/links/<ORI>     retained {"ori", "state": "online"|"offline", ...}
    <prefix>/<switch id>/events/<key>    {"event": "received"|"routed"|"held"|"status"|
                                         "rejected"|"delivered"|"expired"|..., ...}
    <prefix>/<switch id>/stats           counters, every ``stats_interval`` seconds
    <prefix>/<switch id>/nodes/<node>    cluster mode: retained {"node", "state":
                                         "online"|"offline", "database": "up"|"down",
                                         "links"}; the node's last will makes it
                                         "offline" if the node dies (docs/cluster.md)

Payloads never carry message text (criminal-justice information). The
publisher reads from its own bounded subscription of the monitor: while the
broker is slow or away the queue fills and further events are dropped and
counted; the switch never waits for it. Reconnection uses capped exponential
backoff with jitter, and every (re)connection republishes the status and the
current state of every link, so retained link states are right again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from typing import TYPE_CHECKING, Any, Final

import aiomqtt

from nlets_switch.log import get_logger
from nlets_switch.ops.monitor import Event, Monitor, link_states
from nlets_switch.ops.settings import MqttSettings

if TYPE_CHECKING:
    from nlets_switch.ops.cluster_view import ClusterView
    from nlets_switch.server.switch import Switch

log = get_logger("mqtt")

#: The events that go to MQTT (audit events go to the audit trail; of them only the
#: security events come here too, on ``<base>/security/<type>``).
MQTT_EVENTS: Final = frozenset(
    {"routed", "held", "status", "rejected", "refused", "delivered", "expired",
     "refused_by_receiver", "link", "stats", "journal_fault", "audit",
     "audit_checkpoint", "review", "operator", "node"})
_RECEIVED_FROM: Final = frozenset({"routed", "held", "status", "rejected", "review"})
_TOPIC_UNSAFE: Final = str.maketrans({"/": "_", "#": "_", "+": "_", "\0": "_"})


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), default=str).encode()


def backoff_delay(attempt: int, low: float, high: float) -> float:
    """Capped exponential backoff with "equal jitter": half fixed, half random.

    Jitter spreads the reconnections of many switches after a broker restart.
    """
    cap = min(high, low * 2.0 ** min(attempt, 30))
    return cap / 2 + random.uniform(0, cap / 2)


class MqttPublisher:
    """Publishes the monitor's events to one broker; start(), then await stop()."""

    def __init__(self, switch: Switch, monitor: Monitor, settings: MqttSettings,
                 cluster: ClusterView | None = None) -> None:
        self.switch = switch
        self.monitor = monitor
        self.settings = settings
        #: A cluster node's view (its presence topic and last will), else None.
        self.cluster = cluster if cluster is not None and cluster.node_id else None
        self.base = f"{settings.prefix}/{switch.config.switch_id}"
        self.sub = monitor.subscribe("mqtt", settings.queue_size, MQTT_EVENTS)
        self.connected = asyncio.Event()
        #: Set while there is no connection (the complement of ``connected``).
        self.disconnected = asyncio.Event()
        self.disconnected.set()
        self.connections = 0
        self.published = 0
        self._client: aiomqtt.Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_stats = 0.0

    # -- topics -----------------------------------------------------------

    @property
    def status_topic(self) -> str:
        """``<prefix>/<switch id>/status``."""
        return f"{self.base}/status"

    def link_topic(self, ori: str) -> str:
        """``<prefix>/<switch id>/links/<ORI>``."""
        return f"{self.base}/links/{ori.translate(_TOPIC_UNSAFE)}"

    @property
    def node_topic(self) -> str | None:
        """``<prefix>/<switch id>/nodes/<node>`` of a cluster node, else None."""
        if self.cluster is None:
            return None
        return f"{self.base}/nodes/{self.cluster.node_id.translate(_TOPIC_UNSAFE)}"

    def _node(self, state: str) -> bytes:
        assert self.cluster is not None
        return _dumps({**self.cluster.presence(state),
                       "switch_id": self.switch.config.switch_id})

    def event_topic(self, key: str) -> str:
        """``<prefix>/<switch id>/events/<key>``."""
        return f"{self.base}/events/{(key or 'unknown').translate(_TOPIC_UNSAFE)}"

    def _status(self, state: str) -> bytes:
        return _dumps({"state": state, "switch_id": self.switch.config.switch_id,
                       "ts": round(time.time(), 3)})

    # -- life cycle -------------------------------------------------------

    def start(self) -> None:
        """Start the connect-publish-reconnect task."""
        self._task = asyncio.create_task(self._run(), name="mqtt-publisher")

    async def stop(self, drain: float = 2.0) -> None:
        """Publish what is queued (up to ``drain`` seconds), say offline, disconnect."""
        client = self._client
        if client is not None and self.connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.sub.queue.join(), drain)
            with contextlib.suppress(aiomqtt.MqttError, OSError, asyncio.TimeoutError):
                if self.node_topic is not None:
                    # One node of several stops: the node goes offline, not the switch.
                    await client.publish(self.node_topic, self._node("offline"), qos=1,
                                         retain=True, timeout=2)
                else:
                    await client.publish(self.status_topic, self._status("offline"), qos=1,
                                         retain=True, timeout=2)
        self.sub.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError, OSError):
                await self._task

    async def _run(self) -> None:
        s = self.settings
        attempt = 0
        ident = s.client_id or f"nlets-switch-{self.switch.config.switch_id}-{os.getpid()}"
        # A cluster node's will is its own presence: the switch runs on while another
        # node does (each node's topic says which are gone).
        will = (aiomqtt.Will(self.node_topic, self._node("offline"), qos=1, retain=True)
                if self.node_topic is not None else
                aiomqtt.Will(self.status_topic, self._status("offline"), qos=1, retain=True))
        while True:
            try:
                async with aiomqtt.Client(
                        s.host, s.port, identifier=ident, username=s.username,
                        password=s.password, will=will, keepalive=s.keepalive,
                        timeout=5) as client:
                    self._client = client
                    attempt = 0
                    self.connections += 1
                    await self._announce(client)
                    self.connected.set()
                    self.disconnected.clear()
                    log.info("mqtt_connected", broker=f"{s.host}:{s.port}")
                    await self._serve(client)
            except (aiomqtt.MqttError, OSError) as e:
                if self.connected.is_set() or attempt == 0:
                    log.warning("mqtt_disconnected", broker=f"{s.host}:{s.port}",
                                error=str(e)[:200])
            finally:
                self._client = None
                self.connected.clear()
                self.disconnected.set()
            await asyncio.sleep(backoff_delay(attempt, s.reconnect_min, s.reconnect_max))
            attempt += 1

    async def _announce(self, client: aiomqtt.Client) -> None:
        """On every connection: status online, and the current state of every link."""
        await client.publish(self.status_topic, self._status("online"), qos=1, retain=True,
                             timeout=5)
        if self.node_topic is not None:
            await client.publish(self.node_topic, self._node("online"), qos=1, retain=True,
                                 timeout=5)
        now = round(time.time(), 3)
        for ori, v in link_states(self.switch).items():
            await client.publish(self.link_topic(ori),
                                 _dumps({"ori": ori, "state": v["state"], "kind": v["kind"],
                                         "ts": now}),
                                 qos=1, retain=True, timeout=5)

    async def _serve(self, client: aiomqtt.Client) -> None:
        """Publish until the connection ends, even while there is nothing to publish."""
        pump = asyncio.create_task(self._pump(client), name="mqtt-pump")
        # The message iterator ends with MqttError when the broker goes away;
        # without it an idle publisher would not notice until its next event.
        watch = asyncio.create_task(self._watch(client), name="mqtt-watch")
        try:
            done, _ = await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (pump, watch):
                t.cancel()
            await asyncio.gather(pump, watch, return_exceptions=True)
        for t in done:
            t.result()  # re-raise the MqttError that ended it

    @staticmethod
    async def _watch(client: aiomqtt.Client) -> None:
        async for _ in client.messages:
            pass  # nothing is subscribed; only the disconnection matters

    async def _pump(self, client: aiomqtt.Client) -> None:
        while True:
            ev = await self.sub.get()
            try:
                await self._publish(client, ev)
            except BaseException:
                # The event in hand is lost with the connection: count it.
                self.monitor.dropped["mqtt"] = self.monitor.dropped.get("mqtt", 0) + 1
                raise
            finally:
                self.sub.queue.task_done()

    async def _publish(self, client: aiomqtt.Client, ev: Event) -> None:
        name = ev.get("event")
        sid = self.switch.config.switch_id
        if name == "audit":
            if not ev.get("security"):
                return  # other audits are for the trail only
            kind = str(ev.get("type") or "other").translate(_TOPIC_UNSAFE)
            await client.publish(f"{self.base}/security/{kind}",
                                 _dumps({**ev, "switch_id": sid}), qos=1)
        elif name == "link":
            ori = str(ev.get("ori", ""))
            await client.publish(self.link_topic(ori),
                                 _dumps({"ori": ori, "state": ev.get("state"),
                                         "kind": ev.get("kind"), "ts": ev.get("ts")}),
                                 qos=1, retain=True, timeout=5)
        elif name == "audit_checkpoint":
            # The signed head of the audit chain (ops/checkpoint.py), kept by the
            # broker: a copy of the anchor outside the switch's machine.
            cp = {k: v for k, v in ev.items() if k != "event"}
            await client.publish(f"{self.base}/audit/checkpoint", _dumps(cp), qos=1,
                                 retain=True, timeout=5)
        elif name == "node":
            # This node's presence changed (its database went or came back).
            if self.node_topic is None:
                return
            await client.publish(self.node_topic, _dumps({**ev, "switch_id": sid}), qos=1,
                                 retain=True, timeout=5)
        elif name == "journal_fault":
            # An alert: retained, so a monitoring system that connects later
            # still sees the journal failing (and its recovery replaces it).
            await client.publish(f"{self.base}/alert", _dumps({**ev, "switch_id": sid}),
                                 qos=1, retain=True, timeout=5)
        elif name == "stats":
            now = time.monotonic()
            if now - self._last_stats < self.settings.stats_interval * 0.9:
                return
            self._last_stats = now
            await client.publish(f"{self.base}/stats", _dumps(ev), qos=0)
        else:
            topic = self.event_topic(str(ev.get("key") or ""))
            if name in _RECEIVED_FROM:
                await client.publish(topic, _dumps(
                    {"event": "received", "switch_id": sid, "msg_id": ev.get("msg_id"),
                     "key": ev.get("key"), "ori": ev.get("ori"), "ts": ev.get("ts")}), qos=0)
            await client.publish(topic, _dumps({**ev, "switch_id": sid}), qos=0)
        self.published += 1
