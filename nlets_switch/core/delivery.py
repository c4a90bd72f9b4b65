"""Deliveries and the endpoints that take them: queues, window, SM first.

An :class:`Endpoint` is whatever has signed on as an ORI and takes
deliveries: a TCP (or TLS) link, or a service in the switch's process. The
engine drives both the same way; only the last step differs (a frame on the
link, or a :class:`~nlets_switch.core.effects.DeliverLocal` effect), so the
router never knows which is which.

The endpoint keeps the rules of PROTOCOL part 1 and 4 that are about order
and memory: at most ``window`` deliveries outstanding, SM ahead of every
other key, and at most ``max_queued`` in memory. What does not fit stays in
the journal and is read back, in id order, as the queue drains.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from nlets_switch.store.records import OwedRow

if TYPE_CHECKING:
    from nlets_switch.core.engine import Conn

#: Deliveries read back from the journal at a time.
RELOAD_BATCH = 500


class Delivery:
    """One delivery owed to an endpoint: what it takes to render and track it."""

    __slots__ = (
        "addressed", "body", "control", "expires_at", "id", "input_no", "key", "link",
        "msg_id", "output_no", "priority", "received_at", "receiver", "sender", "sent_at",
    )

    def __init__(self, id: int, msg_id: int, link: str, receiver: str, addressed: str,
                 output_no: int, priority: int, key: str, sender: str, received_at: float,
                 input_no: int, control: str | None, body: str, expires_at: float,
                 sent_at: float | None = None) -> None:
        self.id = id
        self.msg_id = msg_id
        self.link = link
        self.receiver = receiver
        self.addressed = addressed
        self.output_no = output_no
        self.priority = priority
        self.key = key
        self.sender = sender
        self.received_at = received_at
        self.input_no = input_no
        self.control = control
        self.body = body
        self.expires_at = expires_at
        self.sent_at = sent_at

    @classmethod
    def from_row(cls, r: OwedRow) -> Delivery:
        """A delivery read back from the store."""
        return cls(r.id, r.msg_id, r.link, r.receiver, r.addressed, r.output_no, r.priority,
                   r.key, r.origin, r.received_at, r.input_no, r.control, r.body, r.expires_at,
                   r.sent_at)


class Endpoint:
    """The delivery state of one signed-on ORI (``kind``: ``tcp`` or ``local``).

    ``conn`` is the link's connection for ``tcp``, None for a local service.
    ``ready`` is false before the first read-back is asked and after sign-off.
    ``xml`` is true for a link that speaks XML (XML.md, ``format: xml``).
    """

    __slots__ = (
        "closed", "conn", "id", "kind", "last_loaded", "loading", "max_queued", "ori",
        "outstanding", "queue", "ready", "seq_out", "signed_on_at", "spilled", "unrecorded",
        "urgent", "window", "xml",
    )

    def __init__(self, id: int, ori: str, kind: str, conn: Conn | None, window: int,
                 max_queued: int, signed_on_at: float) -> None:
        self.id = id
        self.ori = ori
        self.kind = kind
        self.conn = conn
        self.ready = False
        self.closed = False
        #: SM deliveries (priority 0) go ahead of everything else (part 4).
        self.urgent: deque[Delivery] = deque()
        self.queue: deque[Delivery] = deque()
        #: seq of the frame (or local hand-over) -> the delivery it carries.
        self.outstanding: dict[int, Delivery] = {}
        self.seq_out = 0
        #: Deliveries acknowledged whose record is not durable yet: they count
        #: in the window, so a crash resends at most ``window`` (issue 15).
        self.unrecorded = 0
        self.window = window
        self.max_queued = max_queued
        self.loading = False
        self.spilled = False
        self.last_loaded = 0
        self.signed_on_at = signed_on_at
        self.xml = False

    def start(self) -> None:
        """Take deliveries from now on: everything owed comes from a read-back first."""
        self.ready = True
        self.spilled = True
        self.last_loaded = 0

    def enqueue(self, d: Delivery) -> bool:
        """Take a delivery that was just made durable; False when it stays in the journal."""
        if not self.ready or self.loading or self.spilled:
            # It is in the journal; the read-back in progress (or the next one)
            # brings it in order.
            return False
        if len(self.queue) + len(self.urgent) >= self.max_queued:
            self.spilled = True
            return False
        (self.urgent if d.priority == 0 else self.queue).append(d)
        if d.id > self.last_loaded:
            self.last_loaded = d.id
        return True

    def loaded(self, rows: list[OwedRow]) -> None:
        """Take a read-back's rows (the engine asked for at most :meth:`reload_limit`)."""
        self.loading = False
        self.spilled = len(rows) >= self.reload_limit()
        have = {d.id for d in self.outstanding.values()}
        for r in rows:
            if r.id > self.last_loaded:
                self.last_loaded = r.id
            if r.id not in have:
                d = Delivery.from_row(r)
                (self.urgent if d.priority == 0 else self.queue).append(d)

    def reload_limit(self) -> int:
        """How many deliveries one read-back asks for."""
        return min(RELOAD_BATCH, self.max_queued)

    def wants_reload(self) -> bool:
        """The queue ran dry while more waits in the journal."""
        return self.spilled and not self.loading and not self.urgent and not self.queue

    def next(self) -> Delivery | None:
        """The next delivery to send (SM first), or None."""
        if self.urgent:
            return self.urgent.popleft()
        if self.queue:
            return self.queue.popleft()
        return None

    @property
    def has_queued(self) -> bool:
        """Deliveries wait in memory."""
        return bool(self.urgent or self.queue)

    def detach(self) -> None:
        """Stop taking deliveries; what is outstanding stays owed in the journal."""
        self.ready = False
        self.closed = True
        # The connection refers to its endpoint: without the way back, an ended
        # link is freed by its reference counts, even where the collector does
        # not look (server/heap.py freezes long-lived links).
        self.conn = None
        self.urgent.clear()
        self.queue.clear()
        self.outstanding.clear()
