"""Custody's bookkeeping: message and delivery ids, input and output numbers, and
the rows one accepted message makes durable.

Everything a loop turn accepts gathers in one :class:`WriteGroup`; the engine
hands its :class:`~nlets_switch.store.records.Batch` to the store as one
commit, and only when that commit is done are the senders' ``A`` frames
released and the deliveries dispatched (PROTOCOL part 1, custody). Each loop
turn's group goes to the store at once, up to :data:`MAX_GROUPS` in flight: the
writer merges every group waiting into its next commit, so a message read
while a commit runs waits for that commit and its own, not for a group
held back in the switch. Past the bound the rest gathers into one bigger group.

Numbers (PROTOCOL part 3): ``in:<link>`` counts the input of each sending
link, ``out:<link>`` the output of each receiving link, 00001 to 99999; they
are rows of the batch like everything else, so a restart goes on counting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from nlets_switch.core.delivery import Delivery
from nlets_switch.core.directory import Directory
from nlets_switch.core.events import Expired, Rejected, Routed, SwitchEvent
from nlets_switch.core.router import Plan, Router
from nlets_switch.errors import MessageError, SmCode
from nlets_switch.store.records import (
    Batch,
    DeliveryRow,
    DoneRow,
    ExpiredRow,
    MessageRow,
    Recovered,
    RefusedRow,
)
from nlets_switch.wire.message import (
    SWITCH_ORI,
    Message,
    er_reason,
    er_text,
    next_number,
    parse_message,
    sm_text,
)
from nlets_switch.wire.schema import SchemaSet

#: Write groups handed to the store and not yet committed.
MAX_GROUPS: Final = 8
#: A first transmission still unacknowledged after this long is journaled as
#: 'sent' on its own; earlier, the acknowledgement's update records both.
SENT_GRACE: Final = 0.5

_LEAD: Final = " \r\n"


@dataclass
class Stats:
    """Counters for metrics; cheap to bump on the hot path."""

    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    naks: int = 0
    delivered: int = 0
    latency_sum: float = 0.0
    #: Journal operations that failed, per operation (write, read-back, expiry).
    journal_failures: dict[str, int] = field(default_factory=dict)

    def count(self, key: str, outcome: str) -> None:
        """Bump the counter of messages of ``key`` that ended as ``outcome``."""
        k = (key, outcome)
        self.messages[k] = self.messages.get(k, 0) + 1


def _no_check(msg: Message, plan: Plan) -> None:
    return None


def _quotable(text: str) -> str:
    # An XML document may hold TABs between its elements (XML.md); the text
    # of an ER or SM may not (PROTOCOL part 2).
    return text.replace("\t", " ") if "\t" in text else text


class WriteGroup:
    """A batch gathering while the store is busy, and what waits on its commit.

    ``acks`` are (connection, seq) whose ``A`` is released by the commit;
    ``tokens`` stand for local senders waiting for it; ``out`` are the
    deliveries to dispatch once durable.
    """

    __slots__ = ("acks", "batch", "out", "tokens")

    def __init__(self) -> None:
        self.batch = Batch()
        self.acks: list[tuple[Any, int]] = []
        self.tokens: list[Any] = []
        self.out: list[Delivery] = []


class Ledger:
    """Ids, numbers, the gathering write group, and the rows of each message."""

    def __init__(self, router: Router, directory: Directory, schemas: SchemaSet,
                 stats: Stats, online: Callable[[str], bool], recovered: Recovered) -> None:
        self.router = router
        self.directory = directory
        self.schemas = schemas
        self.stats = stats
        self.online = online
        self.msg_id = recovered.msg_id
        self.dlv_id = recovered.dlv_id
        #: Ids go up by this (cluster mode: one id space per node, use_slot).
        self.id_step = 1
        self.counters = dict(recovered.counters)
        self.gathering: WriteGroup | None = None
        self.writing = 0
        #: delivery id -> wall time of its first transmission, not yet journaled.
        self.sent: dict[int, float] = {}
        #: Acknowledgements and 'sent' records of groups whose commit failed:
        #: they go with the next group, so an endpoint's A is never lost with
        #: a batch it happened to be gathered in (issue 15).
        self.carry_done: list[DoneRow] = []
        self.carry_sent: dict[int, float] = {}
        #: Ids of deliveries acknowledged (or refused) whose record is not durable
        #: yet -> the endpoint whose window they count in: a read-back must not
        #: hand them out again.
        self.done_pending: dict[int, Any] = {}
        #: A commit failed: groups wait for the retry timer (or a forced flush)
        #: instead of failing once per loop turn.
        self.paused = False
        #: Raises the MessageError of a routed message no receiver can take
        #: (the engine's: a delivery too long for an XML link).
        self.check_plan: Callable[[Message, Plan], None] = _no_check

    def restore(self, recovered: Recovered) -> None:
        """Go on from the highest ids and the counters the store recovered."""
        self.msg_id = max(self.msg_id, recovered.msg_id)
        self.dlv_id = max(self.dlv_id, recovered.dlv_id)
        self.counters.update(recovered.counters)

    def use_slot(self, slot: int, stride: int) -> None:
        """Cluster mode: hand out only ids ``k * stride + slot``, above every id so far."""
        self.id_step = stride
        self.msg_id = _aligned(self.msg_id, slot, stride)
        self.dlv_id = _aligned(self.dlv_id, slot, stride)

    def go_above(self, msg_id: int, dlv_id: int, counters: dict[str, int]) -> None:
        """Cluster mode: ids above those another node handed out, and counters at least
        the database's (an ORI that signed on here after signing on elsewhere)."""
        step = self.id_step
        if msg_id > self.msg_id:
            self.msg_id = _aligned(msg_id, self.msg_id % step, step)
        if dlv_id > self.dlv_id:
            self.dlv_id = _aligned(dlv_id, self.dlv_id % step, step)
        for name, value in counters.items():
            if value > self.counters.get(name, 0):
                self.counters[name] = value

    # -- groups ---------------------------------------------------------------

    @property
    def ready_to_write(self) -> bool:
        """A group gathers and the store may take it now."""
        return self.gathering is not None and self.writing < MAX_GROUPS and not self.paused

    def group(self) -> WriteGroup:
        """The group gathering now (created on first use)."""
        g = self.gathering
        if g is None:
            g = self.gathering = WriteGroup()
        return g

    def take(self, force: bool = False) -> WriteGroup | None:
        """The gathering group, to hand to the store now; None when it must wait.

        ``force`` hands it over even with :data:`MAX_GROUPS` in flight: a read
        that must see its rows comes next.
        """
        g = self.gathering
        if g is None or ((self.writing >= MAX_GROUPS or self.paused) and not force):
            return None
        self.gathering = None
        if self.carry_done or self.carry_sent:
            b = g.batch
            b.done[:0] = self.carry_done
            for i, at in self.carry_sent.items():
                b.sent.setdefault(i, at)
            self.carry_done = []
            self.carry_sent = {}
        # The highest ids handed out survive retention emptying the tables, so
        # an id never names two messages (a MID quoted in an NFQ, an export).
        g.batch.counters["id:msg"] = self.msg_id
        g.batch.counters["id:dlv"] = self.dlv_id
        self.writing += 1
        return g

    @property
    def carrying(self) -> bool:
        """Records of a failed group wait for the next one."""
        return bool(self.carry_done or self.carry_sent)

    def settled(self, g: WriteGroup, error: BaseException | None) -> list[Any]:
        """``g``'s commit ended: its records are durable, or carried to the next group.

        Returns the endpoints whose window the durable records freed.
        """
        self.writing -= 1
        b = g.batch
        if error is None and b.numbers:
            # Cluster mode: the database numbered the outputs (one sequence per
            # receiver, whatever node made the delivery).
            numbers = b.numbers
            for d in g.out:
                d.output_no = numbers.get(d.id, d.output_no)
        if error is None:
            pending = self.done_pending
            freed: dict[int, Any] = {}
            for r in b.done:
                ep = pending.pop(r.id, None)
                if ep is not None:
                    ep.unrecorded -= 1
                    freed[id(ep)] = ep
            return list(freed.values())
        done_ids = {r.id for r in b.done}
        self.carry_done.extend(b.done)
        for i, at in b.sent.items():
            if i not in done_ids:
                self.carry_sent[i] = at
        return []

    def _number(self, name: str, touched: dict[str, int]) -> int:
        n = next_number(self.counters.get(name, 0))
        self.counters[name] = n
        touched[name] = n
        return n

    # -- the rows of one message ----------------------------------------------

    def accept(self, link_ori: str, text: str, wall: float,
               original: str | None = None,
               reply_to: int | None = None) -> tuple[int, SwitchEvent]:
        """Take one input message sent by ``link_ori`` into the gathering group.

        Returns its message id and what became of it (routed, held, status,
        or rejected with an ER back to the sender). ``original`` is what an
        XML link sent (XML.md), ``text`` its translation: the journal keeps
        the document and an ER or SM quotes it, as it would quote the text.
        ``reply_to``: the message this one answers (a service of the switch
        answering it); an ER so sent refuses that message, which becomes
        ``rejected`` with the ER's reason in the same commit.
        """
        g = self.group()
        b = g.batch
        self.msg_id += self.id_step
        msg_id = self.msg_id
        input_no = self._number(f"in:{link_ori}", b.counters)
        msg: Message | None = None
        try:
            msg = parse_message(text)
            plan = self.router.route(msg, link_ori, self.online)
            self.check_plan(msg, plan)
        except MessageError as err:
            return msg_id, self._rejected(link_ori, err, msg, msg.key if msg else
                                          text[:3].split(".")[0], original or text, msg_id,
                                          input_no, wall)
        # An XML document is journaled whole (body_start 0): a read-back
        # translates it again (Engine.owed_loaded).
        body_start = 0 if original is not None else len(text) - len(msg.text.lstrip(_LEAD))
        b.messages.append(MessageRow(msg_id, wall, link_ori, msg.key, msg.origin,
                                     ",".join(msg.destinations), msg.control, input_no,
                                     "accepted", None, reply_to, body_start, original or text))
        if reply_to is not None and msg.key == "ER":
            b.refused.append(RefusedRow(er_reason(msg.text), reply_to))
        return msg_id, self._plan(plan, msg, msg_id, link_ori, input_no, wall,
                                  original or text)

    def reject(self, link_ori: str, err: MessageError, header: Message | None,
               original: str, wall: float) -> tuple[int, SwitchEvent]:
        """Journal a message refused before it had a text (an XML document the
        codec refused) and answer it with an ER; ``header`` is its header as
        far as it was read."""
        b = self.group().batch
        self.msg_id += self.id_step
        input_no = self._number(f"in:{link_ori}", b.counters)
        return self.msg_id, self._rejected(link_ori, err, header,
                                           header.key if header else None, original,
                                           self.msg_id, input_no, wall)

    def _rejected(self, link_ori: str, err: MessageError, msg: Message | None,
                  key: str | None, text: str, msg_id: int, input_no: int,
                  wall: float) -> Rejected:
        b = self.group().batch
        origin = link_ori
        control = None
        if msg is not None:
            control = msg.control
            if self.directory.may_speak(link_ori, msg.origin):
                origin = msg.origin
        elif err.control is not None:
            control = err.control  # the header was read as far as the control field
        b.messages.append(MessageRow(
            msg_id, wall, link_ori, key, origin if msg else None,
            ",".join(msg.destinations) if msg else None, control, input_no, "rejected",
            f"{err.code.wire} {err.detail}".rstrip(), None, 0, text))
        self.switch_message("ER", er_text(err, _quotable(text)), msg_id, link_ori, origin,
                            control, wall)
        # Unknown keys count as "?": a hostile link must not grow the label set.
        label = key if key is not None and key in self.schemas else "?"
        self.stats.count(label, "rejected")
        return Rejected(msg_id, label, link_ori, int(err.code), wall)

    def _plan(self, plan: Plan, msg: Message, msg_id: int, link_ori: str, input_no: int,
              wall: float, text: str) -> Routed:
        g = self.group()
        b = g.batch
        expires = wall + plan.hold.expire_s
        body = msg.body
        priority = 0 if msg.key == "SM" else 1
        for r in plan.routes:
            t = r.target
            self.dlv_id += self.id_step
            out_no = self._number(f"out:{t.link}", b.counters)
            if r.review is not None:
                # Held for an operator (core/console.py): not dispatched, no expiry.
                b.deliveries.append(DeliveryRow(self.dlv_id, msg_id, t.link, t.receiver,
                                                t.addressed, out_no, priority, "review", wall,
                                                expires, 0))
                continue
            b.deliveries.append(DeliveryRow(self.dlv_id, msg_id, t.link, t.receiver,
                                            t.addressed, out_no, priority,
                                            "held" if r.held else "queued", wall, expires,
                                            int(r.held)))
            g.out.append(Delivery(self.dlv_id, msg_id, t.link, t.receiver, t.addressed,
                                  out_no, priority, msg.key, msg.origin, wall, input_no,
                                  msg.control, body, expires))
        for st in plan.statuses:
            self.switch_message("SM", sm_text(st.code, st.addressed, _quotable(text)), msg_id,
                                link_ori, msg.origin, msg.control, wall)
        outcome = "review" if any(r.review for r in plan.routes) else (
            "held" if any(r.held for r in plan.routes) else (
                "routed" if plan.routes else "status"))
        self.stats.count(msg.key, outcome)
        return Routed(outcome, msg_id, msg.key, msg.origin, msg.control,
                      tuple(r.target.receiver for r in plan.routes),
                      tuple((int(s.code), s.addressed) for s in plan.statuses), wall)

    def switch_message(self, key: str, text: str, reply_to: int | None, link: str,
                       receiver: str, control: str | None, wall: float) -> None:
        """An ER or SM from NL0000000 back to the link that sent the message (part 4)."""
        g = self.group()
        b = g.batch
        self.msg_id += self.id_step
        mid = self.msg_id
        in_no = self._number(f"in:{SWITCH_ORI}", b.counters)
        b.messages.append(MessageRow(mid, wall, SWITCH_ORI, key, SWITCH_ORI, receiver, control,
                                     in_no, "accepted", None, reply_to, 0, text))
        self.dlv_id += self.id_step
        out_no = self._number(f"out:{link}", b.counters)
        expires = wall + self.router.hold_rule(key).expire_s
        priority = 0 if key == "SM" else 1
        b.deliveries.append(DeliveryRow(self.dlv_id, mid, link, receiver, receiver, out_no,
                                        priority, "queued", wall, expires, 0))
        g.out.append(Delivery(self.dlv_id, mid, link, receiver, receiver, out_no, priority,
                              key, SWITCH_ORI, wall, in_no, control, text, expires))

    def expired(self, rows: list[ExpiredRow], wall: float) -> list[Expired]:
        """Held messages whose hold ran out: SM ``.04.`` to their senders (part 4)."""
        events: list[Expired] = []
        for r in rows:
            self.stats.count(r.key, "expired")
            events.append(Expired(r.msg_id, r.key, r.addressed, wall))
            if r.key in ("SM", "ER") or r.link == SWITCH_ORI:
                continue
            self.switch_message("SM", sm_text(SmCode.DROPPED, r.addressed, _quotable(r.text)),
                                r.msg_id, r.link, r.origin, r.control, wall)
        return events

    # -- delivery records -------------------------------------------------------

    def record_sent(self, ids: list[int], wall: float) -> None:
        """Deliveries transmitted for the first time.

        Most are acknowledged within milliseconds, and then one update records
        both (sent_at and acked); only those still open after
        :data:`SENT_GRACE` get a 'sent' record of their own (:meth:`flush_sent`).
        """
        sent = self.sent
        for i in ids:
            sent[i] = wall

    def flush_sent(self, older_than: float) -> float | None:
        """Journal 'sent' for first transmissions at or before ``older_than``.

        Returns the wall time of the oldest one still waiting, or None.
        """
        sent = self.sent
        old = [(i, at) for i, at in sent.items() if at <= older_than]
        if old:
            rows = self.group().batch.sent
            for i, at in old:
                del sent[i]
                rows[i] = at
        return next(iter(sent.values())) if sent else None

    def record_done(self, d: Delivery, state: str, wall: float, ep: Any) -> None:
        """A delivery ended (``acked`` or ``refused``) at ``ep``; journaled with the next
        group, and counted in ``ep``'s window until it is durable."""
        g = self.group()
        sent_at = self.sent.pop(d.id, None) or g.batch.sent.pop(d.id, None)
        if sent_at is None:
            sent_at = self.carry_sent.pop(d.id, None)
        g.batch.done.append(DoneRow(state, wall, sent_at if sent_at is not None else wall,
                                    d.id))
        self.done_pending[d.id] = ep
        ep.unrecorded += 1


def _aligned(above: int, slot: int, stride: int) -> int:
    """The highest id of slot ``slot`` not above ``above`` (the next is ``+ stride``);
    at least ``above``'s rank, so the next id handed out is above ``above``."""
    k = above // stride
    return k * stride + slot if k * stride + slot <= above else (k - 1) * stride + slot
