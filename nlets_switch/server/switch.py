"""The switch: the thin asyncio layer that carries out the engine's effects.

Everything the protocol decides is in :mod:`nlets_switch.core` (sans-IO).
This module owns what touches the world: the listeners (TCP and TLS), the
one timer (``loop.call_at`` on the engine's next deadline), the writes of
each loop turn, the hand-off of batches to the journal and of their commits
back to the engine, credential checks in a thread, the in-process services,
the observers and the audit sink.

The path of one message::

    LinkConnection.data_received -> Engine.receive -> (end of the loop turn)
      -> Engine.end_turn -> WriteBatch -> Journal.write (one commit)
      -> Engine.committed -> A to the senders, deliveries pumped
      -> writes of the turn (one writelines per link)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

from nlets_switch.config import Config, Listener
from nlets_switch.core import effects as fx
from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.delivery import Delivery, Endpoint
from nlets_switch.core.directory import Directory
from nlets_switch.core.engine import Engine
from nlets_switch.core.events import Audit, AuditSink, Security, SwitchEvent
from nlets_switch.core.ledger import Stats
from nlets_switch.core.router import Router
from nlets_switch.log import get_logger
from nlets_switch.ops.ratelog import BoundedLogger
from nlets_switch.server.connection import LinkConnection
from nlets_switch.server.control import LocalEndpoint, SwitchControl
from nlets_switch.server.credentials import hash_credential, verify_credential
from nlets_switch.server.security import BOUNDED_LOGS, Upkeep
from nlets_switch.server.tls_listener import tls_context, tls_listener
from nlets_switch.store.postgres_journal import AnyJournal, journal_for
from nlets_switch.store.records import OPEN_STATES, ExpiredRow, OwedRow
from nlets_switch.wire.schema import SchemaSet, load_schemas

if TYPE_CHECKING:
    from nlets_switch.server.cluster import Cluster

log = get_logger("switch")

#: Log events that are never summarised: alerts, already once per change.
_ALERTS = frozenset({"journal_fault", "journal_recovered"})
#: A stopping switch closes its links once none has sent anything for this long
#: (each M read meanwhile is answered N .05.), and after STOP_DRAIN_S at most.
STOP_QUIET_S = 0.25
STOP_DRAIN_S = 3.0

Observer = Callable[[SwitchEvent], None]


class Switch(SwitchControl):
    """The message switch: listeners, journal, timer, services, around the engine.

    ``audit`` is where audit events are kept (required: a switch cannot audit
    nothing by accident); ``journal`` defaults to ``<data_dir>/journal.sqlite``, or the
    PostgreSQL database of the configuration's ``store.url``.
    """

    def __init__(self, config: Config, schemas: SchemaSet | None = None, *,
                 audit: AuditSink, journal: AnyJournal | None = None,
                 service_credential: str | None = None) -> None:
        self.config = config
        self.schemas = schemas if schemas is not None else load_schemas()
        self.journal: AnyJournal = (journal if journal is not None
                                    else journal_for(config.store.url, config.data_dir,
                                                     config.store.node_id))
        self.audit_sink = audit
        self.engine = Engine(config, self.schemas)
        #: What service ORIs without a credential of their own sign on with
        #: (``serve`` makes one at start-up for its responders); kept hashed.
        self.service_credential = service_credential
        if service_credential is not None:
            # A machine-made 192-bit secret (serve's): no guessing to slow down, so a light
            # scrypt (2 MiB instead of 16 per check) keeps the start's memory peak down.
            self.engine.service_credential = hash_credential(service_credential, n=2**11)
        self.upkeep = Upkeep(self)
        self.observers: list[Observer] = []
        #: ORI -> factory of the in-process endpoint that answers for it when no
        #: link does (the services install these).
        self.standby: dict[str, Callable[[], LocalEndpoint]] = {}
        self.connections: set[LinkConnection] = set()
        self.servers: list[asyncio.Server] = []
        self.addresses: list[tuple[str, int]] = []
        self.started = asyncio.Event()
        #: Plug-ins (local services) start after the journal and before the
        #: listeners, and stop before the journal closes; see nlets_switch.server.app.
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []
        self._protocols: dict[int, LinkConnection] = {}
        self._locals: dict[int, LocalEndpoint] = {}
        self._dirty: dict[int, Conn] = {}
        self._turn_scheduled = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._journal_open = False
        self._all_closed = asyncio.Event()
        #: Warnings and errors of the engine: once, then a count per second
        #: (issue 15: a full disk logged 14,000 lines a second).
        self.bounded_log = BoundedLogger(log)
        self._log_flush: asyncio.TimerHandle | None = None
        #: Cluster mode (store.node_id; server/cluster.py), else None.
        self.cluster: Cluster | None = None

    # -- what the engine knows, for tools, services and operators ------------------

    @property
    def links(self) -> dict[str, Endpoint]:
        """ORI -> its live endpoint (``kind``: ``tcp`` or ``local``)."""
        return self.engine.links

    @property
    def directory(self) -> Directory:
        """The directory of ORIs (ORION) in force."""
        return self.engine.directory

    @property
    def router(self) -> Router:
        """The router in force."""
        return self.engine.router

    @property
    def stats(self) -> Stats:
        """Counters for metrics."""
        return self.engine.stats

    @property
    def expiry_interval(self) -> float:
        """Seconds between sweeps for expired holds."""
        return self.engine.expiry_interval

    @expiry_interval.setter
    def expiry_interval(self, seconds: float) -> None:
        self.engine.set_expiry_interval(seconds, self.now())
        self._arm_timer()

    def online(self, ori: str) -> bool:
        """Whether ``ori`` has a live endpoint."""
        return self.engine.online(ori)

    def render(self, d: Delivery) -> str:
        """The output message text of a delivery (PROTOCOL part 3)."""
        return self.engine.render(d)

    def open_states(self) -> tuple[str, ...]:
        """The delivery states that still owe something (for tools)."""
        return OPEN_STATES

    def now(self) -> Now:
        """The engine's time: the loop's monotonic clock and the wall clock."""
        loop = self._loop
        return Now(loop.time() if loop is not None else time.monotonic(), time.time())

    # -- life cycle -----------------------------------------------------------------

    async def start(self) -> None:
        """Open the journal, recover its numbers, start services, then listen."""
        self._loop = loop = asyncio.get_running_loop()
        self.engine.restore(self.journal.recover())  # (migrates the schema)
        if self.config.store.node_id and self.cluster is None:
            from nlets_switch.server.cluster import Cluster

            self.cluster = Cluster(self)  # registers the node: a duplicate id raises
        if self.cluster is not None:
            self.cluster.start(loop)
        self.journal.start(loop)
        self._journal_open = True
        for hook in self.on_start:
            await hook()
        for lst in self.config.listeners:
            tls = tls_listener(lst)
            if tls is not None:
                self.upkeep.tls.append(tls)
            # TLS is done by each connection over memory BIOs (server/connection.py),
            # so a refused handshake is audited with the peer's address.
            server = await loop.create_server(
                functools.partial(LinkConnection, self, lst, tls), lst.host, lst.port,
                reuse_address=True)
            self.servers.append(server)
            for s in server.sockets:
                name = s.getsockname()
                if s.family in (socket.AF_INET, socket.AF_INET6):
                    self.addresses.append((name[0], name[1]))
        self.apply(self.engine.start(self.now()))
        self.upkeep.start()
        self.started.set()
        log.info("listening", addresses=[f"{h}:{p}" for h, p in self.addresses],
                 journal=str(self.journal.path), oris=len(self.directory))

    def tls_context(self, lst: Listener) -> ssl.SSLContext | None:
        """The TLS context of a listener (PROTOCOL part 7), or None for plain TCP."""
        return tls_context(lst)

    async def stop(self) -> None:
        """Graceful stop: no new links, finish custody and writing, close links."""
        self.apply(self.engine.stop_accepting(self.now()))
        for s in self.servers:
            s.close()
        for hook in self.on_stop:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(hook(), 10)
        # Every message read so far gets its A (custody is taken) before links
        # close, and what was sent is recorded. Links are still read: an M
        # read from now on is answered N .05.
        await self._settle_custody()
        self.apply(self.engine.sign_off_all(self.now()))
        self._end_turn()
        # Close once the links are quiet: a frame still on its way would
        # otherwise meet a closed socket (a reset instead of an answer).
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STOP_DRAIN_S
        while self.connections and loop.time() < deadline:
            quiet = loop.time() - self.engine.last_input
            if quiet >= STOP_QUIET_S:
                break
            await asyncio.sleep(STOP_QUIET_S - quiet)
        await self._settle_custody()  # the As of deliveries that came meanwhile
        self._end_turn()
        self.apply(self.engine.close_all(self.now()))
        if self.connections:
            # Closing flushes what each link still had to send; give it 2 s.
            self._all_closed.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(2):
                    await self._all_closed.wait()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for s in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 2)
        await self.upkeep.stop()
        self._journal_open = False
        self.journal.close()
        if self.cluster is not None:
            self.cluster.close()  # after the journal: every commit before the locks go
        if self._log_flush is not None:
            self._log_flush.cancel()
            self._log_flush = None
        self.bounded_log.flush()
        log.info("stopped")

    async def _settle_custody(self) -> None:
        """Hand everything gathered to the journal and wait for it (10 s at most)."""
        if not self._journal_open:
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                while True:
                    self.apply(self.engine.flush(self.now()))
                    await self.journal.barrier()
                    if self.engine.idle:
                        break

    # -- connections (called by LinkConnection) ------------------------------------------

    def register(self, proto: LinkConnection) -> None:
        """A connection was made."""
        assert proto.conn is not None
        self._protocols[proto.conn.id] = proto
        if proto.conn.registered:
            self.connections.add(proto)

    def unregister(self, proto: LinkConnection) -> None:
        """A connection was lost."""
        self.connections.discard(proto)
        if not self.connections:
            self._all_closed.set()
        if proto.conn is not None:
            self._protocols.pop(proto.conn.id, None)
            self._dirty.pop(proto.conn.id, None)

    # -- monitoring -------------------------------------------------------------------------

    def emit(self, event: SwitchEvent) -> None:
        """An event to every observer (they must never block); audits also to the sink.

        Security events a flood repeats are kept once a second per peer, with a count.
        """
        if isinstance(event, Audit):
            kept = self.upkeep.admit(event)
            if kept is None:
                return
        self.emit_now(event)

    def emit_now(self, event: SwitchEvent) -> None:
        """:meth:`emit` without the bound on repeated security events."""
        if isinstance(event, Audit):
            self.audit_sink.audit(event)
        for obs in self.observers:
            obs(event)

    def security(self, event: str, subject: str, outcome: str, **detail: Any) -> None:
        """A security event (audited, published on MQTT); never text or credentials."""
        self.emit(Security(event, subject, outcome, detail, time.time()))

    def audit(self, event: str, subject: str, outcome: str, **detail: Any) -> None:
        """An audit-trail event (CJIS 5.4.1.1), kept by the audit sink."""
        self.emit(Audit(event, subject, outcome, detail, time.time()))

    # -- carrying out effects ----------------------------------------------------------------

    def apply(self, effects: Iterable[fx.Effect]) -> None:
        """Carry out the engine's effects, in order."""
        for e in effects:
            if isinstance(e, fx.Output):
                self._dirty[e.conn.id] = e.conn
            elif isinstance(e, fx.WriteBatch):
                self._store(self.journal.write, e.batch,
                            functools.partial(self._committed, e.token),
                            functools.partial(self._committed, e.token))
            elif isinstance(e, fx.DeliverLocal):
                local = self._locals.get(e.endpoint.id)
                if local is not None:
                    local.transmit(e.seq, e.delivery)
            elif isinstance(e, fx.Durable):
                e.token(e.error)
            elif isinstance(e, SwitchEvent):
                self.emit(e)
            else:
                self._apply_rare(e)
        if self._dirty or self.engine.wants_turn_end:
            self._schedule_turn()
        self._arm_timer()

    def _apply_rare(self, e: fx.Effect) -> None:
        if isinstance(e, fx.Close):
            self._dirty.pop(e.conn.id, None)
            proto = self._protocols.get(e.conn.id)
            data = self.engine.take_output(e.conn)
            if proto is not None:
                proto.close(data)
        elif isinstance(e, fx.PauseReading | fx.ResumeReading):
            proto = self._protocols.get(e.conn.id)
            if proto is not None:
                if isinstance(e, fx.PauseReading):
                    proto.pause_reading()
                else:
                    proto.resume_reading()
        elif isinstance(e, fx.ReadOwed):
            self._store(self.journal.owed, e.link, e.after, e.limit,
                        functools.partial(self._owed, e.token),
                        functools.partial(self._owed, e.token, None))
        elif isinstance(e, fx.ExpireDue):
            self._store(self.journal.expire, e.wall, e.limit, self._expired,
                        functools.partial(self._expired, None))
        elif isinstance(e, fx.CheckCredential):
            self._spawn(self._check(e), "credential-check")
        elif isinstance(e, fx.DecideSignOn):
            if self.cluster is not None:
                self._spawn(self.cluster.decide(e), "sign-on-decision")
        elif isinstance(e, fx.Standby):
            make = self.standby.get(e.ori)
            if make is not None and self.engine.accepting:
                self.attach(make())
        elif isinstance(e, fx.Log):
            if (e.level in ("warning", "error") and e.event not in _ALERTS
                    and e.event not in BOUNDED_LOGS):
                # Per-ORI bounding of repeated warnings (issue 15); the security
                # upkeep bounds its own events (refused connections) per event.
                self.bounded_log.emit(e.level, e.event, e.fields.get("ori"), e.fields)
                self._arm_log_flush()
            else:
                self.upkeep.log(e.level, e.event, e.fields)
        elif isinstance(e, fx.ClaimOri):
            if self.cluster is not None:
                self.cluster.claim(e.ori, e.token)
        elif isinstance(e, fx.ReleaseOri):
            if self.cluster is not None:
                self.cluster.release(e.ori)
        elif isinstance(e, fx.Checkpoint):
            self._spawn(self._checkpoint(), "checkpoint")

    def _arm_log_flush(self) -> None:
        # The count of a burst that ended is logged when its interval ends.
        loop = self._loop
        if self._log_flush is not None or loop is None:
            return
        d = self.bounded_log.rate.next_deadline()
        if d is not None:
            self._log_flush = loop.call_later(max(0.0, d - time.monotonic()) + 0.01,
                                              self._flush_log)

    def _flush_log(self) -> None:
        self._log_flush = None
        self.bounded_log.flush()
        self._arm_log_flush()

    def _store(self, op: Callable[..., None], *args: Any) -> None:
        """Hand one operation to the journal; a closed journal fails it at once."""
        *params, done, failed = args
        try:
            op(*params, done)
        except RuntimeError as e:  # the journal is closed: the switch is stopping
            failed(e)

    def _committed(self, token: Any, error: BaseException | None) -> None:
        self.apply(self.engine.committed(token, error, self.now()))

    def _owed(self, token: Any, rows: list[OwedRow] | None,
              error: BaseException | None) -> None:
        self.apply(self.engine.owed_loaded(token, rows, error, self.now()))

    def _expired(self, rows: list[ExpiredRow] | None, error: BaseException | None) -> None:
        self.apply(self.engine.expired(rows, error, self.now()))

    async def _check(self, e: fx.CheckCredential) -> None:
        # scrypt is deliberately slow: it runs in a thread, off the event loop.
        try:
            ok = await asyncio.to_thread(verify_credential, e.credential, e.stored)
        except Exception:
            ok = False
        self.apply(self.engine.credential_checked(e.token, ok, self.now()))

    async def _checkpoint(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.journal.checkpoint)

    def _spawn(self, coro: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- the loop turn and the timer -------------------------------------------------------

    def _schedule_turn(self) -> None:
        if not self._turn_scheduled and self._loop is not None:
            self._turn_scheduled = True
            self._loop.call_soon(self._end_turn)

    def _end_turn(self) -> None:
        """The end of a loop turn: what it gathered goes to the journal, writes go out."""
        self._turn_scheduled = False
        dirty, self._dirty = self._dirty, {}
        take = self.engine.take_output
        for cid, conn in dirty.items():
            data = take(conn)
            proto = self._protocols.get(cid)
            if proto is not None:
                proto.write(data)
        self.apply(self.engine.end_turn(self.now()))

    def _arm_timer(self) -> None:
        d = self.engine.next_deadline()
        loop = self._loop
        if d is None or loop is None:
            return
        if self._timer is not None:
            if self._timer_at <= d:
                return  # an earlier wake-up is set; it will re-arm
            self._timer.cancel()
        self._timer_at = d
        self._timer = loop.call_at(d, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        # Fired at its time (within the clock's resolution, which uvloop counts in ms).
        now = Now(max(loop.time(), self._timer_at), time.time())
        self.apply(self.engine.tick(now))
