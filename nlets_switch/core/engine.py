"""The switch engine, sans-IO: links, custody, delivery and timers as effects.

The path of one message (PROTOCOL parts 1 to 4)::

    receive(conn, bytes, now) -> Link.receive_data -> MessageReceived
      -> rate bucket, characters, size -> Ledger.accept: parse, route, rows
      -> end_turn(now) -> WriteBatch effect (one commit for the whole turn)
      -> committed(group, None, now) -> A to each sender, dispatch
      -> Endpoint queue -> window (SM first) -> M frame or DeliverLocal effect
      -> the receiver's A -> delivered: a 'done' row in the next group

Every entry point takes ``now`` (:class:`~nlets_switch.core.conn.Now`) and
returns a list of effects (:mod:`nlets_switch.core.effects`); nothing here
reads a clock, touches a socket or a database, or logs. :meth:`Engine.next_deadline`
says when :meth:`Engine.tick` wants to run: one heap holds every timer, so
idle links cost nothing between their own deadlines.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from nlets_switch.core import link as lk
from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.console import Console
from nlets_switch.core.delivery import Endpoint
from nlets_switch.core.directory import Directory
from nlets_switch.core.dispatch import EXPIRE_BATCH
from nlets_switch.core.effects import (
    Checkpoint,
    Close,
    Durable,
    Effect,
)
from nlets_switch.core.events import (
    Refused,
    RefusedByReceiver,
)
from nlets_switch.core.faults import Faults
from nlets_switch.core.ledger import WriteGroup
from nlets_switch.core.router import Router
from nlets_switch.core.state import CHECKPOINT, EXPIRY, RETRY, SENT, review_rules
from nlets_switch.errors import FrameError, LinkError, RateLimited, SwitchBusy, TooManyConnections
from nlets_switch.store.records import ExpiredRow, OwedRow, Recovered
from nlets_switch.wire.schema import SchemaSet

if TYPE_CHECKING:
    from nlets_switch.config import Config

__all__ = ["Conn", "Engine", "Now"]

#: Time a closing link gets for the custody of what it sent (its As go out first).
SETTLE_S: Final = 5.0
#: How often the store's write-ahead log is copied back while writes happen.
CHECKPOINT_S: Final = 1.0


class Engine(Faults, Console):
    """Every link, endpoint and message of one switch, without I/O.

    ``recovered`` is what the store knew at start (highest ids, counters).
    """

    def __init__(self, config: Config, schemas: SchemaSet, recovered: Recovered | None = None,
                 directory: Directory | None = None, router: Router | None = None) -> None:
        super().__init__(config, schemas, recovered, directory, router)
        self.expiry_interval = 5.0
        self._expiring = False
        self._expiry_at: float | None = None
        self._checkpoint_at: float | None = None

    # ------------------------------------------------------------------------
    # Entry points: each takes now and returns effects.
    # ------------------------------------------------------------------------

    def restore(self, recovered: Recovered) -> None:
        """Go on from what the store knew at start: highest ids, counters."""
        self.ledger.restore(recovered)

    def start(self, now: Now) -> list[Effect]:
        """Begin: the first expiry sweep is due at once."""
        fx = self._fx = []
        self._schedule_expiry(now.mono)
        return fx

    def open(self, peer: str, host: str, anonymous_ok: bool,
             cert_oris: frozenset[str] | None, now: Now) -> tuple[Conn, list[Effect]]:
        """A connection was accepted (after its TLS handshake, if any)."""
        fx = self._fx = []
        lim = self.config.limits
        link = lk.Link(lk.Role.SWITCH, now.mono)
        self._configure(link)
        conn = Conn(self._next_id(), link, peer, host, anonymous_ok, cert_oris)
        if not self.accepting:
            conn.closed = True
            link.close()
            fx.append(Close(conn))
            return conn, fx
        self._admit(host, now)
        if (len(self.conns) >= lim.max_connections
                or self.peers.get(host, 0) >= lim.max_connections_per_peer):
            # Refused before any sign-on work: N .06. with seq 0, then close.
            self._log("warning", "too_many_connections", peer=host)
            self._security("admission", "", "refused", now, peer=peer,
                           reason="too many connections")
            link.send_nak(0, TooManyConnections())
            conn.closed = True
            link.close()
            fx.append(Close(conn))
            return conn, fx
        conn.registered = True
        self.conns[conn.id] = conn
        self.peers[host] = self.peers.get(host, 0) + 1
        self.unauth[conn.id] = conn
        self.unauth_by_host.setdefault(host, {})[conn.id] = conn
        self._log("debug", "connected", peer=peer, tls=cert_oris is not None)
        self._arm(conn)
        return conn, fx

    def receive(self, conn: Conn, data: bytes, now: Now) -> list[Effect]:
        """Bytes read from ``conn``."""
        fx = self._fx = []
        self.last_input = now.mono
        if not conn.closed:
            self._link_events(conn, conn.link.receive_data(data, now.mono), now)
            self._after_input(conn, now)
            if conn.link.frame_started is not None and not conn.closed:
                self._arm(conn)  # a frame begun: its deadline may be the earliest
        return fx

    def eof(self, conn: Conn, now: Now) -> list[Effect]:
        """The peer will send nothing more: custody of what it sent, then close."""
        fx = self._fx = []
        if not conn.closed:
            conn.link.receive_eof()
            self._end_input(conn, now)
        return fx

    def lost(self, conn: Conn, now: Now) -> list[Effect]:
        """The transport is gone; what was owed to the link stays in the journal."""
        fx = self._fx = []
        self._authenticating(conn)
        self._close(conn, now, effect=False)
        if conn.registered:
            conn.registered = False
            self.conns.pop(conn.id, None)
            n = self.peers.get(conn.host, 1) - 1
            if n > 0:
                self.peers[conn.host] = n
            else:
                self.peers.pop(conn.host, None)
        return fx

    def writable(self, conn: Conn, ok: bool, now: Now) -> list[Effect]:
        """The transport's write buffer went above (False) or back below (True) its limit.

        A peer that does not read is not read either, and gets no more
        deliveries: they wait in the journal (bounded memory).
        """
        fx = self._fx = []
        conn.writable = ok
        if ok:
            self._resume(conn, "write")
            if conn.endpoint is not None:
                self._pump(conn.endpoint, now)
        else:
            self._pause(conn, "write")
        return fx

    def take_output(self, conn: Conn) -> list[bytes]:
        """The frames ``conn`` has to send (after an :class:`Output` or :class:`Close`)."""
        conn.dirty = False
        return conn.link.data_to_send()

    def committed(self, group: WriteGroup, error: BaseException | None,
                  now: Now) -> list[Effect]:
        """A :class:`WriteBatch` is durable (or failed): custody is taken (part 1)."""
        fx = self._fx = []
        freed = self.ledger.settled(group, error)
        if self._checkpoint_at is None and error is None:
            self._checkpoint_at = now.mono + CHECKPOINT_S
            self.timers.schedule(self._checkpoint_at, CHECKPOINT)
        if error is not None:
            # One line per failed commit, bounded again by the server's log
            # (ops/ratelog.py): never one per refused message (issue 15).
            self._log("error", "journal_write_failed", error=type(error).__name__,
                      refused=len(group.acks), kept=len(group.batch.done))
            self._journal_failed("write", error, None, now)
        else:
            self._journal_ok("write", None, now)
        max_inflight = self.config.limits.max_inflight
        for conn, seq in group.acks:
            conn.inflight -= 1
            if error is not None:
                self._nak(conn, seq, SwitchBusy())
            else:
                conn.link.send_ack(seq)
            self._output(conn)
            if conn.inflight < max_inflight and conn.paused:
                self._resume(conn, "custody")
            if conn.settling:
                self._maybe_finish(conn, now)
        for token in group.tokens:
            fx.append(Durable(token, error))
        if error is None:
            self._dispatch(group.out, now)
        for ep in freed:
            self._pump(ep, now)
        self._flush_group(force=False)
        return fx

    def owed_loaded(self, ep: Endpoint, rows: list[OwedRow] | None,
                    error: BaseException | None, now: Now) -> list[Effect]:
        """The result of a :class:`ReadOwed` for ``ep``."""
        fx = self._fx = []
        ep.loading = False
        if error is not None:
            if not ep.closed:
                self._owed_failed(ep, error, now)
        elif not ep.closed and rows is not None:
            self._journal_ok("read-back", ep.ori, now)
            pending = self.ledger.done_pending
            if pending:
                # Acknowledged, its record not durable yet (a failed commit
                # carries it): not owed any more.
                rows = [r for r in rows if r.id not in pending]
            # What an XML link sent is journaled as its document: its text again.
            ep.loaded([self.formats.owed_text(r) for r in rows])
            if self.rewake and ep.id in self.rewake:
                # Cluster mode: another node's deliveries came meanwhile.
                self.rewake.discard(ep.id)
                ep.last_loaded = 0
                ep.spilled = True
            self._pump(ep, now)
        return fx

    def expired(self, rows: list[ExpiredRow] | None, error: BaseException | None,
                now: Now) -> list[Effect]:
        """The result of an :class:`ExpireDue`: SM .04. to the senders (part 4)."""
        fx = self._fx = []
        self._expiring = False
        if error is not None:
            self._journal_failed("expiry", error, None, now)
        else:
            self._journal_ok("expiry", None, now)
        if rows:
            fx.extend(self.ledger.expired(rows, now.wall))
            if len(rows) >= EXPIRE_BATCH:
                self._schedule_expiry(now.mono)  # more are due: at once
        return fx

    def end_turn(self, now: Now) -> list[Effect]:
        """The loop turn ends: what it gathered goes to the store as one batch."""
        fx = self._fx = []
        self._flush_group(force=False)
        return fx

    def tick(self, now: Now) -> list[Effect]:
        """Run every timer due at ``now``."""
        fx = self._fx = []
        for at, what in self.timers.due(now.mono):
            if what is EXPIRY:
                if at == self._expiry_at:
                    self._expire(now)
            elif what is SENT:
                self._sent_due(now)
            elif what is RETRY:
                if at == self._retry_at:
                    self._retry(now)
            elif what is CHECKPOINT:
                self._checkpoint_at = None
                fx.append(Checkpoint())
            elif isinstance(what, Conn) and what.timer_at == at:
                what.timer_at = None
                if not what.closed:
                    self._conn_timer(what, now)
                    self._arm(what)
        return fx

    def next_deadline(self) -> float | None:
        """When :meth:`tick` has something to do (monotonic), or None."""
        return self.timers.next_deadline()

    # -- life cycle -----------------------------------------------------------------

    @property
    def wants_turn_end(self) -> bool:
        """Rows gather that :meth:`end_turn` would hand to the store."""
        return self.ledger.ready_to_write

    def reload(self, config: Config, now: Now) -> list[Effect]:
        """Take a new directory, limits and hold rules without dropping other links.

        A removed ORI is signed off; what is held for it stays in the journal.
        """
        fx = self._fx = []
        self.config = config
        self.directory = self.ledger.directory = Directory(config.entries)
        self.router = self.ledger.router = Router(self.directory, self.schemas, config.hold,
                                                  self.controls)
        self.controls.rules = review_rules(config)
        lim = config.limits
        self.formats.reconfigure(self.directory, lim.max_message)
        for conn in list(self.conns.values()):
            self._configure(conn.link)
        for ori, ep in list(self.links.items()):
            ep.window = lim.window
            ep.max_queued = lim.max_queued
            if ep.conn is not None:
                ep.xml = self.formats.is_xml(ori)
            if ep.conn is not None and self.directory.sign_on_entry(ori) is None:
                self._log("info", "signed_off_by_reload", ori=ori)
                self._close(ep.conn, now)
        for conn in list(self.conns.values()):
            self._arm(conn)
        self._audit("config_reload", config.source, "success", now, oris=len(self.directory))
        self._log("info", "reloaded", source=config.source, oris=len(self.directory))
        return fx

    def drop(self, ori: str, now: Now) -> list[Effect]:
        """Close the link of ``ori`` (an operator's action); what it was owed stays held."""
        fx = self._fx = []
        ep = self.links.get(ori)
        if ep is not None and ep.conn is not None:
            self._log("info", "link_dropped", ori=ori, peer=ep.conn.peer)
            self._close(ep.conn, now)
        return fx

    def set_expiry_interval(self, seconds: float, now: Now) -> None:
        """Sweep for expired holds every ``seconds`` from now on."""
        self.expiry_interval = seconds
        self._schedule_expiry(now.mono + seconds)

    # ------------------------------------------------------------------------
    # Inside.
    # ------------------------------------------------------------------------

    # -- frames in --------------------------------------------------------------------

    def _link_events(self, conn: Conn, events: list[lk.LinkEvent], now: Now) -> None:
        for e in events:
            if isinstance(e, lk.MessageReceived):
                self._message(conn, e.seq, e.body, now)
            elif isinstance(e, lk.Acked):
                ep = conn.endpoint
                if ep is not None:
                    d = ep.outstanding.pop(e.seq, None)
                    if d is not None:
                        self._delivered(ep, d, now)
                        conn.acked = True
            elif isinstance(e, lk.Naked):
                ep = conn.endpoint
                if ep is not None:
                    d = ep.outstanding.pop(e.seq, None)
                    if d is not None:
                        self.ledger.record_done(d, "refused", now.wall, ep)
                        self._fx.append(RefusedByReceiver(d.msg_id, d.receiver, now.wall))
                    self._pump(ep, now)
            elif isinstance(e, lk.SignOnRequest):
                self._authenticating(conn)
                self._sign_on(conn, e, now)
            elif isinstance(e, lk.SignOffRequest):
                # Answered after the A of every message before it; nothing more
                # is delivered on this link.
                if conn.endpoint is not None:
                    conn.endpoint.ready = False
                self._end_input(conn, now)
            elif isinstance(e, lk.FramingError):
                # N .01. after the A of every good frame before it, then close.
                self._security("bad_frame", conn.ori, "closed", now, peer=conn.peer)
                conn.frame_error = True
                self._end_input(conn, now)
            elif isinstance(e, lk.NotSignedOn | lk.AlreadySignedOn):
                self.stats.naks += 1
                if isinstance(e, lk.NotSignedOn):
                    self._close(conn, now)
            elif isinstance(e, lk.TimedOut):
                if e.what == "sign_on":
                    self.stats.naks += 1
                    self._log("info", "sign_on_timeout", peer=conn.peer)
                elif e.what == "frame":
                    self.stats.naks += 1
                    self._log("info", "frame_timeout", peer=conn.peer, ori=conn.ori)
                    self._security("frame_timeout", conn.ori, "closed", now, peer=conn.peer,
                                   seconds=self.config.limits.frame_timeout)
                else:
                    self._log("info", "heartbeat_timeout", peer=conn.peer, ori=conn.ori)
                self._close(conn, now)
        self._output(conn)

    def _after_input(self, conn: Conn, now: Now) -> None:
        if conn.closed:
            return
        if conn.acked:
            conn.acked = False
            if conn.endpoint is not None:
                self._pump(conn.endpoint, now)
        if conn.inflight >= self.config.limits.max_inflight:
            self._pause(conn, "custody")
        if conn.link.pending_bytes >= self.write_limits()[0]:
            # What this turn's input made us answer (heartbeats, As, Ns) waits
            # to be written: read no more until it is (a peer that floods and
            # never reads costs a read's worth, not a flood's).
            self._pause(conn, "output")
            conn.repump = True
            self._arm(conn, soon=now.mono)
        if conn.rate_limited:
            # Each read in a row that hit the limit doubles the pause (to 1 s):
            # TCP back-pressure holds a flood back instead of costing an N per
            # frame, so other ORIs keep their pace.
            conn.rate_limited = False
            conn.rate_pause = min(1.0, max(self._rate_wait(conn.ori, now),
                                           conn.rate_pause * 2))
            if conn.rate_pause > 0:
                conn.rate_resume_at = now.mono + conn.rate_pause
                self._pause(conn, "rate")
                self._arm(conn)
        else:
            conn.rate_pause = 0.0

    def _message(self, conn: Conn, seq: int, body: bytes, now: Now) -> None:
        """An ``M`` frame: check, route, journal; ``A`` once durable (part 1)."""
        ori = conn.link.ori
        if not self._take_token(ori, now):
            # Past the ORI's rate: N, and nothing is journaled.
            self._nak(conn, seq, RateLimited())
            if not conn.rate_limited and not conn.rate_pause:
                # Once per burst (the switch's log counts the rest), not per frame.
                self._security("rate_limited", ori, "refused", now, peer=conn.peer)
            conn.rate_limited = True
            self.stats.count("?", "rate_limited")
            return
        try:
            got = self._read_body(conn, body)
        except LinkError as e:
            self._nak(conn, seq, e)
            self.stats.count("?", "refused")
            self._fx.append(Refused(ori, e.wire, now.wall))
            return
        if not self.accepting or self.faults:
            # Stopping, or the journal is failing: custody cannot be taken.
            self._nak(conn, seq, SwitchBusy())
            return
        conn.inflight += 1
        g = self.ledger.group()
        g.acks.append((conn, seq))
        self._fx.append(self._take(ori, got, now))

    # -- closing -------------------------------------------------------------------------

    def _end_input(self, conn: Conn, now: Now) -> None:
        """Nothing more is read: the A of what is in custody goes out first (5 s at most)."""
        if conn.settling or conn.closed:
            return
        conn.settling = True
        conn.settle_at = now.mono + SETTLE_S
        self._pause(conn, "closing")
        self._maybe_finish(conn, now)
        if not conn.closed:
            self._arm(conn)

    def _maybe_finish(self, conn: Conn, now: Now) -> None:
        if conn.closed or (conn.inflight > 0 and now.mono < conn.settle_at):
            return
        link = conn.link
        if link.sign_off_seq is not None:
            link.send_ack(link.sign_off_seq)
        if conn.frame_error:
            self._nak(conn, 0, FrameError())
        self._output(conn)
        self._close(conn, now)

    def _conn_timer(self, conn: Conn, now: Now) -> None:
        mono = now.mono
        if conn.rate_resume_at is not None and mono >= conn.rate_resume_at:
            conn.rate_resume_at = None
            self._resume(conn, "rate")
        if conn.repump:
            conn.repump = False
            if "output" in conn.paused:
                if conn.link.pending_bytes < self.write_limits()[0]:
                    self._resume(conn, "output")
                else:  # not written yet: look again at the next turn
                    conn.repump = True
                    self._arm(conn, soon=mono)
            if conn.endpoint is not None:
                self._pump(conn.endpoint, now)
        if conn.settling:
            if mono >= conn.settle_at:
                self._maybe_finish(conn, now)
            return
        self._link_events(conn, conn.link.handle_timer(mono), now)
