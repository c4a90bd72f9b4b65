"""Typed rows of the journal's hot path, shared by the engine and every store.

Plain :class:`~typing.NamedTuple` rows: typed for readers and mypy, and still
tuples, so a store hands them to its driver (``executemany``, ``COPY``)
without a copy per row. A :class:`Batch` is everything one group commit makes
durable; it holds no callbacks, so it can cross to a writer thread, a writer
process or a database server as it is.

This module is pure: it imports nothing but the standard library's typing
helpers, so the engine can build rows without loading any database driver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final, NamedTuple

#: States of a delivery that is still owed to its destination.
OPEN_STATES: Final = ("queued", "held", "sent")


class MessageRow(NamedTuple):
    """One input message as received (``status`` accepted or rejected), text included."""

    id: int
    received_at: float
    link: str
    key: str | None
    origin: str | None
    destinations: str | None
    control: str | None
    input_no: int
    status: str
    reason: str | None
    reply_to: int | None
    body_start: int
    text: str


class DeliveryRow(NamedTuple):
    """One delivery of a message to one link, as first made durable."""

    id: int
    msg_id: int
    link: str
    receiver: str
    addressed: str
    output_no: int
    priority: int
    state: str
    created_at: float
    expires_at: float
    held: int


class DoneRow(NamedTuple):
    """A delivery that ended (``acked`` or ``refused``; an operator's ``released``,
    ``purged``, ...) at ``done_at``. ``sent_at`` None: never sent (kept as it was)."""

    state: str
    done_at: float
    sent_at: float | None
    id: int


class RefusedRow(NamedTuple):
    """A message accepted on receipt that a service of the switch then refused with
    an ER: it becomes ``rejected`` with the ER's ``reason`` (issue 14)."""

    reason: str
    id: int


class OwedRow(NamedTuple):
    """A delivery still owed to a link, with what it takes to render it again."""

    id: int
    msg_id: int
    link: str
    receiver: str
    addressed: str
    output_no: int
    priority: int
    key: str
    origin: str
    received_at: float
    input_no: int
    control: str | None
    body: str
    expires_at: float
    sent_at: float | None


class ExpiredRow(NamedTuple):
    """A delivery whose hold ran out, with what the sender's SM ``.04.`` needs."""

    delivery_id: int
    addressed: str
    msg_id: int
    link: str
    key: str
    origin: str
    control: str | None
    text: str


class Recovered(NamedTuple):
    """What the switch needs at start: the highest ids handed out and the counters."""

    msg_id: int
    dlv_id: int
    counters: dict[str, int]


class GateVerdict(NamedTuple):
    """Cluster mode: a sign-on decided against the lock-outs every node shares.

    ``locked``: why the attempt was refused unchecked (``"locked out"`` for its
    source, ``"ori locked out"``), None when it was checked; ``ok``: the
    credential (or certificate) was right; ``source_locked`` / ``ori_locked``:
    this failure locked the source / the ORI; ``error``: the shared state could
    not be read or written (the database is gone), nothing was decided.
    """

    ok: bool
    locked: str | None = None
    source_locked: bool = False
    ori_locked: bool = False
    error: str | None = None


@dataclass(slots=True)
class Batch:
    """Rows for one durable commit: inserts, counters, and state changes."""

    messages: list[MessageRow] = field(default_factory=list)
    deliveries: list[DeliveryRow] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    #: delivery id -> first transmission time, for deliveries still unacknowledged.
    sent: dict[int, float] = field(default_factory=dict)
    done: list[DoneRow] = field(default_factory=list)
    refused: list[RefusedRow] = field(default_factory=list)
    #: Cluster mode: delivery id -> the output number the database gave it when the
    #: batch committed (one counter per receiving link for every node; set by the
    #: PostgreSQL writer, empty otherwise).
    numbers: dict[int, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.messages or self.deliveries or self.counters or self.sent
                    or self.done or self.refused)


class Claim(NamedTuple):
    """Cluster mode: a node took the lock on an ORI. The highest message and delivery
    ids in the database then, and the ORI's input counter, so the node goes on above
    them (a sender that moved between nodes keeps its order and its numbers)."""

    msg_id: int
    dlv_id: int
    counters: dict[str, int]
