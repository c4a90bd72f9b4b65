"""Live monitoring: the event fan-out, and the glue that attaches MQTT, HTTP and metrics.

The switch calls its observers synchronously on the hot path, so the one
observer installed here does only cheap things: bump a few integers, append
to a ring buffer, and ``put_nowait`` the event into each subscriber's bounded
queue. A subscriber that is slow (a broker that is down, a browser tab on a
bad network) loses events, which are counted, never messages (DESIGN.md,
"Monitoring never slows routing").

:func:`attach_monitoring` is what ``serve`` calls. The ``mqtt``, ``http`` and
``api`` configuration sections are declared in :mod:`nlets_switch.ops.settings`
and read here from the typed configuration.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from nlets_switch.config import Config, parse_address
from nlets_switch.core.events import Expired, Rejected, Routed, SwitchEvent
from nlets_switch.errors import StoreError
from nlets_switch.log import get_logger
from nlets_switch.ops.settings import DEFAULT_HTTP, MqttSettings
from nlets_switch.ops.settings import token_hash as token_hash  # re-exported

if TYPE_CHECKING:
    from nlets_switch.server.switch import Switch

log = get_logger("monitor")

#: Events that describe the path of a message (what the dashboard lists).
ROUTING_EVENTS: Final = frozenset(
    {"routed", "held", "status", "rejected", "refused", "delivered", "expired",
     "refused_by_receiver", "journal_fault", "review", "operator"})

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
        #: The latest routing events, as they came (made dicts when read).
        self._recent: deque[SwitchEvent | Event] = deque(maxlen=recent)
        #: Event class -> its name in ``to_dict()`` (Routed's is its outcome).
        self._names: dict[type, str] = {}
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

    @property
    def recent(self) -> list[Event]:
        """The latest routing events (at most ``recent``), oldest first, as dicts."""
        return [e if isinstance(e, dict) else e.to_dict() for e in self._recent]

    def __call__(self, event: SwitchEvent) -> None:
        """The switch observer: cheap counting, then non-blocking fan-out (as JSON-able dicts).

        On the hot path (two events a message): an event becomes a dict only
        when a subscriber takes it, or when :attr:`recent` is read.
        """
        self.events += 1
        if isinstance(event, Routed):
            name = event.outcome
        else:
            name = self._names.get(type(event)) or self._name(event)
        if name in ROUTING_EVENTS:
            self._recent.append(event)
            if isinstance(event, Rejected):
                self.er += 1
            elif isinstance(event, Expired):
                if event.key not in ("SM", "ER"):
                    self.sm += 1
            elif isinstance(event, Routed):
                self.sm += len(event.sm)
        for sub in self.subscriptions:
            if sub.kinds is None or name in sub.kinds:
                self.publish(event.to_dict())
                break

    def _name(self, event: SwitchEvent) -> str:
        name: str = event.to_dict()["event"]
        self._names[type(event)] = name
        return name

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


def held_counts(path: Path | str) -> dict[str, int]:
    """Deliveries still owed per destination link, from a read-only store (a journal
    file, or a PostgreSQL store's URL).

    Blocking: call it in a thread. An absent or unreadable journal means nothing is owed.
    """
    from nlets_switch.store.postgres import is_postgres_url, open_pg_store
    from nlets_switch.store.sqlite import open_store

    if is_postgres_url(str(path)):
        try:
            with open_pg_store(str(path), readonly=True) as pg:
                return pg.owed_per_link()
        except StoreError:
            return {}
    if not Path(path).exists():
        return {}
    try:
        with open_store(Path(path), readonly=True) as store:
            return store.owed_per_link()
    except StoreError:
        return {}


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


#: The sorted ORIs that sign on, of the configuration last asked about.
_signing_on: tuple[Config | None, tuple[str, ...]] = (None, ())


def _configured_oris(cfg: Config) -> tuple[str, ...]:
    global _signing_on
    if _signing_on[0] is not cfg:
        _signing_on = (cfg, tuple(sorted(e.ori for e in cfg.entries
                                         if e.signs_on and not e.simulated)))
    return _signing_on[1]


def link_state_map(switch: Switch) -> dict[str, str]:
    """ORI -> ``online``/``offline``, sorted: :func:`link_states`' states alone.

    Made every second for the stats, so made cheaply: with 10,000 links
    :func:`link_states` took 13 to 33 ms of the event loop (issue 15).
    """
    links = switch.links
    out: dict[str, str] = {}
    for ori in _configured_oris(switch.config):
        ep = links.get(ori)
        out[ori] = "online" if ep is not None and ep.ready else "offline"
    extra = [ori for ori in links if ori not in out]  # services, say
    if extra:
        for ori in extra:
            out[ori] = "online" if links[ori].ready else "offline"
        out = dict(sorted(out.items()))  # nearly sorted: about linear
    return out


def stats_snapshot(switch: Switch, monitor: Monitor, held: Mapping[str, int],
                   cluster: Any = None) -> Event:
    """A JSON-able picture of the counters (never message text); with ``cluster`` (an
    :class:`~nlets_switch.ops.cluster_view.ClusterView`), every node and the database."""
    st = switch.stats
    by_key: dict[str, dict[str, int]] = {}
    for (key, outcome), n in list(st.messages.items()):
        by_key.setdefault(key, {})[outcome] = n
    links = link_state_map(switch)
    extra = {"cluster": cluster.snapshot()} if cluster is not None else {}
    return {
        **extra,
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
        "links_online": sum(1 for v in links.values() if v == "online"),
        "links": links,
        "held": dict(sorted(held.items())),
        "dropped": dict(monitor.dropped),
        "journal_backlog": switch.journal.backlog,
        "alerts": alerts(switch),
    }


def alerts(switch: Switch) -> list[Event]:
    """The journal faults in force (docs/operations.md says what each means)."""
    out: list[Event] = []
    for key, error in sorted(switch.engine.faults.items()):
        op, _, dest = key.partition(":")
        out.append({"alert": "journal_fault", "op": op, "error": error,
                    "destination": dest or None, "custody": "stopped"})
    return out


# --------------------------------------------------------------------------
# Configuration: the mqtt, http and api sections, as monitoring uses them.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One bearer token of the ``api.tokens`` list; only its SHA-256 is kept."""

    name: str
    sha256: str
    see_text: bool = False
    #: May act on the switch (``POST /api/unlock``).
    admin: bool = False
    #: read, see_text, operate, admin (implied ones included; ops.settings.granted).
    permissions: frozenset[str] = frozenset({"read"})

    def may(self, permission: str) -> bool:
        """Whether this token holds ``permission`` (``see_text`` also by the flag)."""
        if permission == "see_text" and self.see_text:
            return True
        if permission == "admin" and self.admin:
            return True
        return permission in self.permissions


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """What the HTTP server is told: its address and the API's tokens (``http``, ``api``)."""

    listen: tuple[str, int] | None = DEFAULT_HTTP
    tokens: tuple[ApiToken, ...] = ()
    #: No ``api.tokens`` configured: loopback clients may read the API (never
    #: message text), as the demo world lets loopback links sign on.
    open_loopback: bool = True
    sse_queue: int = 500
    #: ``/events`` streams at once (``http.sse_max``); past it a client gets 503.
    sse_max: int = 64
    #: How long a dashboard session lasts unused (``http.session_minutes``).
    session_s: float = 1800.0
    stats_interval: float = 1.0
    tokens_by_hash: dict[str, ApiToken] = field(default_factory=dict)


def mqtt_settings(cfg: Config) -> MqttSettings | None:
    """The MQTT settings of a (checked) configuration, or None when none is named."""
    return cfg.mqtt


def http_address_from(arg: str | None, cfg: Config) -> tuple[str, int] | None:
    """The operator HTTP address: ``serve --http`` value, else ``http.listen``, else 7331.

    ``"off"`` (either place) turns the server off. Raises ValueError on a bad address.
    """
    value = arg if arg is not None else cfg.http.listen
    if str(value).strip().lower() == "off":
        return None
    text = str(value)
    if text.startswith(":"):
        text = "127.0.0.1" + text
    return parse_address(text)


def http_settings(cfg: Config, listen: tuple[str, int] | None) -> HttpSettings:
    """The HTTP/API settings of a (checked) configuration."""
    tokens = [ApiToken(t.name, t.sha256, "see_text" in t.granted, "admin" in t.granted,
                       t.granted) for t in cfg.api.tokens]
    return HttpSettings(listen=listen, tokens=tuple(tokens), open_loopback=not cfg.api.configured,
                        sse_max=cfg.http.sse_max, session_s=cfg.http.session_minutes * 60,
                        tokens_by_hash={t.sha256: t for t in tokens})
