"""One deadline heap for every timer of the engine.

Idle links cost nothing per tick: each link has at most one entry, pushed
only when its deadline moves *earlier*. A deadline that moved later (traffic
came, so the heartbeat is due later) leaves the old entry in place; when it
pops, its owner finds nothing due yet and pushes the new time. Entries that
were superseded are recognised by their time (see :meth:`Timers.due`).
"""

from __future__ import annotations

import heapq
import itertools
from typing import Generic, TypeVar

T = TypeVar("T")


class Timers(Generic[T]):
    """A min-heap of (time, what); ties keep their order of scheduling."""

    __slots__ = ("_count", "_heap")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, T]] = []
        self._count = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, at: float, what: T) -> None:
        """Wake ``what`` at ``at``."""
        heapq.heappush(self._heap, (at, next(self._count), what))

    def next_deadline(self) -> float | None:
        """The earliest time scheduled, or None."""
        return self._heap[0][0] if self._heap else None

    def due(self, now: float) -> list[tuple[float, T]]:
        """Every (time, what) scheduled at or before ``now``, earliest first, removed."""
        heap = self._heap
        out: list[tuple[float, T]] = []
        while heap and heap[0][0] <= now:
            at, _, what = heapq.heappop(heap)
            out.append((at, what))
        return out
