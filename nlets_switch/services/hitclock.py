"""The hit-confirmation clock: a ``YQ`` owes a ``YR`` in time (docs/services.md).

Nlets' priorities give the record holder 10 minutes (``PRI/U``) or an hour
(``PRI/R``) to answer a hit confirmation request. The clock starts when the
``YQ`` is delivered to the holder; a ``YR`` from the holder (or its state's
control terminal, answering for it) to the requester, echoing the ``YQ``'s
control field, stops it. Past the deadline the NL service tells the
requester, so that its terminal sends the second request the procedure calls
for, and reminds the holder.

Pure: every method takes ``now`` (wall-clock seconds), so a test drives time
forward instead of sleeping through it.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

#: Nlets' answer times by priority, unless configured (seconds).
DEFAULT_DEADLINES: Final[Mapping[str, float]] = {"U": 600.0, "R": 3600.0}


@dataclass(frozen=True, slots=True)
class PendingYq:
    """One delivered ``YQ`` waiting for its ``YR``."""

    msg_id: int
    requester: str
    holder: str
    control: str | None
    priority: str
    due: float
    #: The start of the YQ as sent (what the SM quotes; criminal-justice
    #: information: never logged).
    quote: str


@dataclass(slots=True)
class HitClock:
    """The ``YQ``\\ s in flight, by deadline."""

    deadlines: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_DEADLINES))
    _heap: list[tuple[float, int, str]] = field(default_factory=list)
    _pending: dict[tuple[int, str], PendingYq] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self._pending)

    def pending(self) -> list[PendingYq]:
        """Every YQ still owed an answer, earliest deadline first."""
        return sorted(self._pending.values(), key=lambda p: (p.due, p.msg_id, p.holder))

    def start(self, msg_id: int, requester: str, holder: str, control: str | None,
              priority: str, delivered_at: float, quote: str = "") -> PendingYq | None:
        """Start the clock of one delivery; None when already running (a redelivery)."""
        if (msg_id, holder) in self._pending:
            return None
        pri = priority if priority in self.deadlines else "R"
        p = PendingYq(msg_id, requester, holder, control, pri,
                      delivered_at + self.deadlines[pri], quote)
        self._pending[(msg_id, holder)] = p
        heapq.heappush(self._heap, (p.due, msg_id, holder))
        return p

    def answered(self, origin: str, to: tuple[str, ...], control: str | None) -> list[PendingYq]:
        """A ``YR`` from ``origin`` to ``to``: stop the clocks it answers."""
        done = [p for p in self._pending.values()
                if p.requester in to and p.control == control
                and (origin == p.holder or origin[:2] == p.holder[:2])]
        for p in done:
            del self._pending[(p.msg_id, p.holder)]
        return done

    def next_due(self) -> float | None:
        """When the earliest clock runs out, if any runs."""
        while self._heap and (self._heap[0][1], self._heap[0][2]) not in self._pending:
            heapq.heappop(self._heap)  # answered since: dropped lazily
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[PendingYq]:
        """The clocks that ran out by ``now``; they stop (a second request starts anew)."""
        out: list[PendingYq] = []
        while self._heap and self._heap[0][0] <= now:
            _, msg_id, holder = heapq.heappop(self._heap)
            p = self._pending.pop((msg_id, holder), None)
            if p is not None:
                out.append(p)
        return out
