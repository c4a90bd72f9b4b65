"""The switch's own endpoint ``NL0000000`` (PROTOCOL part 5; docs/services.md).

* all-state inquiries: ``DQ``, ``RQ``, ``IQ`` and ``SOQ`` to ``NL`` go to every
  state control terminal that takes the key; the answers are gathered, hits
  forwarded, and a summary of who answered, had no record, did not answer in
  time or was out of service ends it;
* regional inquiries: ``DQG``/``RQG`` to a region (:mod:`nlets_switch.core.regions`)
  become a ``DQ``/``RQ`` to each state of the region, gathered the same way;
* help files ``SSFFFFUNC``: ``HELP`` reads file FFF of state SS, ``UPDT``
  replaces it, ``APND`` adds to its end, ``CNCL`` removes it; only ORIs of
  state SS (or the switch) may change a file. Files are kept in the journal
  database.
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
from typing import Any, Final

from nlets_switch.core.delivery import Delivery
from nlets_switch.core.events import Delivered, Routed, SwitchEvent
from nlets_switch.core.regions import REGIONAL_KEYS, REGIONS
from nlets_switch.errors import ErCode, MessageError
from nlets_switch.server.switch import Switch
from nlets_switch.services import orion
from nlets_switch.services.endpoint import InProcessEndpoint
from nlets_switch.services.hitclock import DEFAULT_DEADLINES, HitClock, PendingYq
from nlets_switch.services.settings import NlSettings
from nlets_switch.store.base import (
    OrionRecord,
)
from nlets_switch.store.journal_ops import help_append as _help_append
from nlets_switch.store.journal_ops import help_delete as _help_delete
from nlets_switch.store.journal_ops import help_get as _help_get
from nlets_switch.store.journal_ops import help_put as _help_put
from nlets_switch.store.journal_ops import help_seed
from nlets_switch.store.journal_ops import logged_message as _yq_message
from nlets_switch.store.journal_ops import orion_put as _orion_put
from nlets_switch.store.journal_ops import orion_records as orion_records
from nlets_switch.store.sqlite import journal_op
from nlets_switch.wire.message import (
    QUOTE_LEN,
    SWITCH_ORI,
    OutputMessage,
    er_text,
    format_message,
    help_address,
    parse_output,
)
from nlets_switch.wire.schema import is_no_record

#: PROTOCOL part 5: how long the NL fan-out gathers answers, unless configured.
DEFAULT_GATHER_S: Final[float] = NlSettings.model_fields["gather_s"].default
#: The keys the NL service fans out to every state: Nlets' four (docs/protocol.md part 5).
FANOUT_KEYS: Final = frozenset({"DQ", "RQ", "IQ", "SOQ"})
#: Destinations per fan-out message (PROTOCOL part 2: these keys take at most 5).
_FANOUT_CHUNK: Final = 5

#: Help files there are on a new journal (docs/services.md).
SEED_HELP: Final[Mapping[tuple[str, str], str]] = {
    ("NL", "NLE"): (
        "NLETS SWITCH EMULATOR - HELP\n"
        "ALL-STATE INQUIRIES: SEND DQ, RQ, IQ OR SOQ TO NL. EVERY STATE IS ASKED;\n"
        "HITS COME BACK AS THEY ARRIVE, THEN A SUMMARY OF HITS, NO RECORDS AND NO\n"
        "ANSWERS. REGIONS: DQG OR RQG TO A REGION RA-RK (FILE NLREG).\n"
        "ICE LESC AND DHS LEIS: SEND IAQ OR GPQ TO AX.\n"
        "HELP FILES: AM TO SSFFFHELP READS FILE FFF OF STATE SS (NLNLEHELP IS THIS\n"
        "FILE); SSFFFUPDT REPLACES IT, SSFFFAPND ADDS TO IT, SSFFFCNCL REMOVES IT\n"
        "(ORIS OF STATE SS ONLY)."
    ),
    ("NL", "REG"): "REGIONS FOR DQG AND RQG\n" + "\n".join(
        f"{code} {name}: {' '.join(states)}" for code, (name, states) in REGIONS.items()),
    ("NL", "AXS"): (
        "ICE LESC / DHS LEIS (VTICE0900, ADDRESS AX)\n"
        "IAQ: PUR ATN PHN NAM DOB SEX POB CUS OFF [ARN FBI SID OLN]. AN AM STARTING\n"
        "ACK COMES AT ONCE, THE IAR LATER.\n"
        "GPQ: NAM/LAST,FIRST [DOB/], SOC/, PPN/, ARN/, ADR/ OR DIN/. GPR LISTS ONE\n"
        "LINE PER PERSON, EACH STARTING DIN/; A GPQ WITH DIN/ GETS THE FULL RECORD."
    ),
}


# --------------------------------------------------------------------------
# Help-file operations (run on the journal's writer thread, through journal_op)
# --------------------------------------------------------------------------


def help_init(at: float) -> Callable[[Any], None]:
    """The journal operation that stores the seed help files not there yet."""
    files = tuple((st, f, text) for (st, f), text in SEED_HELP.items())
    return journal_op(functools.partial(help_seed, files=files, at=at, by=SWITCH_ORI))


#: The SM a requester gets when a hit confirmation is not answered in time:
#: the project's own code, beside Nlets' .01. .02. .04. (docs/protocol-choices.md).
YQ_LATE: Final = ".09. HIT CONFIRMATION NOT ANSWERED IN TIME, SEND SECOND REQUEST"
_PRI = re.compile(r"(?:^|[.\s])PRI/([UR])(?=[.\s]|$)")
#: How often the NL service looks at the hit-confirmation clock (seconds).
CLOCK_TICK_S: Final = 1.0


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
    #: ``ALL-STATE``, or ``REGION RG PACIFIC`` for a regional inquiry.
    scope: str
    #: The key the inquirer sent (``DQG`` for a regional ``DQ``).
    sent_key: str
    hits: list[str] = field(default_factory=list)
    no_record: list[str] = field(default_factory=list)
    out_of_service: list[str] = field(default_factory=list)
    answers: asyncio.Queue[OutputMessage] = field(default_factory=asyncio.Queue)

    def answered(self) -> set[str]:
        return set(self.hits) | set(self.no_record) | set(self.out_of_service)


_SM_DEST = re.compile(r"^DESTINATION: ([A-Z]{2})\b", re.MULTILINE)
#: Handler of a key delivered to NL0000000 (others may register e.g. NLQ).
NlHandler = Callable[[OutputMessage, Delivery], Any]


class NlService(InProcessEndpoint):
    """The switch's own endpoint ``NL0000000``: NL fan-out and help files (part 5)."""

    def __init__(self, switch: Switch, gather_s: float = DEFAULT_GATHER_S,
                 yq_deadlines: Mapping[str, float] | None = None) -> None:
        super().__init__(switch, SWITCH_ORI)
        self.gather_s = gather_s
        #: Hit confirmations owed an answer (services/hitclock.py).
        self.clock = HitClock(dict(yq_deadlines or DEFAULT_DEADLINES))
        self.fanouts: dict[str, _FanOut] = {}
        self._ids = itertools.count(1)
        #: Further keys addressed to NL (e.g. a message-log query), by key.
        self.handlers: dict[str, NlHandler] = {}

    async def deliver(self, p: Delivery) -> None:
        """Dispatch by key and address: fan-out, answers to it, help files."""
        out = parse_output(self.render(p))
        if p.key in FANOUT_KEYS and p.addressed == "NL":
            await self.fan_out(out)
        elif p.key in REGIONAL_KEYS and p.addressed in REGIONS:
            await self.fan_out(out, p.addressed)
        elif p.key in ("TQ", *orion.CHANGE_KEYS) and p.addressed == "OD":
            await self.orion(out, p.msg_id)
        elif p.key == "AM" and help_address(p.addressed) is not None:
            await self.help_file(out, p.addressed, p.msg_id)
        elif out.control is not None and out.control in self.fanouts:
            self.fanouts[out.control].answers.put_nowait(out)
        elif p.key in self.handlers:
            result = self.handlers[p.key](out, p)
            if asyncio.iscoroutine(result):
                await result
        else:
            self.log.debug("not_handled", mke=p.key, msg_id=p.msg_id)

    # -- ORION -----------------------------------------------------------------

    async def orion(self, out: OutputMessage, msg_id: int | None = None) -> None:
        """``TQ`` looks up, ``TA``/``TU``/``TD`` change the directory (services/orion.py).

        ``msg_id``: the message's id in the journal; a refused change's ER is
        recorded as caused by it (and marks it refused)."""
        ctl = out.control or None
        schema = self.switch.schemas[out.key]
        f = dict(schema.validate(out.text.strip("\r\n")))
        directory = self.switch.directory
        if out.key == "TQ":
            text = orion.answer(orion.search(directory, f))
        else:
            action = orion.CHANGE_KEYS[out.key]
            try:
                _old, new = orion.change(directory, out.key, out.sender, f)
            except MessageError as err:
                self.switch.audit(action, f["ORI"], "failure", ori=out.sender)
                original = format_message(out.key, out.sender, "OD", ctl, out.text.strip())
                await self.send(SWITCH_ORI, format_message("ER", SWITCH_ORI, out.sender, ctl,
                                                            er_text(err, original)), msg_id)
                return
            rec = OrionRecord(f["ORI"], orion.to_record(new) if new is not None else None,
                              time.time(), out.sender)
            await self.switch.journal.call(journal_op(functools.partial(_orion_put, rec=rec)))
            self.switch.audit(action, f["ORI"], "success", ori=out.sender)
            verb = {"TA": "ADDED", "TU": "UPDATED", "TD": "DELETED"}[out.key]
            text = f"ORION RECORD {f['ORI']} {verb}"
            if new is not None:
                text += "\n" + orion.line(new)
        await self.send(SWITCH_ORI, format_message("TR", SWITCH_ORI, out.sender, ctl, text))

    # -- the hit-confirmation clock ----------------------------------------------

    def observe(self, event: SwitchEvent) -> None:
        """A switch observer: a delivered ``YQ`` starts a clock, a ``YR`` stops it."""
        if isinstance(event, Delivered) and event.key == "YQ":
            task = asyncio.get_running_loop().create_task(
                self._start_clock(event.msg_id, event.to, event.ts), name=f"yq-{event.msg_id}")
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        elif isinstance(event, Routed) and event.key == "YR":
            self.clock.answered(event.ori, event.to, event.control)

    async def _start_clock(self, msg_id: int, link: str, at: float) -> None:
        journal = self.switch.journal
        m = await journal.call(journal_op(functools.partial(_yq_message, msg_id=msg_id)))
        if m is None or m.origin is None:
            return
        found = _PRI.search(m.text or "")
        # The holder is the ORI addressed on that link (itself, or one its
        # control terminal serves).
        for holder in m.destinations:
            if holder == link or holder[:2] == link[:2]:
                self.clock.start(msg_id, m.origin, holder, m.control,
                                 found[1] if found else "R", at, (m.text or "")[:QUOTE_LEN])

    def start_clock_task(self) -> None:
        """Look at the clock every :data:`CLOCK_TICK_S` while the service runs."""
        async def run() -> None:
            while True:
                await asyncio.sleep(CLOCK_TICK_S)
                await self.check_clock(time.time())

        task = asyncio.get_running_loop().create_task(run(), name="nl-yq-clock")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def check_clock(self, now: float) -> list[PendingYq]:
        """Tell the requester and remind the holder of every clock run out by ``now``."""
        late = self.clock.due(now)
        for p in late:
            minutes = int(self.clock.deadlines[p.priority] // 60)
            sm = "\n".join([YQ_LATE, f"DESTINATION: {p.holder}",
                            f"PRIORITY {p.priority}: NO YR WITHIN {minutes} MINUTES",
                            "ORIGINAL MESSAGE", p.quote])
            reminder = (f"REMINDER: HIT CONFIRMATION REQUEST FROM {p.requester} NOT ANSWERED "
                        f"WITHIN {minutes} MINUTES (PRIORITY {p.priority}).\n"
                        f"ANSWER WITH YR TO {p.requester}"
                        + (f" ECHOING *{p.control}" if p.control else "") + ".")
            try:
                await self.send(SWITCH_ORI, format_message("SM", SWITCH_ORI, p.requester,
                                                           p.control, sm))
                await self.send(SWITCH_ORI, format_message("AM", SWITCH_ORI, p.holder,
                                                           p.control, reminder))
            except ConnectionError:
                self.log.warning("yq_late_lost", msg_id=p.msg_id)
                return late
            self.log.info("yq_not_answered_in_time", msg_id=p.msg_id, priority=p.priority)
        return late

    # -- fan-out ---------------------------------------------------------------

    def _control(self) -> str:
        # Unique per switch run and short (the control field is 1-10 characters).
        return f"NL{int(time.time()) % 100000:05d}{next(self._ids) % 1000:03d}"

    async def fan_out(self, out: OutputMessage, region: str | None = None) -> None:
        """Ask every state (of ``region``, if given) that takes the key, gather,
        forward hits, then summarise."""
        directory = self.switch.directory
        key, scope, wanted = out.key, "ALL-STATE", None
        if region is not None:
            name, members = REGIONS[region]
            key, scope, wanted = REGIONAL_KEYS[out.key], f"REGION {region} {name}", set(members)
        states = []
        for s in directory.states():
            ct = directory.control_terminal(s)
            if ct is not None and ct.takes(key) and (wanted is None or s in wanted):
                states.append(s)
        ctl = self._control()
        fo = _FanOut(key, out.sender, out.control, tuple(states), scope, out.key)
        self.fanouts[ctl] = fo
        body = out.text.strip("\r\n")
        try:
            for i in range(0, len(states), _FANOUT_CHUNK):
                dests = ",".join(states[i:i + _FANOUT_CHUNK])
                await self.send(SWITCH_ORI, format_message(key, SWITCH_ORI, dests, ctl, body))
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
        text = f"NL {fo.scope} {fo.key} HIT FROM {state} ({ans.sender})\n{ans.text.strip()}"
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
            f"NL {fo.scope} {fo.key} SUMMARY, {len(fo.asked)} STATES ASKED",
            line("HIT", fo.hits),
            line("NO RECORD IN", fo.no_record),
            line("NO ANSWER IN TIME", silent),
            line("OUT OF SERVICE", fo.out_of_service),
        ])

    # -- help files ------------------------------------------------------------

    async def help_file(self, out: OutputMessage, address: str,
                        msg_id: int | None = None) -> None:
        """``HELP`` sends file FFF of state SS; ``UPDT`` replaces it, ``APND`` adds
        to it, ``CNCL`` removes it (ORIs of state SS, or the switch, only).

        ``msg_id``: the request's id in the journal; an ER refusing it is
        recorded as caused by it, and marks it refused (``log`` shows so)."""
        parts = help_address(address)
        assert parts is not None
        state, file, func = parts
        journal = self.switch.journal
        ctl = out.control or None
        head = format_message("AM", SWITCH_ORI, out.sender, ctl, "")
        original = format_message("AM", out.sender, address, ctl, out.text.strip())

        async def refuse(err: MessageError) -> None:
            await self.send(SWITCH_ORI, format_message("ER", SWITCH_ORI, out.sender, ctl,
                                                        er_text(err, original)), msg_id)

        if func == "HELP":
            text = await journal.call(journal_op(functools.partial(_help_get, state=state,
                                                                file=file)))
            if text is None:
                await refuse(MessageError.naming(ErCode.DESTINATION, "NO HELP FILE", [address]))
                return
            await self.send(SWITCH_ORI, f"{head}HELP FILE {state}{file}\n{text}")
            return
        action = _HELP_ACTIONS[func]
        if out.sender[:2] != state and out.sender != SWITCH_ORI:
            err = MessageError(ErCode.KEY_NOT_ALLOWED,
                               f"ONLY ORIS OF {state} MAY {_HELP_VERB[func]} {state}{file}")
            self.switch.audit(action, f"{state}{file}", "failure", ori=out.sender)
            await refuse(err)
            return
        new = out.text.strip("\r\n")
        if func == "CNCL":
            existed = await journal.call(journal_op(functools.partial(
                _help_delete, state=state, file=file)))
            if not existed:
                await refuse(MessageError.naming(ErCode.DESTINATION, "NO HELP FILE", [address]))
                return
        else:
            op = _help_put if func == "UPDT" else _help_append
            await journal.call(journal_op(functools.partial(op, state=state, file=file, text=new,
                                                            by=out.sender, at=time.time())))
        self.switch.audit(action, f"{state}{file}", "success", ori=out.sender)
        await self.send(SWITCH_ORI, f"{head}HELP FILE {state}{file} {_HELP_DONE[func]}")


#: Audit action and answer of each help-file function that changes a file.
_HELP_ACTIONS: Final[Mapping[str, str]] = {
    "UPDT": "help_update", "APND": "help_append", "CNCL": "help_cancel"}
_HELP_VERB: Final[Mapping[str, str]] = {
    "UPDT": "UPDATE", "APND": "APPEND TO", "CNCL": "CANCEL"}
_HELP_DONE: Final[Mapping[str, str]] = {
    "UPDT": "UPDATED", "APND": "APPENDED", "CNCL": "CANCELLED"}
