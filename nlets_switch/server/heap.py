"""The garbage collector and long-lived links: keep full collections short.

A full (generation 2) collection walks every container object the collector
tracks. Each signed-on link holds about fifteen (its connection, link protocol
object, frame buffer, endpoint, queues, transport), so with 10,000 idle links
a full collection took 45 to 67 ms on the development machine, every few
seconds (issue 15: round trips of 92 to 103 ms; ``gc.callbacks`` timed full
collections of 64 and 67 ms within the 10 s measured).

Objects that live as long as their link do not need the collector: when a
link ends they are freed by their reference counts (an endpoint lets go of
its connection when it is detached, so no cycle holds them).
So, like start-up's heap, they are frozen (:func:`gc.freeze`): a full
collection skips them. :class:`HeapKeeper` looks once a second; when the
number of connections grew by :data:`FREEZE_GROWTH` since the last freeze,
it collects what is not frozen yet (only what came since, a few hundred
links at most: a few ms) and freezes what survived. When nearly all have
gone again, the collector looks at everything once (unfreeze, collect,
freeze), should a cycle hold anything there. ``tests/test_heap.py`` checks
that an ended link leaves nothing behind, frozen or not.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from typing import Final

from nlets_switch.log import get_logger

log = get_logger("heap")

#: New connections since the last freeze that make the next one worth it.
FREEZE_GROWTH: Final = 256
#: Seconds between looks.
CHECK_S: Final = 1.0


def freeze_startup() -> None:
    """Keep start-up's heap out of the collector's full collections.

    What start-up built (modules, configuration, schemas, the directory,
    monitoring) lives as long as the process: frozen, a full collection no
    longer walks it (50 to 95 ms a time on the development machine under
    load; a few ms after). Young collections are left as they are: the hot
    path makes few tracked objects that outlive a message.
    """
    gc.collect()
    gc.freeze()


class HeapKeeper:
    """Freezes the objects of links that signed on in numbers (see the module)."""

    def __init__(self, count: Callable[[], int], growth: int = FREEZE_GROWTH) -> None:
        #: How many connections there are now.
        self.count = count
        self.growth = growth
        #: Connections at the last freeze (or unfreeze).
        self.frozen_at = count()
        self.freezes = 0

    def check(self) -> str | None:
        """Freeze, refreeze or nothing, by the growth since the last look; which."""
        n = self.count()
        if n - self.frozen_at >= self.growth:
            # Only what is not frozen yet is walked: what came since the last freeze.
            gc.collect()
            gc.freeze()
            self.frozen_at = n
            self.freezes += 1
            return "freeze"
        if self.frozen_at - n >= self.growth and n <= self.frozen_at // 8:
            # Nearly all the frozen links are gone (freed by their counts): let
            # the collector look at everything once, should anything frozen
            # have ended in a cycle since, and freeze what is left. Only then:
            # the pause is about the size of what is left (245 ms when half of
            # 10,000 links had gone, under a load of 5).
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.frozen_at = n
            return "refreeze"
        return None

    async def run(self, interval: float = CHECK_S) -> None:
        """Look every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            what = self.check()
            if what is not None:
                log.debug("heap_" + what, connections=self.frozen_at,
                          frozen=gc.get_freeze_count())
