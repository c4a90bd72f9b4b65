"""The operator's actions on traffic, as engine entry points (pure).

The HTTP API (:mod:`nlets_switch.ops.console_http`) reads the deliveries an
action is about from the store (:mod:`nlets_switch.store.console`) as
:class:`Item` rows and hands them here; the engine checks what it alone
knows (is the link signed on, was the delivery already acted on), then makes
rows like any other: a changed delivery ends with a state of its own
(``released``, ``rerouted``, ``purged``, ``edited``) and what goes on is a
*new* delivery, numbered and dispatched like any other, so the journal keeps
the whole life of a message and nothing is rewritten in place.

* **release**: an item of the intervention queue goes to its destination: now
  if it is signed on, else it is owed to it (state ``held``, delivered at
  sign-on, as PROTOCOL part 4's SM ``.02.`` holds a message). Refused for a
  destination on remove status for the key (lift it, or purge).
* **release of a held queue** (per destination or one delivery): what is
  held for a destination is what waits for it: items held for review (an
  operator's rule) and deliveries owed to it while it is not signed on. The
  first are released as above; the second stay owed (nothing holds them but
  the destination's absence: they go when it signs on), and a release that
  finds only those is refused, saying so.
* **edit**: the operator's text is kept as a message of its own (status
  ``edited``, ``reply_to`` the original) beside the original, which is never
  changed; the item in the queue is then the edited one.
* **reroute**: to another address (resolved by the directory).
* **purge**: dropped; the sender gets SM ``.04.`` for that destination
  (PROTOCOL part 4: "the message is dropped and must be sent again").
* **resend**: a delivered message goes again to the same destination.
* **broadcast**: the switch's own SM to every signed-on terminal.
* **remove status**: see :mod:`nlets_switch.core.controls`.

Deliveries of a link that is signed on are in the engine's memory (queued,
in the window), so the held-queue actions (reroute, purge) only take those of
a link that is not: an operator drops the link first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from nlets_switch.core.conn import Now
from nlets_switch.core.delivery import Delivery
from nlets_switch.core.dispatch import Dispatch
from nlets_switch.core.effects import Effect
from nlets_switch.core.events import SwitchEvent
from nlets_switch.errors import SmCode
from nlets_switch.store.records import DeliveryRow, DoneRow, MessageRow
from nlets_switch.wire.message import SWITCH_ORI, address_kind, next_number, sm_text

#: Delivery states an action may start from.
REVIEW = "review"
HELD_STATES = ("queued", "held", "sent")
DELIVERED = "acked"


class ActionRefused(Exception):
    """The engine will not do this action (the reason is for the operator)."""


class Item(NamedTuple):
    """One delivery and its message, as the store reads it for an action."""

    id: int
    msg_id: int
    link: str
    receiver: str
    addressed: str
    state: str
    priority: int
    expires_at: float
    key: str
    origin: str
    sender_link: str
    control: str | None
    received_at: float
    input_no: int
    body_start: int
    text: str

    @property
    def body(self) -> str:
        """The text after the input header (as the read-back delivers it)."""
        return self.text[self.body_start:].rstrip("\r\n")


@dataclass(frozen=True, slots=True)
class OperatorAction(SwitchEvent):
    """An operator acted on traffic (MQTT, the dashboard); never carries text."""

    action: str
    operator: str
    reason: str
    msg_ids: tuple[int, ...]
    deliveries: tuple[int, ...]
    to: str | None
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "operator", "action": ..., "operator": ..., ...}``."""
        return {"event": "operator", "action": self.action, "operator": self.operator,
                "reason": self.reason, "msg_ids": list(self.msg_ids),
                "deliveries": list(self.deliveries), "to": self.to, "ts": self.ts}


class Console(Dispatch):
    """The engine's entry points for operators; each returns its effects."""

    #: Delivery ids acted on since start: a second action on one is refused
    #: even before the first one's rows are durable (two operators, one item).
    _acted: set[int]

    def _fresh(self, items: Iterable[Item], states: tuple[str, ...]) -> list[Item]:
        acted = self.__dict__.setdefault("_acted", set())
        out = []
        for it in items:
            if it.id in acted:
                raise ActionRefused(f"delivery {it.id} was already acted on")
            if it.state not in states:
                raise ActionRefused(f"delivery {it.id} is {it.state}, not "
                                    + " or ".join(states))
            if it.state in HELD_STATES and self.online(it.link):
                raise ActionRefused(f"{it.link} is signed on: its deliveries are on their way "
                                    "(drop the link first)")
            out.append(it)
        if not out:
            raise ActionRefused("nothing to act on")
        acted.update(it.id for it in out)
        return out

    def _event(self, action: str, who: str, reason: str, items: list[Item], to: str | None,
               now: Now) -> None:
        self._fx.append(OperatorAction(
            action, who, reason, tuple(sorted({it.msg_id for it in items})),
            tuple(it.id for it in items), to, now.wall))

    def _end(self, it: Item, state: str, wall: float) -> None:
        # sent_at None: the store keeps it as it was (set for what was sent, NULL
        # for what never was, such as an item held for review).
        self.ledger.group().batch.done.append(DoneRow(state, wall, None, it.id))

    def _deliver(self, it: Item, link: str, receiver: str, addressed: str, msg_id: int,
                 body: str, now: Now, state: str | None = None) -> int:
        """A new delivery of ``it``'s message (or ``msg_id``) to ``link``; its id."""
        led = self.ledger
        g = led.group()
        b = g.batch
        led.dlv_id += 1
        # Output numbers count per receiving link (part 3), as the ledger's do.
        next_out = next_number(led.counters.get(f"out:{link}", 0))
        led.counters[f"out:{link}"] = next_out
        b.counters[f"out:{link}"] = next_out
        wall = now.wall
        expires = max(it.expires_at, wall + led.router.hold_rule(it.key).expire_s)
        if state is None:
            state = "queued" if self.online(link) else "held"
        b.deliveries.append(DeliveryRow(led.dlv_id, msg_id, link, receiver, addressed, next_out,
                                        it.priority, state, wall, expires,
                                        int(state == "held")))
        if state != REVIEW:
            g.out.append(Delivery(led.dlv_id, msg_id, link, receiver, addressed, next_out,
                                  it.priority, it.key, it.origin, it.received_at, it.input_no,
                                  it.control, body, expires))
        return led.dlv_id

    def when_durable(self, token: Any) -> list[Effect]:
        """``token`` comes back in a :class:`Durable` effect once the rows gathering now
        (an action's) are durable: an operator is told "done" only then."""
        fx = self._fx = []
        self.ledger.group().tokens.append(token)
        return fx

    # -- the intervention queue and held queues -----------------------------------

    def release(self, items: list[Item], who: str, reason: str, now: Now) -> list[Effect]:
        """Items of the intervention queue go to their destinations."""
        removed = sorted({f"{it.link} {it.key}" for it in items
                          if self.controls.removed_for((it.receiver, it.link), it.key)})
        if removed:
            raise ActionRefused(f"on remove status: {', '.join(removed)} (lift it first, "
                                "or purge)")
        fx = self._fx = []
        items = self._fresh(items, (REVIEW,))
        for it in items:
            self._end(it, "released", now.wall)
            self._deliver(it, it.link, it.receiver, it.addressed, it.msg_id, it.body, now)
        self._event("release", who, reason, items, None, now)
        return fx

    def release_held(self, items: list[Item], who: str, reason: str,
                     now: Now) -> tuple[dict[str, list[int]], list[Effect]]:
        """Release what is held for a destination (or one delivery of it).

        Items held for review are released (:meth:`release`); deliveries owed
        to a destination that is not signed on stay owed. Returns the ids
        ``released`` and, of those, ``delivered`` (the destination is signed
        on: sent now) and the ids left ``owed``.
        """
        review = [it for it in items if it.state == REVIEW]
        owed = [it.id for it in items if it.state in HELD_STATES]
        if not review:
            waiting = sorted({it.link for it in items if it.state in HELD_STATES})
            if not waiting:  # neither: release says why (acted on, in what state)
                return {}, self.release(items, who, reason, now)
            on = [link for link in waiting if self.online(link)]
            raise ActionRefused(
                "nothing is held for review; " + (
                    f"{', '.join(on)} is signed on: its deliveries are on their way"
                    if on else f"{len(owed)} deliver{'y' if len(owed) == 1 else 'ies'} "
                    f"wait for {', '.join(waiting)} to sign on and go then"))
        fx = self.release(review, who, reason, now)
        delivered = [it.id for it in review if self.online(it.link)]
        return {"released": [it.id for it in review], "delivered": delivered,
                "owed": owed}, fx

    def reroute(self, items: list[Item], address: str, who: str, reason: str,
                now: Now) -> list[Effect]:
        """Items (in review, or held for a link not signed on) go to ``address`` instead."""
        kind = address_kind(address)
        target = self.directory.resolve(address, kind) if kind else None
        if target is None:
            raise ActionRefused(f"unknown destination {address}")
        refused = sorted({it.key for it in items if target.entry is not None
                          and not target.entry.takes(it.key)})
        if refused:
            # What SM .01. would say (part 4): it does not take these keys.
            raise ActionRefused(f"{address} does not take {', '.join(refused)}")
        removed = sorted({it.key for it in items if self.controls.is_removed(target, it.key)})
        if removed:
            raise ActionRefused(f"{address} is on remove status for {', '.join(removed)}")
        fx = self._fx = []
        items = self._fresh(items, (REVIEW, *HELD_STATES))
        for it in items:
            self._end(it, "rerouted", now.wall)
            self._deliver(it, target.link, target.receiver, target.addressed, it.msg_id,
                          it.body, now)
        self._event("reroute", who, reason, items, address, now)
        return fx

    def purge(self, items: list[Item], who: str, reason: str, now: Now) -> list[Effect]:
        """Items are dropped; each sender gets SM .04. for the destination (part 4)."""
        fx = self._fx = []
        items = self._fresh(items, (REVIEW, *HELD_STATES))
        for it in items:
            self._end(it, "purged", now.wall)
            self.stats.count(it.key, "purged")
            if it.key not in ("SM", "ER") and it.sender_link != SWITCH_ORI:
                self.ledger.switch_message("SM", sm_text(SmCode.DROPPED, it.addressed, it.text),
                                           it.msg_id, it.sender_link, it.origin, it.control,
                                           now.wall)
        self._event("purge", who, reason, items, None, now)
        return fx

    def resend(self, items: list[Item], who: str, reason: str, now: Now) -> list[Effect]:
        """Delivered items go once more to the same destinations (new output numbers)."""
        fx = self._fx = []
        items = self._fresh(items, (DELIVERED,))
        # A resend does not end the delivered one: it may be resent again.
        self._acted.difference_update(it.id for it in items)
        for it in items:
            self._deliver(it, it.link, it.receiver, it.addressed, it.msg_id, it.body, now)
        self._event("resend", who, reason, items, None, now)
        return fx

    def edit(self, items: list[Item], body: str, who: str, reason: str,
             now: Now) -> tuple[int, list[Effect]]:
        """Keep ``body`` as the edited text of the items' message; they wait for review again.

        Returns the id of the edited message. The original is never changed.
        """
        if not body.strip() or any(not (32 <= ord(c) < 127 or c in "\r\n") for c in body):
            raise ActionRefused("the text must be printable ASCII, CR and LF, and not empty")
        if len({it.msg_id for it in items}) > 1:
            raise ActionRefused("an edit is about one message")
        fx = self._fx = []
        items = self._fresh(items, (REVIEW,))
        first = items[0]
        led = self.ledger
        b = led.group().batch
        led.msg_id += 1
        new_id = led.msg_id
        head = first.text[:first.body_start]
        text = head + body
        b.messages.append(MessageRow(new_id, now.wall, first.sender_link, first.key,
                                     first.origin, ",".join(it.addressed for it in items),
                                     first.control, first.input_no,
                                     "edited", f"edited by {who}"[:200], first.msg_id,
                                     len(head), text))
        for it in items:
            self._end(it, "edited", now.wall)
            self._deliver(it, it.link, it.receiver, it.addressed, new_id, body, now,
                          state=REVIEW)
        self._event("edit", who, reason, items, None, now)
        return new_id, fx

    # -- remove status and broadcasts ----------------------------------------------

    def remove_status(self, ori: str, keys: Iterable[str] | None, lift: bool, who: str,
                      reason: str, now: Now) -> list[Effect]:
        """Put ``ori`` on remove status (``keys``; None: all) or lift it."""
        fx = self._fx = []
        if lift:
            if not self.controls.lift(ori):
                raise ActionRefused(f"{ori} is not on remove status")
        else:
            self.controls.set_removed(ori, keys)
        self._fx.append(OperatorAction("lift_remove_status" if lift else "remove_status", who,
                                       reason, (), (), ori, now.wall))
        return fx

    def broadcast(self, text: str, who: str, reason: str,
                  now: Now) -> tuple[list[str], list[Effect]]:
        """An SM from NL0000000 to every link signed on (not the switch's own services)."""
        fx = self._fx = []
        sent = []
        for ori, ep in sorted(self.links.items()):
            if ep.kind == "local" or not ep.ready:
                continue
            self.ledger.switch_message("SM", text, None, ori, ori, None, now.wall)
            sent.append(ori)
        self._fx.append(OperatorAction("broadcast", who, reason, (), (), None, now.wall))
        return sent, fx
