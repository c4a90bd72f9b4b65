"""A cluster node's own database connection, on a thread: its locks, LISTEN, heartbeat.

One connection per node holds the node's lock and the lock of every ORI the
node's links and services have (:mod:`nlets_switch.store.postgres_cluster`),
so everything the node holds goes at once when the node or its session dies.
The thread runs the claims and releases the switch asks for, in order,
LISTENs for requests to let go of an ORI and for wake-ups, and once a
second writes a heartbeat and reads which ORIs the other nodes hold.

What it learns reaches the switch as calls of a :class:`NodeEvents` on the
event loop. When the connection is lost the thread connects again, takes its
node lock and its ORIs back; an ORI that another node took meanwhile is
reported lost (the switch closes that link).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final, Protocol

from nlets_switch.errors import StoreError
from nlets_switch.log import get_logger
from nlets_switch.store import postgres_cluster as pc
from nlets_switch.store.postgres import connect, redact
from nlets_switch.store.records import Claim

log = get_logger("cluster")

#: How long a sign-on waits for another node to let its ORI go.
TAKE_S: Final = 1.5
#: How often a service that another node runs tries to take its ORI.
TRY_EVERY_S: Final = 1.0
#: Heartbeat and the full view of the other nodes' ORIs.
BEAT_S: Final = 1.0
#: How long the thread waits for notifications between its other work.
_POLL_S: Final = 0.05
#: Server-side TCP keepalive of the node's session (no effect over a Unix socket).
_SERVER_KEEPALIVE: Final = (("tcp_keepalives_idle", 5), ("tcp_keepalives_interval", 2),
                            ("tcp_keepalives_count", 3), ("tcp_user_timeout", 10_000))

#: ``done(claim, reason)``: the claim, or None and why not.
ClaimDone = Callable[["Claim | None", str], None]
#: Why a sign-on's claim failed.
HELD_ELSEWHERE: Final = "signed on at another node"
UNREACHABLE: Final = "database unreachable"


class NodeEvents(Protocol):
    """What the node thread tells the switch (called on the event loop)."""

    def drop_requested(self, ori: str) -> None:
        """Another node took a sign-on for ``ori``: close its link here."""

    def woken(self, oris: list[str]) -> None:
        """Deliveries for these ORIs were made durable by another node."""

    def view(self, elsewhere: frozenset[str]) -> None:
        """The ORIs the other nodes hold now."""

    def presence(self, ori: str, here: bool) -> None:
        """Another node took (``here`` True) or let go of ``ori``."""

    def lost(self, ori: str) -> None:
        """After a lost connection, another node holds ``ori``: close it here."""


class _Want:
    __slots__ = ("asked", "deadline", "done", "next_try", "ori", "take")

    def __init__(self, ori: str, take: bool, done: ClaimDone, now: float) -> None:
        self.ori = ori
        self.take = take
        self.done = done
        self.deadline = now + TAKE_S
        self.next_try = now
        self.asked = False


class ClusterNode:
    """The node's connection and thread: :meth:`open` (registers), :meth:`start`,
    :meth:`claim` / :meth:`release`, :meth:`close`."""

    def __init__(self, url: str, node_id: str, address: str = "") -> None:
        self.url = url
        self.node_id = node_id
        self.address = address
        self.where = redact(url)
        self.slot = 0
        self._conn: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._events: NodeEvents | None = None
        self._commands: deque[tuple[str, Any]] = deque()
        self._lock = threading.Lock()
        self._wants: list[_Want] = []
        #: ORI -> how many claims hold it (the switch pairs each with a release).
        self._owned: dict[str, int] = {}
        self._thread: threading.Thread | None = None
        self._closing = False
        self._down_since: float | None = None
        self._beat_at = 0.0

    # -- life cycle ---------------------------------------------------------------

    def open(self) -> int:
        """Connect and register the node (blocking, before start); returns its id slot.

        Raises StoreError when the database cannot be reached or a node of this
        name runs already.
        """
        conn = connect(self.url, application=f"nlets-switch node {self.node_id}")
        try:
            self.slot = self._register(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return self.slot

    def _register(self, conn: Any) -> int:
        try:
            # The server's side of the session notices a node host that vanished
            # (powered off, cut off) in about 10 s, not the kernel's two hours, and
            # ends the session: its locks, so its ORIs, are free for the others.
            for name, value in _SERVER_KEEPALIVE:
                conn.execute(f"SET {name} = {value}")
            slot = pc.register_node(conn, self.node_id, self.address, time.time())
            for ch in (pc.DROP_CHANNEL, pc.WAKE_CHANNEL, pc.PRESENCE_CHANNEL):
                conn.execute(f"LISTEN {ch}")
        except StoreError:
            raise
        except Exception as e:
            raise StoreError(f"{self.where}: {type(e).__name__}: {e}") from e
        return slot

    def start(self, loop: asyncio.AbstractEventLoop, events: NodeEvents) -> None:
        """Run the thread; ``events`` are called on ``loop``."""
        self._loop = loop
        self._events = events
        self._thread = threading.Thread(target=self._run, name=f"cluster-{self.node_id}",
                                        daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Let go of everything (the node's row says it stopped) and close."""
        self._closing = True
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if not conn.closed and not conn.broken:
                    pc.node_stopped(conn, self.node_id, time.time())
            except Exception as e:  # the database is gone: its locks went with it
                log.warning("node_stop_unrecorded", error=type(e).__name__)
            conn.close()

    # -- asked by the switch (any thread) -------------------------------------------

    def claim(self, ori: str, take: bool, done: ClaimDone) -> None:
        """Take ``ori``. ``take``: a sign-on, which asks the holder elsewhere to let go and
        waits up to :data:`TAKE_S`; else (a service) keep trying until it is free.
        ``done(claim or None)`` runs on the loop."""
        with self._lock:
            self._commands.append(("claim", (ori, take, done)))

    def release(self, ori: str) -> None:
        """One claim of ``ori`` ends (its link or service is gone)."""
        with self._lock:
            self._commands.append(("release", ori))

    def elsewhere(self) -> frozenset[str]:
        """The ORIs the other nodes hold (blocking; before :meth:`start`)."""
        return pc.elsewhere(self._conn, self.node_id)

    @property
    def owned(self) -> frozenset[str]:
        """The ORIs this node holds now."""
        return frozenset(self._owned)

    # -- the thread --------------------------------------------------------------------

    def _run(self) -> None:
        while not self._closing:
            try:
                conn = self._connection()
                if conn is None:
                    self._fail_takes()
                    time.sleep(0.5)
                    continue
                self._work(conn)
                wait = _POLL_S / 2 if any(w.take for w in self._wants) else _POLL_S
                for n in conn.notifies(timeout=wait):
                    self._notified(n.channel, n.payload)
            except Exception as e:
                self._went_down(e)

    def _work(self, conn: Any) -> None:
        with self._lock:
            commands = list(self._commands)
            self._commands.clear()
        for what, arg in commands:
            if what == "release":
                self._release(conn, arg)
            else:
                ori, take, done = arg
                self._wants.append(_Want(ori, take, done, time.monotonic()))
        now = time.monotonic()
        if self._wants:
            keep: list[_Want] = []
            for w in self._wants:
                if w.next_try <= now and not self._attempt(conn, w, now):
                    if w.take and now >= w.deadline:
                        self._post(w.done, None, HELD_ELSEWHERE)
                        continue
                    keep.append(w)
                elif w.next_try > now:
                    keep.append(w)
            self._wants = keep
        if now >= self._beat_at:
            self._beat_at = now + BEAT_S
            pc.heartbeat(conn, self.node_id, time.time())
            view = pc.elsewhere(conn, self.node_id)
            self._call("view", view)

    def _attempt(self, conn: Any, w: _Want, now: float) -> bool:
        """Try ``w``'s lock once; True when it is settled (taken)."""
        if w.ori in self._owned:
            self._owned[w.ori] += 1
            self._post(w.done, pc.claim_floor(conn, w.ori))
            return True
        got = pc.try_lock_ori(conn, self.node_id, w.ori, time.time())
        if got is not None:
            self._owned[w.ori] = 1
            self._post(w.done, got)
            return True
        if w.take:
            if not w.asked:
                pc.ask_to_drop(conn, self.node_id, w.ori)
                w.asked = True
            w.next_try = now + 0.02
        else:
            w.next_try = now + TRY_EVERY_S
        return False

    def _release(self, conn: Any, ori: str) -> None:
        n = self._owned.get(ori, 0)
        if n > 1:
            self._owned[ori] = n - 1
        elif n == 1:
            del self._owned[ori]
            pc.unlock_ori(conn, self.node_id, ori)
        # A service still waiting for this ORI stops waiting when it is released.
        self._wants = [w for w in self._wants if not (w.ori == ori and not w.take)]

    def _notified(self, channel: str, payload: str) -> None:
        node, _, rest = payload.partition(" ")
        if channel == pc.PRESENCE_CHANNEL:
            sign, _, rest = payload.partition(" ")
            node, _, ori = rest.partition(" ")
            if node != self.node_id:
                self._call("presence", ori, sign == "+")
        elif node == self.node_id:
            return  # our own
        elif channel == pc.DROP_CHANNEL:
            if rest in self._owned:
                self._call("drop_requested", rest)
        elif channel == pc.WAKE_CHANNEL:
            mine = [o for o in rest.split(",") if o in self._owned]
            if mine:
                self._call("woken", mine)

    def _connection(self) -> Any:
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        if conn is not None:
            conn.close()
            self._conn = None
        try:
            conn = connect(self.url, application=f"nlets-switch node {self.node_id}")
        except StoreError as e:
            self._went_down(e)
            return None
        try:
            self._register(conn)
        except StoreError as e:
            conn.close()
            log.error("node_register_failed", node=self.node_id, error=str(e))
            return None
        self._conn = conn
        if self._down_since is not None:
            log.warning("cluster_back", node=self.node_id,
                        after_s=round(time.monotonic() - self._down_since, 1))
            self._down_since = None
        # Take back what the node held; what another node took meanwhile is lost here.
        now = time.time()
        for ori in list(self._owned):
            if pc.try_lock_ori(conn, self.node_id, ori, now) is None:
                del self._owned[ori]
                log.warning("ori_taken_elsewhere", ori=ori, node=self.node_id)
                self._call("lost", ori)
        # Wake-ups sent while the connection was down were not heard: read back all.
        if self._owned:
            self._call("woken", list(self._owned))
        return conn

    def _went_down(self, error: BaseException) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.error("cluster_connection_lost", node=self.node_id,
                      error=type(error).__name__)
        self._fail_takes()

    def _fail_takes(self) -> None:
        """Sign-ons waiting for a claim fail now (the sender hears it at once); services
        try again once the database is back."""
        with self._lock:
            commands = list(self._commands)
            self._commands.clear()
        for what, arg in commands:
            if what == "release":
                with self._lock:
                    self._commands.append((what, arg))  # carried out once connected
            else:
                ori, take, done = arg
                self._wants.append(_Want(ori, take, done, time.monotonic()))
        wants, self._wants = self._wants, []
        for w in wants:
            if w.take:
                self._post(w.done, None, UNREACHABLE)
            else:
                w.next_try = 0.0
                self._wants.append(w)

    def _post(self, done: ClaimDone, claim: Claim | None, reason: str = "") -> None:
        loop = self._loop
        if loop is not None:
            try:
                loop.call_soon_threadsafe(done, claim, reason)
            except RuntimeError:
                pass  # the loop is closed

    def _call(self, name: str, *args: Any) -> None:
        loop, events = self._loop, self._events
        if loop is not None and events is not None:
            try:
                loop.call_soon_threadsafe(getattr(events, name), *args)
            except RuntimeError:
                pass
