"""Cluster mode on PostgreSQL: sign-on failures and lock-outs shared by every node (issue 11).

In embedded mode the engine counts failed sign-ons in memory
(:class:`~nlets_switch.core.gate.Gate`). Nodes of a cluster share them in
the table ``signon_failures`` (schema version 7), so a guesser spread over
several nodes gets ``lockout_after`` tries in all, and ``unlock`` at one node
lifts a lock-out everywhere:

* one row per (ORI, source address) that has failed: failures in a row and
  the time its lock-out ends (POSIX seconds of the *database's* clock, so
  nodes whose clocks differ agree; 0: not locked);
* one row per ORI with source ``''``: failures from every source, and the
  ORI's own lock-out.

Each attempt is decided in one transaction under an advisory transaction
lock on the ORI (:func:`decide`): the lock-outs are read, the credential is
checked (the caller's function: scrypt, in this thread, never in the
database) and the failure counted before the lock is let go, so attempts for
one ORI are decided one at a time across the cluster, each after the
previous one's failure was counted. Credentials never reach the database:
only ORIs, addresses, counts and times.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Final, TypeVar

from nlets_switch.errors import StoreError
from nlets_switch.store.postgres import connect, redact, translated_errors
from nlets_switch.store.postgres_cluster import lock_key
from nlets_switch.store.records import GateVerdict

#: The database's clock, in POSIX seconds (shared by every node).
_NOW: Final = "extract(epoch from clock_timestamp())::double precision"
#: A statement (the wait for another node's check of the same ORI included) that takes
#: longer than this fails: the sign-on is refused rather than left waiting.
STATEMENT_TIMEOUT_MS: Final = 10_000
#: Connections kept for sign-on decisions (one decision uses one at a time).
POOL: Final = 4
#: The source of an ORI's own row (every source together).
EVERY: Final = ""
#: Source rows kept at most, as the embedded gate's (core/gate.py): past it, the
#: counts that lock nothing are forgotten, so that guesses from ever new
#: addresses cannot grow the table without end.
MAX_TRACKED: Final = 100_000
#: A node counts the source rows once per this many failures it decided (a
#: count per failure would cost each guess a scan).
PRUNE_EVERY: Final = 1_000

_T = TypeVar("_T")


def decide(conn: Any, ori: str, source: str, after: int, ori_after: int, lockout_s: float,
           check: Callable[[], bool]) -> GateVerdict:
    """Decide one sign-on for ``ori`` from ``source``, cluster-wide.

    ``check()`` says whether the credential is right; it is called only when
    neither the source nor the ORI is locked out, with the ORI's lock held.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key("signon", ori),))
        rows = conn.execute(
            f"SELECT source, failures, locked_until, {_NOW} FROM signon_failures "
            "WHERE ori = %s AND source IN (%s, %s)", (ori, source, EVERY)).fetchall()
        now = float(conn.execute(f"SELECT {_NOW}").fetchone()[0]) if not rows \
            else float(rows[0][3])
        have = {str(r[0]): (int(r[1]), float(r[2])) for r in rows}
        whole_n, whole_until = have.get(EVERY, (0, 0.0))
        src_n, src_until = have.get(source, (0, 0.0))
        if whole_until > now:
            return GateVerdict(False, "ori locked out")
        if src_until > now:
            return GateVerdict(False, "locked out")
        if check():
            # A good sign-on clears its source's count (not the ORI's: others may guess).
            conn.execute("DELETE FROM signon_failures WHERE ori = %s AND source = %s",
                         (ori, source))
            return GateVerdict(True)
        src_n += 1
        src_lock = src_n >= after
        whole_n += 1
        whole_lock = whole_n >= ori_after
        conn.execute(
            "INSERT INTO signon_failures (ori, source, failures, locked_until) "
            "VALUES (%s, %s, %s, %s), (%s, %s, %s, %s) ON CONFLICT (ori, source) DO UPDATE "
            "SET failures = excluded.failures, locked_until = excluded.locked_until",
            (ori, source, 0 if src_lock else src_n, now + lockout_s if src_lock else 0.0,
             ori, EVERY, 0 if whole_lock else whole_n,
             now + lockout_s if whole_lock else whole_until))
        if src_lock:
            # Lock-outs of this ORI that ended count nothing any more: keep the table small.
            conn.execute("DELETE FROM signon_failures WHERE ori = %s AND source <> %s "
                         "AND locked_until > 0 AND locked_until <= %s", (ori, EVERY, now))
        return GateVerdict(False, None, src_lock, whole_lock)


def prune(conn: Any, limit: int = MAX_TRACKED) -> int:
    """Forget the source counts that lock nothing once there are more than ``limit``
    source rows; returns how many were forgotten. Lock-outs in force, and every
    ORI's own row, stay."""
    n = int(conn.execute("SELECT count(*) FROM signon_failures WHERE source <> %s",
                         (EVERY,)).fetchone()[0])
    if n <= limit:
        return 0
    return int(conn.execute(f"DELETE FROM signon_failures WHERE source <> %s "
                            f"AND locked_until <= {_NOW}", (EVERY,)).rowcount)


def unlock(conn: Any, target: str) -> list[str]:
    """Lift the lock-outs and counts of an ORI or a source address, on every node.

    Returns what was locked (``ORI`` or ``ORI@host``), for the audit.
    """
    rows = conn.execute(
        f"DELETE FROM signon_failures WHERE ori = %s OR (source = %s AND source <> %s) "
        f"RETURNING ori, source, locked_until > {_NOW}", (target, target, EVERY)).fetchall()
    return sorted(str(o) if s == EVERY else f"{o}@{s}" for o, s, locked in rows if locked)


def lockouts(conn: Any) -> list[dict[str, object]]:
    """What is locked out now: ``{"ori", "source" (None: every source), "remaining_s"}``."""
    rows = conn.execute(
        f"SELECT ori, source, locked_until - {_NOW} FROM signon_failures "
        f"WHERE locked_until > {_NOW} ORDER BY ori, source").fetchall()
    return [{"ori": str(o), "source": None if s == EVERY else str(s),
             "remaining_s": round(float(left), 1)} for o, s, left in rows]


class _Broken(StoreError):
    """The connection was lost (not a statement's error)."""


class SharedGate:
    """A node's connections for sign-on decisions (a few, used from worker threads).

    Every method blocks (run it off the event loop) and raises StoreError,
    naming the database, when it cannot be reached; a connection that failed
    is dropped and the next call connects again.
    """

    def __init__(self, url: str, node_id: str, size: int = POOL) -> None:
        self.url = url
        self.node_id = node_id
        self.where = redact(url)
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False
        #: Failures this node decided since it last looked at the table's size.
        self._failures = 0
        #: Source rows kept at most (:data:`MAX_TRACKED`; a test lowers it).
        self.max_tracked = MAX_TRACKED

    def decide(self, ori: str, source: str, after: int, ori_after: int, lockout_s: float,
               check: Callable[[], bool]) -> GateVerdict:
        """:func:`decide` on one of the node's connections; every
        :data:`PRUNE_EVERY` failures, :func:`prune` after it."""
        verdict = self._run(lambda c: decide(c, ori, source, after, ori_after, lockout_s,
                                             check))
        if not verdict.ok and verdict.locked is None:
            with self._lock:
                self._failures += 1
                due = self._failures >= PRUNE_EVERY
                if due:
                    self._failures = 0
            if due:
                # After the decision, never inside it: the ORI's lock is not held longer.
                # Housekeeping only: a database that fails here fails the next decision
                # loudly, and this one's verdict stands.
                with contextlib.suppress(StoreError):
                    self._run(lambda c: prune(c, self.max_tracked))
        return verdict

    def unlock(self, target: str) -> list[str]:
        """:func:`unlock` on one of the node's connections."""
        return self._run(lambda c: unlock(c, target))

    def lockouts(self) -> list[dict[str, object]]:
        """:func:`lockouts` on one of the node's connections."""
        return self._run(lockouts)

    def close(self) -> None:
        """Close the idle connections (one in use is closed when it comes back)."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def _run(self, fn: Callable[[Any], _T]) -> _T:
        with self._slots:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is not None:
                try:
                    return self._on(conn, fn)
                except _Broken:
                    # A kept connection the database ended (it restarted, failed over):
                    # once more on a new one, so the first sign-on after is not refused.
                    pass
            return self._on(self._connect(), fn)

    def _connect(self) -> Any:
        conn = connect(self.url, application=f"nlets-switch node {self.node_id} sign-on")
        try:
            with translated_errors(self.where):
                conn.execute(f"SET statement_timeout = {STATEMENT_TIMEOUT_MS}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _on(self, conn: Any, fn: Callable[[Any], _T]) -> _T:
        try:
            with translated_errors(self.where):
                out = fn(conn)
        except StoreError as e:
            broken = conn.broken
            conn.close()  # the next call connects again
            if broken:
                raise _Broken(str(e)) from e
            raise
        except BaseException:
            conn.close()
            raise
        with self._lock:
            if not self._closed:
                self._idle.append(conn)
                return out
        conn.close()
        return out
