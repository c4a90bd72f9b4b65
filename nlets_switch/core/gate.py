"""Sign-on failures and lock-outs in memory, and the attempts waiting for a check (issue 11).

The embedded switch's :class:`Gate`; a cluster node keeps the counts in its
database instead (``store/postgres_signon.py``) and uses only the queue of
attempts waiting behind a running check.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from nlets_switch.core.conn import Conn

#: Source counts kept before those that lock nothing are forgotten.
_MAX_TRACKED: Final = 100_000


class Attempt:
    """One sign-on asked on a connection (``seq`` of its ``C``)."""

    __slots__ = ("conn", "credential", "ori", "seq")

    def __init__(self, conn: Conn, seq: int, ori: str, credential: str | None) -> None:
        self.conn = conn
        self.seq = seq
        self.ori = ori
        self.credential = credential


class Gate:
    """Failures and lock-outs, and the attempts waiting for a check.

    Failures are counted per (source address, ORI) and per ORI. What locks
    first is the source, for that ORI (``lockout_after``): a stranger's
    guesses lock the stranger out, not the agency, which signs on from its
    own address as before. Past ``ori_lockout_after`` failures from every
    address together, the ORI itself is locked out (an alert: many sources
    are guessing). ``unlock`` lifts either.
    """

    __slots__ = ("checking", "ori_fails", "source_fails")

    def __init__(self) -> None:
        #: (host, ORI) -> (failures in a row, locked until (monotonic), 0 when not locked).
        self.source_fails: dict[tuple[str, str], tuple[int, float]] = {}
        #: ORI -> (failures from every source, locked until, 0 when not locked).
        self.ori_fails: dict[str, tuple[int, float]] = {}
        #: ORI with a check running -> the attempts waiting behind it, in order.
        self.checking: dict[str, deque[Attempt]] = {}

    def busy(self, ori: str) -> bool:
        """A check for ``ori`` is running."""
        return ori in self.checking

    def wait(self, attempt: Attempt) -> None:
        """Queue ``attempt`` behind the running check of its ORI."""
        self.checking[attempt.ori].append(attempt)

    def begin(self, ori: str) -> None:
        """A check for ``ori`` starts."""
        self.checking.setdefault(ori, deque())

    def end(self, ori: str) -> deque[Attempt]:
        """The check for ``ori`` is over; returns the attempts that waited behind it."""
        return self.checking.pop(ori, deque())

    def locked(self, host: str, ori: str, now: float) -> str | None:
        """Why ``ori`` may not sign on from ``host`` at ``now`` (None: it may)."""
        if self.ori_fails.get(ori, (0, 0.0))[1] > now:
            return "ori locked out"
        if self.source_fails.get((host, ori), (0, 0.0))[1] > now:
            return "locked out"
        return None

    def failed(self, host: str, ori: str, now: float, after: int, ori_after: int,
               lockout_s: float) -> tuple[bool, bool]:
        """Count a failure; (source locked now, ORI locked now)."""
        src = ori_lock = False
        fails = self.source_fails.get((host, ori), (0, 0.0))[0] + 1
        if fails >= after:
            self.source_fails[(host, ori)] = (0, now + lockout_s)
            src = True
        else:
            self.source_fails[(host, ori)] = (fails, 0.0)
        if len(self.source_fails) > _MAX_TRACKED:
            # Many addresses guessing: forget the counts that lock nothing (bounded memory).
            self.source_fails = {k: v for k, v in self.source_fails.items() if v[1] > now}
        total, until = self.ori_fails.get(ori, (0, 0.0))
        total += 1
        if total >= ori_after:
            self.ori_fails[ori] = (0, now + lockout_s)
            ori_lock = True
        else:
            self.ori_fails[ori] = (total, until)
        return src, ori_lock

    def succeeded(self, host: str, ori: str) -> None:
        """A good sign-on clears its source's count (not the ORI's: others may guess)."""
        self.source_fails.pop((host, ori), None)

    def unlock(self, target: str) -> list[str]:
        """Lift the lock-outs and counts of an ORI or of a source address.

        Returns what was locked (``ORI`` or ``ORI@host``), for the audit.
        """
        lifted: list[str] = []
        if target in self.ori_fails:
            if self.ori_fails.pop(target)[1] > 0:
                lifted.append(target)
        for (host, ori), (_, until) in list(self.source_fails.items()):
            if target in (host, ori):
                del self.source_fails[(host, ori)]
                if until > 0:
                    lifted.append(f"{ori}@{host}")
        return lifted

    def lockouts(self, now: float) -> list[dict[str, object]]:
        """What is locked out at ``now``: ``{"ori", "source" (None: every source), "until_s"}``."""
        out: list[dict[str, object]] = [
            {"ori": ori, "source": None, "remaining_s": round(until - now, 1)}
            for ori, (_, until) in self.ori_fails.items() if until > now]
        out += [{"ori": ori, "source": host, "remaining_s": round(until - now, 1)}
                for (host, ori), (_, until) in self.source_fails.items() if until > now]
        return out
