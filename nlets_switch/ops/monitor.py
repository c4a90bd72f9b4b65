"""Live monitoring: the event fan-out, and the glue that attaches MQTT, HTTP and metrics.

The switch calls its observers synchronously on the hot path, so the one
observer installed here does only cheap things: bump a few integers, append
to a ring buffer, and ``put_nowait`` the event into each subscriber's bounded
queue. A subscriber that is slow (a broker that is down, a browser tab on a
bad network) loses events, which are counted, never messages (DESIGN.md,
"Monitoring never slows routing").

:func:`attach_monitoring` is what ``serve`` calls; this module also registers
the checkers of the ``mqtt``, ``http`` and ``api`` configuration sections, so
import it before loading a configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nlets_switch.config import Config, parse_address, register_section
from nlets_switch.core.events import Expired, Rejected, Routed, SwitchEvent
from nlets_switch.log import get_logger

if TYPE_CHECKING:
    from nlets_switch.ops.http import HttpServer
    from nlets_switch.ops.metrics import Metrics
    from nlets_switch.ops.mqtt import MqttPublisher
    from nlets_switch.server.switch import Switch

log = get_logger("monitor")

#: Where the operator HTTP server listens unless told otherwise (issue 4).
DEFAULT_HTTP: Final = ("127.0.0.1", 7331)
#: Events that describe the path of a message (what the dashboard lists).
ROUTING_EVENTS: Final = frozenset(
    {"routed", "held", "status", "rejected", "refused", "delivered", "expired",
     "refused_by_receiver"})

Event = dict[str, Any]


# --------------------------------------------------------------------------
# The fan-out.
# --------------------------------------------------------------------------


class Subscription:
    """One consumer of events: a bounded queue and the count of what it lost."""

    def __init__(self, monitor: Monitor, name: str, maxsize: int,
                 kinds: frozenset[str] | None) -> None:
        self.monitor = monitor
        self.name = name
        self.kinds = kinds
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.dropped = 0

    async def get(self) -> Event:
        """The next event (waits)."""
        return await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self.monitor.unsubscribe(self)


class Monitor:
    """Fans the switch's events out to subscribers without ever blocking the switch."""

    def __init__(self, recent: int = 100) -> None:
        self.subscriptions: list[Subscription] = []
        #: Events dropped per subscriber name, kept after a subscriber leaves.
        self.dropped: dict[str, int] = {}
        self.recent: deque[Event] = deque(maxlen=recent)
        self.events = 0
        #: ERs and SMs the switch made (for rates on the dashboard).
        self.er = 0
        self.sm = 0

    def subscribe(self, name: str, maxsize: int = 1000,
                  kinds: frozenset[str] | None = None) -> Subscription:
        """A new bounded subscription; ``kinds`` limits it to those event names."""
        sub = Subscription(self, name, maxsize, kinds)
        self.dropped.setdefault(name, 0)
        self.subscriptions.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove ``sub`` (idempotent)."""
        with contextlib.suppress(ValueError):
            self.subscriptions.remove(sub)

    def __call__(self, event: SwitchEvent) -> None:
        """The switch observer: cheap counting, then non-blocking fan-out (as JSON-able dicts)."""
        d = event.to_dict()
        self.events += 1
        if d["event"] in ROUTING_EVENTS:
            self.recent.append(d)
            if isinstance(event, Rejected):
                self.er += 1
            elif isinstance(event, Expired):
                if event.key not in ("SM", "ER"):
                    self.sm += 1
            elif isinstance(event, Routed):
                self.sm += len(event.sm)
        self.publish(d)

    def publish(self, event: Event) -> None:
        """Offer ``event`` to every subscriber; a full queue drops it and counts."""
        name = event.get("event")
        for sub in self.subscriptions:
            if sub.kinds is not None and name not in sub.kinds:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.dropped += 1
                self.dropped[sub.name] = self.dropped.get(sub.name, 0) + 1

    @property
    def dropped_total(self) -> int:
        """Events lost by all subscribers together."""
        return sum(self.dropped.values())


# --------------------------------------------------------------------------
# Snapshots (what the dashboard, the API, MQTT stats and status show).
# --------------------------------------------------------------------------


def held_counts(path: Path) -> dict[str, int]:
    """Deliveries still owed per destination link, from a read-only connection.

    Blocking: call it in a thread. An absent journal means nothing is owed.
    """
    from nlets_switch.store import journal

    if not Path(path).exists():
        return {}
    try:
        conn = journal.connect(Path(path), readonly=True)
    except sqlite3.Error:
        return {}
    try:
        rows = conn.execute(
            "SELECT link, COUNT(*) FROM deliveries WHERE state IN ('queued', 'held', 'sent') "
            "GROUP BY link").fetchall()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {str(link): int(n) for link, n in rows}


def link_states(switch: Switch) -> dict[str, dict[str, Any]]:
    """Every ORI that signs on (configured, not simulated) and every live endpoint."""
    out: dict[str, dict[str, Any]] = {}
    for e in switch.config.entries:
        if e.signs_on and not e.simulated:
            out[e.ori] = {"ori": e.ori, "name": e.name, "state": "offline", "kind": None,
                          "since": None}
    for ori, ep in switch.links.items():
        entry = switch.directory.entry(ori)
        out[ori] = {"ori": ori, "name": entry.name if entry else "", "kind": ep.kind,
                    "state": "online" if ep.ready else "offline",
                    "since": round(ep.signed_on_at, 3),
                    "outstanding": len(ep.outstanding),
                    "queued": len(ep.queue) + len(ep.urgent)}
    return dict(sorted(out.items()))


def stats_snapshot(switch: Switch, monitor: Monitor, held: Mapping[str, int]) -> Event:
    """A JSON-able picture of the counters (never message text)."""
    st = switch.stats
    by_key: dict[str, dict[str, int]] = {}
    for (key, outcome), n in list(st.messages.items()):
        by_key.setdefault(key, {})[outcome] = n
    links = link_states(switch)
    return {
        "event": "stats",
        "ts": round(time.time(), 3),
        "switch_id": switch.config.switch_id,
        "messages": by_key,
        "delivered": st.delivered,
        "naks": st.naks,
        "latency_avg_s": round(st.latency_sum / st.delivered, 6) if st.delivered else None,
        "latency_sum_s": round(st.latency_sum, 6),
        "er": monitor.er,
        "sm": monitor.sm,
        "links_online": sum(1 for v in links.values() if v["state"] == "online"),
        "links": {o: v["state"] for o, v in links.items()},
        "held": dict(sorted(held.items())),
        "dropped": dict(monitor.dropped),
        "journal_backlog": switch.journal.backlog,
    }


# --------------------------------------------------------------------------
# Configuration sections: mqtt, http, api.
# --------------------------------------------------------------------------

_MQTT_KEYS: Final = ("host", "port", "prefix", "client_id", "username", "password",
                     "queue_size", "stats_interval", "reconnect_min", "reconnect_max",
                     "keepalive")


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """The ``mqtt:`` section: where to publish events (absent: no MQTT)."""

    host: str
    port: int = 1883
    prefix: str = "nlets"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    queue_size: int = 1000
    stats_interval: float = 5.0
    reconnect_min: float = 0.5
    reconnect_max: float = 30.0
    keepalive: int = 30


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One bearer token of the ``api.tokens`` list; only its SHA-256 is kept."""

    name: str
    sha256: str
    see_text: bool = False


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The ``http:`` and ``api:`` sections."""

    listen: tuple[str, int] | None = DEFAULT_HTTP
    tokens: tuple[ApiToken, ...] = ()
    #: No ``api.tokens`` configured: loopback clients may read the API (never
    #: message text), as the demo world lets loopback links sign on.
    open_loopback: bool = True
    sse_queue: int = 500
    stats_interval: float = 1.0
    tokens_by_hash: dict[str, ApiToken] = field(default_factory=dict)


def _problems_mqtt(raw: Any) -> list[str]:
    p: list[str] = []
    if raw is None:
        return p
    if not isinstance(raw, dict):
        return ["mqtt: expected a mapping (host, port, prefix, ...)"]
    for k in sorted(set(raw) - set(_MQTT_KEYS)):
        p.append(f"mqtt.{k}: unknown key (known: {', '.join(_MQTT_KEYS)})")
    if not isinstance(raw.get("host"), str) or not raw.get("host"):
        p.append("mqtt.host: required, the broker's host name")
    port = raw.get("port", 1883)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        p.append(f"mqtt.port: expected a port number 1-65535, got {port!r}")
    prefix = raw.get("prefix", "nlets")
    if not isinstance(prefix, str) or not prefix or any(c in prefix for c in "#+\0"):
        p.append(f"mqtt.prefix: expected a topic prefix without # or +, got {prefix!r}")
    for k in ("client_id", "username", "password"):
        if k in raw and not isinstance(raw[k], str):
            p.append(f"mqtt.{k}: expected a string")
    q = raw.get("queue_size", 1000)
    if isinstance(q, bool) or not isinstance(q, int) or not 1 <= q <= 1_000_000:
        p.append(f"mqtt.queue_size: expected a whole number 1-1000000, got {q!r}")
    for k, lo in (("stats_interval", 0.1), ("reconnect_min", 0.01), ("reconnect_max", 0.01)):
        v = raw.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int | float) or v < lo):
            p.append(f"mqtt.{k}: expected a number of seconds >= {lo}, got {v!r}")
    ka = raw.get("keepalive", 30)
    if isinstance(ka, bool) or not isinstance(ka, int) or not 1 <= ka <= 65535:
        p.append(f"mqtt.keepalive: expected whole seconds 1-65535, got {ka!r}")
    return p


def _problems_http(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return ["http: expected a mapping (listen)"]
    p = [f"http.{k}: unknown key (known: listen)" for k in sorted(set(raw) - {"listen"})]
    listen = raw.get("listen")
    if listen is not None and listen != "off":
        try:
            parse_address(str(listen))
        except ValueError as e:
            p.append(f"http.listen: {e} (or 'off')")
    return p


def _problems_api(raw: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        return ["api: expected a mapping (tokens)"]
    p = [f"api.{k}: unknown key (known: tokens)" for k in sorted(set(raw) - {"tokens"})]
    tokens = raw.get("tokens", [])
    if not isinstance(tokens, list):
        return [*p, "api.tokens: expected a list of {name, token_sha256 | token, see_text}"]
    names: set[str] = set()
    for i, t in enumerate(tokens):
        at = f"api.tokens[{i}]"
        if not isinstance(t, dict):
            p.append(f"{at}: expected a mapping")
            continue
        for k in sorted(set(t) - {"name", "token", "token_sha256", "see_text"}):
            p.append(f"{at}.{k}: unknown key (known: name, token, token_sha256, see_text)")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            p.append(f"{at}.name: required")
        elif name in names:
            p.append(f"{at}.name: {name!r} appears twice")
        else:
            names.add(name)
        has_tok = isinstance(t.get("token"), str) and len(t["token"]) >= 16
        sha = t.get("token_sha256")
        has_sha = isinstance(sha, str) and len(sha) == 64 and all(
            c in "0123456789abcdef" for c in sha.lower())
        if "token" in t and not has_tok:
            p.append(f"{at}.token: expected a string of at least 16 characters")
        if "token_sha256" in t and not has_sha:
            p.append(f"{at}.token_sha256: expected 64 hex digits (sha256sum of the token)")
        if "token" not in t and "token_sha256" not in t:
            p.append(f"{at}: needs token_sha256 (or token)")
        if "see_text" in t and not isinstance(t["see_text"], bool):
            p.append(f"{at}.see_text: expected true or false")
    return p


register_section("mqtt", _problems_mqtt)
register_section("http", _problems_http)
register_section("api", _problems_api)


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a bearer token is configured."""
    return hashlib.sha256(token.encode()).hexdigest()


def mqtt_settings(cfg: Config) -> MqttSettings | None:
    """The MQTT settings of a (checked) configuration, or None when none is named."""
    raw = cfg.raw.get("mqtt")
    if not isinstance(raw, dict) or not raw.get("host"):
        return None
    return MqttSettings(
        host=str(raw["host"]), port=int(raw.get("port", 1883)),
        prefix=str(raw.get("prefix", "nlets")).strip("/"),
        client_id=raw.get("client_id"), username=raw.get("username"),
        password=raw.get("password"), queue_size=int(raw.get("queue_size", 1000)),
        stats_interval=float(raw.get("stats_interval", 5.0)),
        reconnect_min=float(raw.get("reconnect_min", 0.5)),
        reconnect_max=float(raw.get("reconnect_max", 30.0)),
        keepalive=int(raw.get("keepalive", 30)))


def http_address_from(arg: str | None, cfg: Config) -> tuple[str, int] | None:
    """The operator HTTP address: ``serve --http`` value, else ``http.listen``, else 7331.

    ``"off"`` (either place) turns the server off. Raises ValueError on a bad address.
    """
    value = arg
    if value is None:
        raw = cfg.raw.get("http")
        value = raw.get("listen") if isinstance(raw, dict) else None
    if value is None:
        return DEFAULT_HTTP
    if str(value).strip().lower() == "off":
        return None
    text = str(value)
    if text.startswith(":"):
        text = "127.0.0.1" + text
    return parse_address(text)


def http_settings(cfg: Config, listen: tuple[str, int] | None) -> HttpSettings:
    """The HTTP/API settings of a (checked) configuration."""
    raw = cfg.raw.get("api")
    tokens: list[ApiToken] = []
    configured = isinstance(raw, dict) and "tokens" in raw
    if isinstance(raw, dict):
        for t in raw.get("tokens") or []:
            sha = t.get("token_sha256") or token_hash(str(t["token"]))
            tokens.append(ApiToken(str(t["name"]), str(sha).lower(), bool(t.get("see_text"))))
    return HttpSettings(listen=listen, tokens=tuple(tokens), open_loopback=not configured,
                        tokens_by_hash={t.sha256: t for t in tokens})


# --------------------------------------------------------------------------
# Attaching everything to a switch.
# --------------------------------------------------------------------------


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
        self._ticker: asyncio.Task[None] | None = None

    @property
    def http_address(self) -> tuple[str, int] | None:
        """Where the HTTP server listens (the real port when 0 was asked)."""
        return self.http.address if self.http is not None else None

    async def refresh_held(self) -> dict[str, int]:
        """Query the held queues now (in a thread) and remember them."""
        self.held = await asyncio.to_thread(held_counts, self.switch.journal.path)
        return self.held

    async def snapshot(self) -> Event:
        """A fresh stats snapshot (queries the held queues)."""
        await self.refresh_held()
        return stats_snapshot(self.switch, self.monitor, self.held)

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
    from nlets_switch.ops.http import HttpServer
    from nlets_switch.ops.metrics import Metrics

    monitor = Monitor()
    metrics = Metrics(switch, monitor)
    hs = http_settings(cfg, http_address_from(http, cfg))
    mon = Monitoring(switch, cfg, monitor, metrics, hs)
    switch.observers.append(monitor)
    switch.observers.append(metrics.observe)
    ms = mqtt_settings(cfg)
    # HTTP first: if its port is taken, nothing has been said on MQTT (a
    # second switch failing to start must not mark the running one offline).
    if hs.listen is not None:
        mon.http = HttpServer(mon, hs)
        await mon.http.start()
    if ms is not None:
        from nlets_switch.ops.mqtt import MqttPublisher

        mon.mqtt = MqttPublisher(switch, monitor, ms)
        mon.mqtt.start()
    mon.start_ticker(min(hs.stats_interval, ms.stats_interval if ms else hs.stats_interval))
    return mon
