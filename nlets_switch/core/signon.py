"""Sign-on bookkeeping: lock-out after failures, one credential check per ORI at a time.

After ``security.lockout_after`` failed sign-ons an ORI is locked out for
``security.lockout_minutes``, whatever it sends (CJIS Security Policy
5.5.3). The credential check itself is slow on purpose (scrypt) and runs
outside the engine, so attempts for one ORI are *serialised* here: while
one is being checked, the next ones wait behind it and are decided only
after its verdict has been counted. Parallel guesses therefore never get
more than ``lockout_after`` checks before the lock-out applies.

In cluster mode the counts and lock-outs are every node's
(:class:`~nlets_switch.core.effects.DecideSignOn`, kept in the database): the
server decides each attempt under the ORI's cluster-wide lock, and this node
still lets one attempt per ORI at a time go to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from nlets_switch.core import link as lk
from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.delivery import Endpoint
from nlets_switch.core.dispatch import Dispatch
from nlets_switch.core.effects import (
    CheckCredential,
    ClaimOri,
    DecideSignOn,
    Effect,
    ReleaseOri,
)
from nlets_switch.core.gate import Attempt, Gate
from nlets_switch.errors import LinkError, SignOnRejected, TooManyConnections
from nlets_switch.store.records import Claim, GateVerdict
from nlets_switch.wire.message import SWITCH_ORI

if TYPE_CHECKING:
    from nlets_switch.config import Entry

class CertificateRevoked(LinkError):
    """The client certificate of a live link was revoked (part 7): signed off."""

    code = 1
    text = "CERTIFICATE REVOKED"
    close = True


def is_service(entry: Entry) -> bool:
    """A service ORI (``role: service``, or a simulated state terminal)."""
    return entry.role == "service" or entry.simulated


#: The body of the A that accepts a sign-on (PROTOCOL part 1).
_ACCEPTED: Final = SWITCH_ORI.encode("ascii")


class SignOn(Dispatch):
    """Sign-on decisions (PROTOCOL parts 1 and 7): directory, lock-out, credential."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.gate = Gate()
        #: The scrypt hash service ORIs without a credential of their own sign on
        #: with (made at start-up by ``serve`` for its responders); None: only a
        #: credential of their own or a client certificate.
        self.service_credential: str | None = None

    def credential_checked(self, attempt: Attempt, ok: bool, now: Now) -> list[Effect]:
        """The result of a :class:`~nlets_switch.core.effects.CheckCredential`.

        The attempts for the same ORI that waited behind it are decided now,
        in order, with its failure already counted.
        """
        fx = self._fx = []
        self._decide(attempt, ok, now)
        self._next(attempt.ori, now)
        return fx

    def gate_decided(self, attempt: Attempt, verdict: GateVerdict, now: Now) -> list[Effect]:
        """Cluster mode: the result of a :class:`~nlets_switch.core.effects.DecideSignOn`.

        When the shared lock-outs could not be reached (the database is gone),
        the sign-on is refused: a lock-out cannot be known to be absent. The
        attempts for the same ORI that waited behind it are decided next.
        """
        fx = self._fx = []
        if verdict.error is not None:
            self._refuse(attempt, "database unreachable", now)
        elif verdict.locked is not None:
            self._refuse(attempt, verdict.locked, now)
        elif not verdict.ok:
            self._failed(attempt, verdict.source_locked, verdict.ori_locked, now)
        else:
            self._signed_on(attempt, now)
        self._next(attempt.ori, now)
        return fx

    def _next(self, ori: str, now: Now) -> None:
        """The check for ``ori`` is over: the attempts that waited behind it, in order."""
        waiting = self.gate.end(ori)
        while waiting:
            self._try(waiting.popleft(), now)
            if self.gate.busy(ori):
                for a in waiting:  # a new check started: the rest wait behind it
                    self.gate.wait(a)
                break

    def _sign_on(self, conn: Conn, e: lk.SignOnRequest, now: Now) -> None:
        a = Attempt(conn, e.seq, e.ori, e.credential)
        if self.gate.busy(a.ori):
            self._pause(conn, "sign_on")
            self.gate.wait(a)
        else:
            self._try(a, now)

    def _try(self, a: Attempt, now: Now) -> None:
        conn = a.conn
        if conn.closed:
            return
        entry = self.directory.sign_on_entry(a.ori)
        locked = None if self.cluster else self.gate.locked(conn.host, a.ori, now.mono)
        if entry is None:
            self._refuse(a, "unknown ori" if self.directory.entry(a.ori) is None
                         else "not signing on", now)
        elif self.cluster:
            self._decide_shared(a, entry)
        elif locked is not None:
            self._refuse(a, locked, now)
        else:
            stored = entry.credential
            if stored is None and is_service(entry):
                stored = self.service_credential
            verdict = self._authenticate(conn, entry, a.credential, stored)
            if verdict is None:
                # scrypt is deliberately slow: the server runs it off the loop.
                assert a.credential is not None and stored is not None
                self.gate.begin(a.ori)
                self._pause(conn, "sign_on")
                self._fx.append(CheckCredential(a, a.credential, stored))
            else:
                self._decide(a, verdict, now)

    def _decide_shared(self, a: Attempt, entry: Entry) -> None:
        """Cluster mode: every sign-on of a known ORI is decided against the lock-outs
        the nodes share, the lock-out read and the failure counted in one step."""
        stored = entry.credential
        if stored is None and is_service(entry):
            stored = self.service_credential
        verdict = self._authenticate(a.conn, entry, a.credential, stored)
        check = verdict is None
        sec = self.config.security
        self.gate.begin(a.ori)
        self._pause(a.conn, "sign_on")
        self._fx.append(DecideSignOn(
            a, a.ori, a.conn.host, a.credential if check else None, stored if check else None,
            verdict, sec.lockout_after, sec.ori_lockout_after or 10 * sec.lockout_after,
            sec.lockout_minutes * 60))

    @staticmethod
    def _authenticate(conn: Conn, entry: Entry, credential: str | None,
                      stored: str | None) -> bool | None:
        """Whether ``conn`` may sign on as ``entry``; None: check the credential.

        ``stored`` is the entry's credential hash (for a service ORI without
        one of its own, the switch's service credential).
        """
        if conn.cert_oris is not None and entry.ori not in conn.cert_oris:
            # PROTOCOL part 7: the certificate's CN or a SAN must be the ORI signing on.
            return False
        if conn.cert_oris:
            if entry.credential is None:
                return True  # the client certificate is the credential
        if stored is not None and credential is not None:
            return None
        if entry.credential is not None:
            return False
        if is_service(entry):
            # A service ORI receives inquiries (names, dates of birth) and
            # answers for an agency: never on the loopback exemption (issue 11).
            return False
        return conn.anonymous_ok

    def _decide(self, a: Attempt, ok: bool, now: Now) -> None:
        conn, ori = a.conn, a.ori
        if not ok:
            sec = self.config.security
            ori_after = sec.ori_lockout_after or 10 * sec.lockout_after
            src, whole = self.gate.failed(conn.host, ori, now.mono, sec.lockout_after,
                                          ori_after, sec.lockout_minutes * 60)
            self._failed(a, src, whole, now)
            return
        self.gate.succeeded(conn.host, ori)
        self._signed_on(a, now)

    def _failed(self, a: Attempt, src: bool, whole: bool, now: Now) -> None:
        """A wrong credential or certificate, counted (``src``/``whole``: it locked the
        source / the ORI): audited, refused."""
        conn, ori = a.conn, a.ori
        sec = self.config.security
        if src:
            self._log("warning", "locked_out", ori=ori, peer=conn.host,
                      minutes=sec.lockout_minutes)
            self._security("lockout", ori, "locked", now, peer=conn.peer,
                           source=conn.host, minutes=sec.lockout_minutes)
        if whole:
            # Many sources guessing one ORI: the ORI itself locks, and says so.
            self._log("error", "ori_locked_out", ori=ori, minutes=sec.lockout_minutes)
            self._security("lockout", ori, "locked", now, peer=conn.peer, source=None,
                           alert=True, minutes=sec.lockout_minutes)
        self._refuse(a, "bad credential or certificate", now)

    def _signed_on(self, a: Attempt, now: Now) -> None:
        """The credential or certificate was right: accept (in cluster mode, once the
        node holds the ORI)."""
        conn, ori = a.conn, a.ori
        if conn.closed or conn.settling or not self.accepting:
            # Accepted, but the link is going away meanwhile (stop, time-out).
            self._log("info", "sign_on_rejected", peer=conn.peer, ori=ori[:9], reason="closing")
            self._reject(conn, now)
            return
        if self.cluster and ori not in self.links:
            # Cluster mode: one link per ORI in the whole cluster. The node takes the
            # ORI's lock first (the link elsewhere, if any, is closed meanwhile).
            self._pause(conn, "claim")
            self._fx.append(ClaimOri(ori, a))
            return
        self._accept(a, now)

    def _accept(self, a: Attempt, now: Now) -> None:
        conn, ori = a.conn, a.ori
        lim = self.config.limits
        ep = Endpoint(self._next_id(), ori, "tcp", conn, lim.window, lim.max_queued, now.wall)
        ep.xml = self.formats.is_xml(ori)
        conn.endpoint = ep
        self._attach(ep, now, peer=conn.peer)
        events = conn.link.accept_sign_on(ori, _ACCEPTED, now.mono)
        self._output(conn)
        self._start_delivery(ep)
        self._resume(conn, "sign_on")
        self._link_events(conn, events, now)
        self._after_input(conn, now)
        self._arm(conn)

    # -- cluster mode (server/cluster.py) -----------------------------------------------

    def join_cluster(self, slot: int, stride: int) -> None:
        """Work as a cluster node: ids ``k * stride + slot``, sign-ons wait for ownership."""
        self.cluster = True
        self.ledger.use_slot(slot, stride)

    def claimed(self, a: Attempt, claim: Claim | None, now: Now,
                reason: str = "signed on at another node") -> list[Effect]:
        """The result of a :class:`ClaimOri`: the node holds ``a.ori`` (``claim`` its
        database's highest ids and the ORI's counters then), or could not take it
        (``reason``: held by a node that did not let go, or the database is gone)."""
        fx = self._fx = []
        conn = a.conn
        if claim is not None:
            self.ledger.go_above(claim.msg_id, claim.dlv_id, claim.counters)
        if claim is not None and (conn.closed or not self.accepting or a.ori in self.links):
            # Each claim is paired with one release: this one is not needed (the link
            # went, or another sign-on here holds the ORI already).
            fx.append(ReleaseOri(a.ori))
        if conn.closed:
            return fx
        self._resume(conn, "claim")
        if claim is None or not self.accepting:
            self._refuse(a, reason if claim is None else "closing", now)
        else:
            self._accept(a, now)
        return fx

    def replaced_elsewhere(self, ori: str, now: Now) -> list[Effect]:
        """A sign-on for ``ori`` at another node replaces the link here (part 1)."""
        fx = self._fx = []
        ep = self.links.get(ori)
        if ep is not None and ep.conn is not None:
            self._log("info", "replaced_by_new_sign_on", ori=ori, peer=ep.conn.peer,
                      at="another node")
            self._close(ep.conn, now)
        return fx

    def woken(self, ori: str, now: Now) -> list[Effect]:
        """Another node made deliveries for ``ori`` durable: read back what is owed.

        Its ids may be below what this node read last, so the read starts
        from the beginning; what is outstanding is not taken twice.
        """
        fx = self._fx = []
        ep = self.links.get(ori)
        if ep is None or ep.closed or not ep.ready:
            return fx
        ep.last_loaded = 0
        ep.spilled = True
        if ep.loading:
            self.rewake.add(ep.id)  # after the read-back in progress, once more
        else:
            self._pump(ep, now)
        return fx

    def unlock(self, target: str, now: Now, by: str = "operator") -> list[Effect]:
        """Lift the lock-outs of an ORI or of a source address (an operator's action).

        Audited whether or not anything was locked, so the trail shows who tried.
        """
        return self.unlocked(target, self.gate.unlock(target), now, by)

    def unlocked(self, target: str, lifted: list[str], now: Now, by: str = "operator",
                 error: str | None = None) -> list[Effect]:
        """Lock-outs of ``target`` were lifted (``lifted``: what was locked; in cluster
        mode by the server, in the database, for every node; ``error``: the database
        could not be reached, nothing was lifted): audited here."""
        fx = self._fx = []
        self.gate.unlock(target)
        outcome = "failure" if error else "success" if lifted else "nothing_locked"
        self._log("warning", "unlocked", target=target, lifted=len(lifted), by=by,
                  **({"error": error} if error else {}))
        self._security("unlock", target if len(target) == 9 else "", outcome, now,
                       target=target, lifted=lifted, by=by,
                       **({"error": error} if error else {}))
        return fx

    def revoke(self, conn: Conn, serial: int, now: Now) -> list[Effect]:
        """The CRL now revokes the certificate ``conn`` signed on with: signed off.

        ``N .01. CERTIFICATE REVOKED`` (seq 0) names why; what the link was owed
        stays held (PROTOCOL part 7; CJIS Security Policy 5.6.2.2.2).
        """
        fx = self._fx = []
        if conn.closed:
            return fx
        ori = conn.ori
        self._log("warning", "signed_off_revoked", ori=ori, peer=conn.peer, serial=f"{serial:x}")
        self._security("revoked", ori, "signed_off", now, peer=conn.peer,
                       serial=f"{serial:x}")
        self._nak(conn, 0, CertificateRevoked())
        self._output(conn)
        self._close(conn, now)
        return fx

    def lockouts(self, now: Now) -> list[dict[str, object]]:
        """What is locked out now (for the operator's status)."""
        return self.gate.lockouts(now.mono)

    def _refuse(self, a: Attempt, reason: str, now: Now) -> None:
        """``N .01. SIGN-ON REJECTED`` and close; audited (part 1)."""
        conn = a.conn
        self._security("sign_on", a.ori[:9], "failure", now, peer=conn.peer, reason=reason)
        self._log("info", "sign_on_rejected", peer=conn.peer, ori=a.ori[:9], reason=reason)
        self._reject(conn, now)

    def _reject(self, conn: Conn, now: Now) -> None:
        if not conn.closed:
            conn.link.refuse_sign_on(SignOnRejected())
            self.stats.naks += 1
            self._output(conn)
            self._close(conn, now)

    # -- admission: connections not signed on have their own pool ----------------------

    def _admit(self, host: str, now: Now) -> None:
        """Make room in the pool of connections not signed on (issue 11).

        They have their own, smaller pool, per peer address and in all: when
        it is full the oldest of them (that has not asked to sign on) gives
        way with ``N .06.``, so idle connections cannot starve sign-ons, and an
        agency that signs on promptly always gets in.
        """
        lim = self.config.limits
        while len(self.unauth_by_host.get(host, ())) >= lim.max_unauthenticated_per_peer:
            self._evict(next(iter(self.unauth_by_host[host].values())), now)
        while len(self.unauth) >= lim.max_unauthenticated:
            self._evict(next(iter(self.unauth.values())), now)

    def _evict(self, conn: Conn, now: Now) -> None:
        self._authenticating(conn)
        if not conn.closed:
            self._log("info", "connection_evicted", peer=conn.peer)
            self._security("admission", "", "evicted", now, peer=conn.peer,
                           reason="oldest connection not signed on")
            conn.link.send_nak(0, TooManyConnections())
            self._output(conn)
            self._close(conn, now)

    def _authenticating(self, conn: Conn) -> None:
        """``conn`` leaves the pool of connections not signed on."""
        if self.unauth.pop(conn.id, None) is not None:
            mine = self.unauth_by_host.get(conn.host)
            if mine is not None:
                mine.pop(conn.id, None)
                if not mine:
                    del self.unauth_by_host[conn.host]

    # -- provided by the engine ---------------------------------------------------

    def _link_events(self, conn: Conn, events: list[lk.LinkEvent], now: Now) -> None:
        raise NotImplementedError

    def _after_input(self, conn: Conn, now: Now) -> None:
        raise NotImplementedError
