"""Endpoints and what reaches them: attach and replace, read-back, dispatch, window.

PROTOCOL part 1: an accepted sign-on replaces an older link of the same ORI
and what is held for the ORI goes to the new one; at most ``window``
deliveries are outstanding on a link; messages not acknowledged when a link
drops are sent again, in order, on the next sign-on (read back from the
journal). Part 4: SM goes ahead of other traffic, and a hold that ends is
swept (the store's expiry) so that its sender gets SM ``.04.``.
"""

from __future__ import annotations

from typing import Any, Final

from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.delivery import Delivery, Endpoint
from nlets_switch.core.effects import (
    Close,
    DeliverLocal,
    Effect,
    ExpireDue,
    ReadOwed,
    ReleaseOri,
    Standby,
    WriteBatch,
)
from nlets_switch.core.events import Delivered, LinkChanged
from nlets_switch.core.ledger import SENT_GRACE
from nlets_switch.core.state import EXPIRY, SENT, EngineState

#: Held deliveries expired per sweep.
EXPIRE_BATCH: Final = 1000


class Dispatch(EngineState):
    """Endpoints: attach, detach, read-back, dispatch and pump; holds that end."""

    # The expiry sweep's state (set by the Engine).
    expiry_interval: float
    _expiring: bool
    _expiry_at: float | None

    # -- local services: endpoints in the server's process ----------------------

    def attach_local(self, ori: str, now: Now) -> tuple[Endpoint, list[Effect]]:
        """An in-process service takes ``ori`` (replacing a link that had it)."""
        fx = self._fx = []
        lim = self.config.limits
        ep = Endpoint(self._next_id(), ori, "local", None, lim.window, lim.max_queued, now.wall)
        self._attach(ep, now, peer="local")
        self._start_delivery(ep)
        return ep, fx

    def detach_local(self, ep: Endpoint, now: Now) -> list[Effect]:
        """The service behind ``ep`` stops; what it had stays owed in the journal."""
        fx = self._fx = []
        self._detach(ep, now)
        return fx

    def local_done(self, ep: Endpoint, seq: int, now: Now) -> list[Effect]:
        """The service handled the delivery it was given as ``seq``: acknowledged."""
        fx = self._fx = []
        if not ep.closed:
            d = ep.outstanding.pop(seq, None)
            if d is not None:
                self._delivered(ep, d, now)
            self._pump(ep, now)
        return fx

    def accept(self, link_ori: str, text: str, now: Now,
               token: Any = None, reply_to: int | None = None) -> tuple[int, list[Effect]]:
        """An input message from an in-process sender as ``link_ori``; returns its id.

        A :class:`Durable` effect with ``token`` follows once it is durable.
        ``reply_to``: the message it answers (an ER so sent refuses it, Ledger.accept).
        """
        fx = self._fx = []
        g = self.ledger.group()
        if token is not None:
            g.tokens.append(token)
        msg_id, event = self.ledger.accept(link_ori, text, now.wall, reply_to=reply_to)
        fx.append(event)
        return msg_id, fx

    # -- inside ---------------------------------------------------------------------

    def _attach(self, ep: Endpoint, now: Now, peer: str) -> None:
        """Make ``ep`` the live endpoint of its ORI, replacing an older one (part 1)."""
        old = self.links.get(ep.ori)
        # The new endpoint holds the ORI before the old one goes, so the old
        # one's detach neither reports the ORI offline nor wakes a standby.
        self.links[ep.ori] = ep
        if old is not None and old is not ep:
            self._log("info", "replaced_by_new_sign_on", ori=ep.ori,
                      peer=old.conn.peer if old.conn is not None else old.kind)
            if old.conn is not None:
                self._close(old.conn, now)
            else:
                old.detach()
        ep.signed_on_at = now.wall
        self._audit("sign_on", ep.ori, "success", now, peer=peer)
        self._log("info", "signed_on", ori=ep.ori, kind=ep.kind)
        self._fx.append(LinkChanged(ep.ori, "online", ep.kind, now.wall))

    def _detach(self, ep: Endpoint, now: Now) -> None:
        """``ep`` is gone; its deliveries stay owed in the journal.

        When a link ends, the in-process service it replaced (if any) takes
        its ORI back (:class:`~nlets_switch.core.effects.Standby`).
        """
        if ep.ori and self.links.get(ep.ori) is ep:
            del self.links[ep.ori]
            self._log("info", "signed_off", ori=ep.ori, outstanding=len(ep.outstanding))
            self._fx.append(LinkChanged(ep.ori, "offline", ep.kind, now.wall))
            if self.cluster:
                self._fx.append(ReleaseOri(ep.ori))
            if ep.kind == "tcp" and self.accepting:
                self._fx.append(Standby(ep.ori))
        ep.detach()

    def _close(self, conn: Conn, now: Now, effect: bool = True) -> None:
        """Close ``conn`` now: its endpoint is detached, then the transport closed."""
        if conn.closed:
            return
        conn.closed = True
        conn.link.close()
        if conn.endpoint is not None:
            self._detach(conn.endpoint, now)
        if effect:
            self._fx.append(Close(conn))

    def _start_delivery(self, ep: Endpoint) -> None:
        """Read back from the journal everything owed to this ORI, in order."""
        ep.start()
        self._reload(ep)

    def _reload(self, ep: Endpoint) -> None:
        # Rows still gathering (an acknowledgement, say) go to the store first;
        # otherwise a read-back could resend a delivery whose A already came.
        ep.loading = True
        self._flush_group(force=True)
        self._fx.append(ReadOwed(ep.ori, ep.last_loaded, ep.reload_limit(), ep))

    def _flush_group(self, force: bool) -> None:
        g = self.ledger.take(force)
        if g is not None:
            self._fx.append(WriteBatch(g.batch, g))

    def _dispatch(self, out: list[Delivery], now: Now) -> None:
        """Hand durable deliveries to the endpoints that are signed on."""
        touched: dict[int, Endpoint] = {}
        links = self.links
        for d in out:
            ep = links.get(d.link)
            if ep is not None:
                ep.enqueue(d)
                touched[ep.id] = ep
        for ep in touched.values():
            self._pump(ep, now)

    def _pump(self, ep: Endpoint, now: Now) -> None:
        """Send queued deliveries while the window (and the write buffer) allows."""
        if not ep.ready or ep.closed:
            return
        wall = now.wall
        conn = ep.conn
        cap = self.write_limits()[0]
        outstanding = ep.outstanding
        window = ep.window
        sent: list[int] = []
        # Acknowledged deliveries count until their record is durable: after a
        # crash at most a window's worth comes again (issue 15).
        while len(outstanding) + ep.unrecorded < window and ep.has_queued:
            if conn is not None and (not conn.writable or conn.link.pending_bytes >= cap):
                if conn.writable and not conn.repump:
                    # This turn's share is written; the rest at the next turn.
                    conn.repump = True
                    self._arm(conn, soon=now.mono)
                break
            d = ep.next()
            assert d is not None
            if d.expires_at <= wall:
                continue  # the expiry sweep records it and tells the sender
            if d.sent_at is None:
                d.sent_at = wall
                sent.append(d.id)
            if conn is not None:
                seq = conn.link.send_message(self.render_for(ep, d))
            else:
                ep.seq_out += 1
                seq = ep.seq_out
                self._fx.append(DeliverLocal(ep, seq, d))
            outstanding[seq] = d
        if conn is not None:
            self._output(conn)
        if sent:
            self.ledger.record_sent(sent, wall)
            if self._sent_at is None:
                self._sent_at = now.mono + SENT_GRACE
                self.timers.schedule(self._sent_at, SENT)
        if ep.wants_reload():
            self._reload(ep)

    def _delivered(self, ep: Endpoint, d: Delivery, now: Now) -> None:
        """The receiver acknowledged: a 'done' row (not awaited), counted."""
        wall = now.wall
        self.ledger.record_done(d, "acked", wall, ep)
        self.stats.delivered += 1
        latency = wall - d.received_at
        if d.sent_at is not None:
            self.stats.latency_sum += latency
        self._fx.append(Delivered(d.msg_id, d.key, d.receiver, round(latency, 6), wall))

    # -- the store: holds that end, and sent marks -------------------------------------

    def _schedule_expiry(self, at: float) -> None:
        self._expiry_at = at
        self.timers.schedule(at, EXPIRY)

    def _expire(self, now: Now) -> None:
        self._schedule_expiry(now.mono + self.expiry_interval)
        if self._expiring:
            return
        self._expiring = True
        self._flush_group(force=True)
        self._fx.append(ExpireDue(now.wall, EXPIRE_BATCH))

    def _sent_due(self, now: Now) -> None:
        self._sent_at = None
        oldest = self.ledger.flush_sent(now.wall - SENT_GRACE)
        if oldest is not None:
            self._sent_at = now.mono + max(0.0, oldest + SENT_GRACE - now.wall)
            self.timers.schedule(self._sent_at, SENT)
