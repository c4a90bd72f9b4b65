"""Local services: adapters hosted in the switch's process, and the NL services.

* :class:`ServiceEndpoint` is one ORI answered by adapters in this process
  (``VTICE0900`` by the LEIS adapter, every simulated control terminal by the
  states adapter). It is a :class:`~nlets_switch.server.switch.LocalEndpoint`,
  which the engine drives like a TCP link, so the router never knows the
  difference: each delivery is rendered
  to its output text, parsed back, and given to the adapter claiming its key;
  it counts as acknowledged when the handler is done, so at most ``window``
  handlers run at once per ORI (PROTOCOL part 1). Keys nobody handles are
  acknowledged and dropped.
* :class:`~nlets_switch.services.nl.NlService` is the switch's own endpoint
  ``NL0000000``: all-state and regional inquiries and the help files
  (PROTOCOL part 5), in :mod:`nlets_switch.services.nl`.
* :class:`Services` starts and stops all of it with the switch
  (``Switch.on_start``/``on_stop``; see :func:`nlets_switch.server.app.build_switch`).

Configuration: the ``services`` section (docs/services.md; its model is
:class:`nlets_switch.services.settings.ServicesSettings`)::

    services:
      nl: {gather_s: 5}
      leis: {enabled: true, delay_s: 2, seed: 1, persons: 10000, limit: 20}
      states: {simulate: all, latency_ms: 0, no_answer: 0.0, seed: 1}
      <third-party adapter name>: {enabled: true, ...}
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlets_switch.config import Config
from nlets_switch.core.delivery import Delivery
from nlets_switch.core.directory import Directory
from nlets_switch.errors import AdapterError
from nlets_switch.log import get_logger
from nlets_switch.server.control import LocalEndpoint
from nlets_switch.server.switch import Switch
from nlets_switch.services import adapter as ad
from nlets_switch.services.endpoint import InProcessEndpoint, send_local
from nlets_switch.services.nl import (
    DEFAULT_GATHER_S,
    FANOUT_KEYS,
    SEED_HELP,
    NlService,
    help_init,
    orion_records,
)
from nlets_switch.services.orion import apply_records
from nlets_switch.services.settings import AdapterSection
from nlets_switch.store.sqlite import journal_op
from nlets_switch.wire.message import SWITCH_ORI, parse_output
from nlets_switch.wire.schema import SchemaSet

# Re-exported: where these were before the NL service had a module of its own.
__all__ = [
    "DEFAULT_GATHER_S", "FANOUT_KEYS", "SEED_HELP", "InProcessEndpoint", "NlService",
    "ServiceEndpoint", "Services", "adapter_section", "check_oris", "context_for",
    "enabled_adapters", "load_adapters", "send_local",
]

log = get_logger("services")

# --------------------------------------------------------------------------
# Configuration: the adapters' sections (declared in services/settings.py)
# --------------------------------------------------------------------------


def adapter_section(cfg: Config, loaded: ad.Loaded) -> AdapterSection:
    """The checked ``services.<name>`` section of an adapter (its model's defaults
    when the file has none)."""
    model = getattr(loaded.adapter, "settings_model", None)
    return cfg.services.section(loaded.name, model if isinstance(model, type) else None)


def enabled_adapters(adapters: Sequence[ad.Loaded], cfg: Config) -> list[ad.Loaded]:
    """The adapters the configuration does not switch off (``enabled: false``)."""
    return [a for a in adapters if adapter_section(cfg, a).enabled]


def context_for(cfg: Config, loaded: ad.Loaded, oris: Sequence[str], directory: Directory,
                schemas: SchemaSet, send: ad.Sender) -> ad.Context:
    """The context an adapter gets from its host, with its section of ``cfg``."""
    section = adapter_section(cfg, loaded)
    return ad.Context(loaded.name, get_logger(f"adapter.{loaded.name}"), section.options,
                      Path(cfg.data_dir), oris, directory, schemas, send,
                      settings=section.settings, store_url=cfg.store.url)


# --------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _Host:
    """One enabled adapter in this process, with its context."""

    loaded: ad.Loaded
    oris: tuple[str, ...]
    ctx: ad.Context
    started: bool = False


class ServiceEndpoint(InProcessEndpoint):
    """One ORI answered by adapters in this process; dispatches by message key."""

    def __init__(self, switch: Switch, ori: str) -> None:
        super().__init__(switch, ori)
        self.handlers: dict[str, _Host] = {}

    async def deliver(self, p: Delivery) -> None:
        """Render, parse back (as a remote responder would) and hand to the adapter."""
        host = self.handlers.get(p.key)
        inquiry = ad.Inquiry.from_output(parse_output(self.render(p)), self.switch.schemas)
        # An inquiry nobody here can answer is logged and owes its sender SM .01.;
        # anything else without a handler (an AM, an ER about an answer) is done.
        sm = await ad.dispatch(host.loaded.adapter if host is not None else None,
                               host.ctx if host is not None else None, inquiry,
                               schemas=self.switch.schemas,
                               log=self.log.bind(msg_id=p.msg_id), addressed=p.addressed)
        if sm is not None:
            await self.send(SWITCH_ORI, sm)  # only the switch sends SM (PROTOCOL part 4)


# --------------------------------------------------------------------------
# Hosting
# --------------------------------------------------------------------------


def check_oris(loaded: ad.Loaded, oris: Sequence[str], directory: Directory) -> None:
    """Refuse ORIs the directory does not know (AdapterError)."""
    unknown = [o for o in oris if directory.entry(o) is None]
    if unknown:
        raise AdapterError(f"{loaded.describe()} answers as {', '.join(unknown)}, which the "
                           "directory does not know")


class Services:
    """Everything the switch answers itself: adapters in-process and NL."""

    def __init__(self, switch: Switch, adapters: Sequence[ad.Loaded]) -> None:
        self.switch = switch
        self.adapters = list(adapters)
        nl = switch.config.services.nl
        self.nl = NlService(switch, nl.gather_s, {"U": nl.yq_urgent_s, "R": nl.yq_routine_s})
        self.endpoints: dict[str, ServiceEndpoint] = {}
        self.hosts: list[_Host] = []

    def install(self) -> None:
        """Start and stop with the switch."""
        self.switch.on_start.append(self.start)
        self.switch.on_stop.append(self.stop)

    async def start(self) -> None:
        """Create the help table, attach NL, start adapters and attach their ORIs."""
        sw = self.switch
        await sw.journal.call(help_init(time.time()))
        # ORION changes made on the wire, over the configuration (services/orion.py).
        records = await sw.journal.call(journal_op(orion_records))
        apply_records(sw.directory, {e.ori: e for e in sw.config.entries}, records)
        sw.attach(self.nl)
        sw.observers.append(self.nl.observe)
        self.nl.start_clock_task()
        for loaded in self.adapters:
            section = adapter_section(sw.config, loaded)
            oris = tuple(loaded.adapter.oris(sw.directory, section.options))
            check_oris(loaded, oris, sw.directory)
            ctx = context_for(sw.config, loaded, oris, sw.directory, sw.schemas,
                              functools.partial(send_local, sw))
            host = _Host(loaded, oris, ctx)
            await loaded.adapter.start(ctx)
            host.started = True
            self.hosts.append(host)
            for ori in oris:
                ep = self.endpoints.get(ori)
                if ep is None:
                    ep = self.endpoints[ori] = ServiceEndpoint(sw, ori)
                for key in loaded.keys:
                    ep.handlers[key] = host
            log.info("adapter_started", adapter=loaded.name, version=loaded.version,
                     keys=sorted(loaded.keys), oris=len(oris))
        for ori, ep in self.endpoints.items():
            sw.attach(ep)
            sw.standby[ori] = self._standby(ori)

    def _standby(self, ori: str) -> Callable[[], LocalEndpoint]:
        def make() -> LocalEndpoint:
            return self._fresh(ori)

        return make

    def _fresh(self, ori: str) -> ServiceEndpoint:
        """A new in-process endpoint for ``ori``, after a responder's link ended."""
        old = self.endpoints[ori]
        ep = self.endpoints[ori] = ServiceEndpoint(self.switch, ori)
        ep.handlers.update(old.handlers)
        return ep

    async def stop(self) -> None:
        """Detach every local endpoint, then stop the adapters."""
        if self.nl.observe in self.switch.observers:
            self.switch.observers.remove(self.nl.observe)
        await self.nl.close()
        for ep in self.endpoints.values():
            await ep.close()
        for host in self.hosts:
            if host.started:
                try:
                    await host.loaded.adapter.stop()
                except Exception as e:  # stop the others anyway
                    log.error("adapter_stop_failed", adapter=host.loaded.name,
                              error=type(e).__name__)


def load_adapters(cfg: Config) -> list[ad.Loaded]:
    """Discover the installed adapters and keep those the configuration enables."""
    return enabled_adapters(ad.discover(), cfg)
