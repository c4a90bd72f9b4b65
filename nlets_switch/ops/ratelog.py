"""Bounded logging: an error that repeats is logged once, then counted.

A full disk made the switch log one ``journal_write_failed`` line per refused
message, about 14,000 lines a second, onto the disk that was full (issue
15). Here the first occurrence of an event for a key is logged in full; the
repeats within ``interval`` seconds are only counted, and one summary line
per interval carries the count::

    journal_write_failed error=OSError                      (the first, in full)
    journal_write_failed repeated=14000 seconds=1.0         (then once a second)

An event that stays quiet for a whole interval is forgotten, so its next
occurrence is logged in full again.

:class:`RateLog` is the bookkeeping: pure, every call takes ``now`` (it reads
no clock), so the engine can drive it like its other timers.
:class:`BoundedLogger` is the thin wrapper around a structlog logger.
Both keep per-event totals (:attr:`RateLog.totals`, :attr:`RateLog.suppressed`)
for a metrics collector to read at scrape time.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["OVERFLOW", "BoundedLogger", "RateLog", "Summary"]

#: The key repeats are counted under once ``max_keys`` keys are being tracked,
#: so a peer that varies the key cannot grow the table (or the log) without bound.
OVERFLOW: Final = "(other)"


@dataclass(frozen=True, slots=True)
class Summary:
    """``event`` happened ``repeated`` more times for ``key`` over ``seconds``."""

    event: str
    key: Hashable
    repeated: int
    seconds: float


@dataclass(slots=True)
class _Window:
    start: float
    count: int = 0


class RateLog:
    """Which occurrences of an event to log, and the summaries of the rest.

    ``hit(event, key, now)`` for each occurrence says whether to log it in
    full and may hand back a summary to log first; ``flush(now)`` (from a
    timer, at :meth:`next_deadline`) gives the summaries of windows that
    ended without a further occurrence.
    """

    def __init__(self, interval: float = 1.0, max_keys: int = 1000) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.max_keys = max_keys
        self._windows: dict[tuple[str, Hashable], _Window] = {}
        #: Occurrences per event name, logged or not (a metric's counter).
        self.totals: Counter[str] = Counter()
        #: Occurrences per event name that were only counted, not logged in full.
        self.suppressed: Counter[str] = Counter()

    def hit(self, event: str, key: Hashable, now: float) -> tuple[bool, Summary | None]:
        """One occurrence: (log it in full?, a summary to log before it or None)."""
        self.totals[event] += 1
        k = (event, key)
        w = self._windows.get(k)
        if w is None:
            if len(self._windows) >= self.max_keys:
                k = (event, OVERFLOW)
                w = self._windows.get(k)
            if w is None:
                self._windows[k] = _Window(now)
                return True, None
        if now - w.start < self.interval:
            w.count += 1
            self.suppressed[event] += 1
            return False, None
        summary = Summary(event, k[1], w.count, now - w.start) if w.count else None
        w.start = now
        if summary is None:
            w.count = 0
            return True, None  # a quiet interval: this one is news again
        w.count = 1
        self.suppressed[event] += 1
        return False, summary

    def flush(self, now: float) -> list[Summary]:
        """Summaries of the windows that ended by ``now``; quiet ones are forgotten."""
        out: list[Summary] = []
        for k, w in list(self._windows.items()):
            if now - w.start < self.interval:
                continue
            if w.count:
                out.append(Summary(k[0], k[1], w.count, now - w.start))
                w.start, w.count = now, 0
            else:
                del self._windows[k]
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`flush` next has something to do (None: nothing tracked)."""
        return min((w.start + self.interval for w in self._windows.values()), default=None)


class BoundedLogger:
    """A structlog logger whose repeated events are summarised by a :class:`RateLog`.

    ``log.error("journal_write_failed", key=link, error="OSError")`` logs the
    first occurrence for ``link`` in full and counts the rest; call
    :meth:`flush` from a periodic timer so the count of a burst that ended is
    logged too. ``clock`` is read here, not in the bookkeeping.
    """

    def __init__(self, logger: Any, interval: float = 1.0, max_keys: int = 1000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.rate = RateLog(interval, max_keys)
        self._clock = clock
        #: The level each event was last logged at (event names are few: the code's).
        self._levels: dict[str, str] = {}

    def error(self, event: str, key: Hashable = None, **kw: Any) -> None:
        """Log ``event`` at error level, bounded per (event, key)."""
        self._emit("error", event, key, kw)

    def warning(self, event: str, key: Hashable = None, **kw: Any) -> None:
        """Log ``event`` at warning level, bounded per (event, key)."""
        self._emit("warning", event, key, kw)

    def emit(self, level: str, event: str, key: Hashable, fields: dict[str, Any]) -> None:
        """Log ``event`` at ``level`` with ``fields`` as they are, bounded per (event, key)
        (``key`` is not added to the line: it is usually one of ``fields``)."""
        full, summary = self.rate.hit(event, key, self._clock())
        if summary is not None:
            self._summary(summary)
        if full:
            self._levels[event] = level
            getattr(self.logger, level)(event, **fields)

    def flush(self) -> None:
        """Log the summaries of the windows that ended."""
        for s in self.rate.flush(self._clock()):
            self._summary(s)

    def _emit(self, level: str, event: str, key: Hashable, kw: dict[str, Any]) -> None:
        full, summary = self.rate.hit(event, key, self._clock())
        if summary is not None:
            self._summary(summary)
        if full:
            self._levels[event] = level
            if key is not None:
                kw.setdefault("key", key)
            getattr(self.logger, level)(event, **kw)

    def _summary(self, s: Summary) -> None:
        level = self._levels.get(s.event, "error")
        extra: dict[str, Any] = {} if s.key is None else {"key": s.key}
        getattr(self.logger, level)(s.event, repeated=s.repeated,
                                    seconds=round(s.seconds, 3), **extra)
