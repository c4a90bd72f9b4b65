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
* :class:`NlService` is the switch's own endpoint ``NL0000000``: the
  all-state fan-out of ``DQ``/``RQ`` to ``NL`` and the help files
  ``SSFFFHELP``/``SSFFFUPDT`` (PROTOCOL part 5), kept in the journal database.
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

import asyncio
import functools
import itertools
import re
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from nlets_switch.config import Config
from nlets_switch.core.delivery import Delivery
from nlets_switch.core.directory import Directory
from nlets_switch.errors import AdapterError, ErCode, MessageError
from nlets_switch.log import get_logger
from nlets_switch.server.switch import LocalEndpoint, Switch
from nlets_switch.services import adapter as ad
from nlets_switch.services.settings import AdapterSection, NlSettings
from nlets_switch.store.base import HelpFile, HelpStore
from nlets_switch.store.sqlite import journal_op
from nlets_switch.wire.message import (
    SWITCH_ORI,
    OutputMessage,
    er_text,
    format_message,
    help_address,
    parse_output,
)
from nlets_switch.wire.schema import SchemaSet, is_no_record

log = get_logger("services")

#: PROTOCOL part 5: how long the NL fan-out gathers answers, unless configured.
DEFAULT_GATHER_S: Final[float] = NlSettings.model_fields["gather_s"].default
#: The keys the NL service fans out to every state (PROTOCOL part 5).
FANOUT_KEYS: Final = frozenset({"DQ", "RQ"})
#: Destinations per fan-out message (PROTOCOL part 2: DQ and RQ take at most 5).
_FANOUT_CHUNK: Final = 5

#: Help files there are on a new journal (docs/services.md).
SEED_HELP: Final[Mapping[tuple[str, str], str]] = {
    ("NL", "NLE"): (
        "NLETS SWITCH EMULATOR - HELP\n"
        "ALL-STATE INQUIRIES: SEND DQ OR RQ TO NL. EVERY STATE IS ASKED; HITS COME\n"
        "BACK AS THEY ARRIVE, THEN A SUMMARY OF HITS, NO RECORDS AND NO ANSWERS.\n"
        "ICE LESC AND DHS LEIS: SEND IAQ OR GPQ TO AX.\n"
        "HELP FILES: AM TO SSFFFHELP READS FILE FFF OF STATE SS (NLNLEHELP IS THIS\n"
        "FILE); AM TO SSFFFUPDT REPLACES IT (ORIS OF STATE SS ONLY)."
    ),
    ("NL", "AXS"): (
        "ICE LESC / DHS LEIS (VTICE0900, ADDRESS AX)\n"
        "IAQ: PUR ATN PHN NAM DOB SEX POB CUS OFF [ARN FBI SID OLN]. AN AM STARTING\n"
        "ACK COMES AT ONCE, THE IAR LATER.\n"
        "GPQ: NAM/LAST,FIRST [DOB/], SOC/, PPN/, ARN/, ADR/ OR DIN/. GPR LISTS ONE\n"
        "LINE PER PERSON, EACH STARTING DIN/; A GPQ WITH DIN/ GETS THE FULL RECORD."
    ),
}

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
                      settings=section.settings)


# --------------------------------------------------------------------------
# Help-file operations (run on the journal's writer thread, through journal_op)
# --------------------------------------------------------------------------


def _help_init(store: HelpStore, at: float) -> None:
    store.seed_help_files(HelpFile(s, f, text, at, SWITCH_ORI)
                          for (s, f), text in SEED_HELP.items())


def _help_get(store: HelpStore, state: str, file: str) -> str | None:
    hf = store.help_file(state, file)
    return None if hf is None else hf.text


def _help_put(store: HelpStore, state: str, file: str, text: str, by: str, at: float) -> None:
    store.put_help_file(HelpFile(state, file, text, at, by))


# --------------------------------------------------------------------------
# Endpoints
# --------------------------------------------------------------------------


class _LocalEndpoint(LocalEndpoint):
    """An endpoint in this process: a task per delivery, acknowledged when done."""

    def __init__(self, switch: Switch, ori: str) -> None:
        super().__init__(switch, ori)
        self.tasks: set[asyncio.Task[None]] = set()
        self.log = log.bind(ori=ori)

    def transmit(self, seq: int, p: Delivery) -> None:
        """Run the delivery's handler in a task; it is acknowledged when that ends."""
        task = asyncio.get_running_loop().create_task(self._run(seq, p),
                                                      name=f"svc-{self.ori}-{p.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, seq: int, p: Delivery) -> None:
        try:
            await self.deliver(p)
        except asyncio.CancelledError:
            raise  # stopping: the delivery stays owed in the journal
        except Exception as e:  # one bad delivery must not stop the service
            self.log.error("service_failed", mke=p.key, msg_id=p.msg_id,
                           error=type(e).__name__)
        self.done(seq)

    async def deliver(self, p: Delivery) -> None:
        """Handle one delivery (to be provided)."""
        raise NotImplementedError

    async def send(self, link_ori: str, text: str) -> None:
        """Give an input message to the switch as ``link_ori``; wait until it is journaled."""
        await send_local(self.switch, link_ori, text)

    async def close(self) -> None:
        """Detach and cancel running handlers; what they had stays owed in the journal."""
        self.switch.detach(self)
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def send_local(switch: Switch, link_ori: str, text: str) -> None:
    """``switch.accept`` as a coroutine that ends when the message is durable."""
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(ConnectionError(f"journal write failed: {type(exc).__name__}"))
        else:
            fut.set_result(None)

    try:
        switch.accept(link_ori, text, done)
    except RuntimeError as e:  # the journal is closed: the switch is stopping
        raise ConnectionError(str(e)) from None
    await fut


@dataclass(slots=True)
class _Host:
    """One enabled adapter in this process, with its context."""

    loaded: ad.Loaded
    oris: tuple[str, ...]
    ctx: ad.Context
    started: bool = False


class ServiceEndpoint(_LocalEndpoint):
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
# The NL services
# --------------------------------------------------------------------------


@dataclass(slots=True)
class _FanOut:
    """One all-state inquiry being gathered."""

    key: str
    inquirer: str
    control: str | None
    asked: tuple[str, ...]
    hits: list[str] = field(default_factory=list)
    no_record: list[str] = field(default_factory=list)
    out_of_service: list[str] = field(default_factory=list)
    answers: asyncio.Queue[OutputMessage] = field(default_factory=asyncio.Queue)

    def answered(self) -> set[str]:
        return set(self.hits) | set(self.no_record) | set(self.out_of_service)


_SM_DEST = re.compile(r"^DESTINATION: ([A-Z]{2})\b", re.MULTILINE)
#: Handler of a key delivered to NL0000000 (others may register e.g. NLQ).
NlHandler = Callable[[OutputMessage, Delivery], Any]


class NlService(_LocalEndpoint):
    """The switch's own endpoint ``NL0000000``: NL fan-out and help files (part 5)."""

    def __init__(self, switch: Switch, gather_s: float = DEFAULT_GATHER_S) -> None:
        super().__init__(switch, SWITCH_ORI)
        self.gather_s = gather_s
        self.fanouts: dict[str, _FanOut] = {}
        self._ids = itertools.count(1)
        #: Further keys addressed to NL (e.g. a message-log query), by key.
        self.handlers: dict[str, NlHandler] = {}

    async def deliver(self, p: Delivery) -> None:
        """Dispatch by key and address: fan-out, answers to it, help files."""
        out = parse_output(self.render(p))
        if p.key in FANOUT_KEYS and p.addressed == "NL":
            await self.fan_out(out)
        elif p.key == "AM" and help_address(p.addressed) is not None:
            await self.help_file(out, p.addressed)
        elif out.control is not None and out.control in self.fanouts:
            self.fanouts[out.control].answers.put_nowait(out)
        elif p.key in self.handlers:
            result = self.handlers[p.key](out, p)
            if asyncio.iscoroutine(result):
                await result
        else:
            self.log.debug("not_handled", mke=p.key, msg_id=p.msg_id)

    # -- fan-out ---------------------------------------------------------------

    def _control(self) -> str:
        # Unique per switch run and short (the control field is 1-10 characters).
        return f"NL{int(time.time()) % 100000:05d}{next(self._ids) % 1000:03d}"

    async def fan_out(self, out: OutputMessage) -> None:
        """Ask every state that takes the key, gather, forward hits, then summarise."""
        directory = self.switch.directory
        states = []
        for s in directory.states():
            ct = directory.control_terminal(s)
            if ct is not None and ct.takes(out.key):
                states.append(s)
        ctl = self._control()
        fo = _FanOut(out.key, out.sender, out.control, tuple(states))
        self.fanouts[ctl] = fo
        body = out.text.strip("\r\n")
        try:
            for i in range(0, len(states), _FANOUT_CHUNK):
                dests = ",".join(states[i:i + _FANOUT_CHUNK])
                await self.send(SWITCH_ORI, format_message(out.key, SWITCH_ORI, dests, ctl, body))
        except BaseException:
            del self.fanouts[ctl]
            raise
        # The inquiry is acknowledged once the states' inquiries are journaled;
        # the gathering runs outside the window, so that the answers (which
        # come to this same endpoint) are never stuck behind gatherings.
        task = asyncio.get_running_loop().create_task(self._finish(ctl, fo),
                                                      name=f"nl-fanout-{ctl}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _finish(self, ctl: str, fo: _FanOut) -> None:
        try:
            await self._gather(fo)
        finally:
            del self.fanouts[ctl]
        try:
            await self.send(SWITCH_ORI, self._reply(fo, self._summary(fo)))
        except ConnectionError:
            self.log.warning("fanout_summary_lost", control=ctl)

    async def _gather(self, fo: _FanOut) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.gather_s
        want = set(fo.asked)
        while not want <= fo.answered():
            left = deadline - loop.time()
            if left <= 0:
                return
            try:
                ans = await asyncio.wait_for(fo.answers.get(), left)
            except TimeoutError:
                return
            await self._take(fo, ans)

    async def _take(self, fo: _FanOut, ans: OutputMessage) -> None:
        if ans.key in ("SM", "ER"):
            # The switch could not deliver to those states (not signed on, or
            # they do not take the key): they will not answer.
            for state in _SM_DEST.findall(ans.text):
                if state in fo.asked and state not in fo.answered():
                    fo.out_of_service.append(state)
            return
        state = ans.sender[:2]
        if state not in fo.asked:
            return
        if is_no_record(ans.text):
            if state not in fo.hits and state not in fo.no_record:
                fo.no_record.append(state)
            return
        if state in fo.no_record:
            fo.no_record.remove(state)
        if state not in fo.hits:
            fo.hits.append(state)
        text = f"NL ALL-STATE {fo.key} HIT FROM {state} ({ans.sender})\n{ans.text.strip()}"
        await self.send(SWITCH_ORI, self._reply(fo, text, ans.key))

    def _reply(self, fo: _FanOut, text: str, key: str | None = None) -> str:
        schema = self.switch.schemas.get(fo.key)
        rkey = key or (schema.response if schema is not None and schema.response else "AM")
        return format_message(rkey, SWITCH_ORI, fo.inquirer, fo.control or None, text)

    @staticmethod
    def _summary(fo: _FanOut) -> str:
        answered = fo.answered()
        silent = [s for s in fo.asked if s not in answered]

        def line(label: str, states: Sequence[str]) -> str:
            text = f"{label} ({len(states)}): {' '.join(sorted(states)) or '-'}"
            return "\n".join(textwrap.wrap(text, 80, subsequent_indent="    "))

        return "\n".join([
            f"NL ALL-STATE {fo.key} SUMMARY, {len(fo.asked)} STATES ASKED",
            line("HIT", fo.hits),
            line("NO RECORD IN", fo.no_record),
            line("NO ANSWER IN TIME", silent),
            line("OUT OF SERVICE", fo.out_of_service),
        ])

    # -- help files ------------------------------------------------------------

    async def help_file(self, out: OutputMessage, address: str) -> None:
        """``SSFFFHELP`` sends file FFF of state SS; ``SSFFFUPDT`` replaces it."""
        parts = help_address(address)
        assert parts is not None
        state, file, func = parts
        journal = self.switch.journal
        ctl = out.control or None
        head = format_message("AM", SWITCH_ORI, out.sender, ctl, "")
        original = format_message("AM", out.sender, address, ctl, out.text.strip())
        if func == "HELP":
            text = await journal.call(journal_op(functools.partial(_help_get, state=state,
                                                                file=file)))
            if text is None:
                err = MessageError.naming(ErCode.DESTINATION, "NO HELP FILE", [address])
                await self.send(SWITCH_ORI, format_message("ER", SWITCH_ORI, out.sender, ctl,
                                                            er_text(err, original)))
                return
            await self.send(SWITCH_ORI, f"{head}HELP FILE {state}{file}\n{text}")
            return
        if out.sender[:2] != state and out.sender != SWITCH_ORI:
            err = MessageError(ErCode.KEY_NOT_ALLOWED,
                               f"ONLY ORIS OF {state} MAY UPDATE {state}{file}")
            self.switch.audit("help_update", f"{state}{file}", "failure", ori=out.sender)
            await self.send(SWITCH_ORI, format_message("ER", SWITCH_ORI, out.sender, ctl,
                                                        er_text(err, original)))
            return
        new = out.text.strip("\r\n")
        await journal.call(journal_op(functools.partial(_help_put, state=state, file=file,
                                                        text=new, by=out.sender,
                                                        at=time.time())))
        self.switch.audit("help_update", f"{state}{file}", "success", ori=out.sender)
        await self.send(SWITCH_ORI, f"{head}HELP FILE {state}{file} UPDATED")


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
        self.nl = NlService(switch, switch.config.services.nl.gather_s)
        self.endpoints: dict[str, ServiceEndpoint] = {}
        self.hosts: list[_Host] = []

    def install(self) -> None:
        """Start and stop with the switch."""
        self.switch.on_start.append(self.start)
        self.switch.on_stop.append(self.stop)

    async def start(self) -> None:
        """Create the help table, attach NL, start adapters and attach their ORIs."""
        sw = self.switch
        await sw.journal.call(journal_op(functools.partial(_help_init, at=time.time())))
        sw.attach(self.nl)
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
