"""Sign-on bookkeeping: lock-out after failures, one credential check per ORI at a time.

After ``security.lockout_after`` failed sign-ons an ORI is locked out for
``security.lockout_minutes``, whatever it sends (CJIS Security Policy
5.5.3). The credential check itself is slow on purpose (scrypt) and runs
outside the engine, so attempts for one ORI are *serialised* here: while
one is being checked, the next ones wait behind it and are decided only
after its verdict has been counted. Parallel guesses therefore never get
more than ``lockout_after`` checks before the lock-out applies.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final

from nlets_switch.core import link as lk
from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.delivery import Endpoint
from nlets_switch.core.dispatch import Dispatch
from nlets_switch.core.effects import CheckCredential, Effect
from nlets_switch.errors import SignOnRejected
from nlets_switch.wire.message import SWITCH_ORI

if TYPE_CHECKING:
    from nlets_switch.config import Entry

#: The body of the A that accepts a sign-on (PROTOCOL part 1).
_ACCEPTED: Final = SWITCH_ORI.encode("ascii")


class Attempt:
    """One sign-on asked on a connection (``seq`` of its ``C``)."""

    __slots__ = ("conn", "credential", "ori", "seq")

    def __init__(self, conn: Conn, seq: int, ori: str, credential: str | None) -> None:
        self.conn = conn
        self.seq = seq
        self.ori = ori
        self.credential = credential


class Gate:
    """Failures and lock-outs per ORI, and the attempts waiting for a check."""

    __slots__ = ("checking", "failures")

    def __init__(self) -> None:
        #: ORI -> (failures in a row, locked until (monotonic), 0 when not locked).
        self.failures: dict[str, tuple[int, float]] = {}
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

    def locked(self, ori: str, now: float) -> bool:
        """``ori`` is locked out at ``now``."""
        return self.failures.get(ori, (0, 0.0))[1] > now

    def failed(self, ori: str, now: float, lockout_after: int, lockout_s: float) -> bool:
        """Count a failure; True when it locks ``ori`` out (the count starts again)."""
        fails = self.failures.get(ori, (0, 0.0))[0] + 1
        if fails >= lockout_after:
            self.failures[ori] = (0, now + lockout_s)
            return True
        self.failures[ori] = (fails, 0.0)
        return False

    def succeeded(self, ori: str) -> None:
        """A good sign-on clears the count."""
        self.failures.pop(ori, None)


class SignOn(Dispatch):
    """Sign-on decisions (PROTOCOL parts 1 and 7): directory, lock-out, credential."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.gate = Gate()

    def credential_checked(self, attempt: Attempt, ok: bool, now: Now) -> list[Effect]:
        """The result of a :class:`~nlets_switch.core.effects.CheckCredential`.

        The attempts for the same ORI that waited behind it are decided now,
        in order, with its failure already counted.
        """
        fx = self._fx = []
        self._decide(attempt, ok, now)
        waiting = self.gate.end(attempt.ori)
        while waiting:
            self._try(waiting.popleft(), now)
            if self.gate.busy(attempt.ori):
                for a in waiting:  # a new check started: the rest wait behind it
                    self.gate.wait(a)
                break
        return fx

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
        if entry is None:
            self._refuse(a, "unknown ori" if self.directory.entry(a.ori) is None
                         else "not signing on", now)
        elif self.gate.locked(a.ori, now.mono):
            self._refuse(a, "locked out", now)
        else:
            verdict = self._authenticate(conn, entry, a.credential)
            if verdict is None:
                # scrypt is deliberately slow: the server runs it off the loop.
                assert a.credential is not None and entry.credential is not None
                self.gate.begin(a.ori)
                self._pause(conn, "sign_on")
                self._fx.append(CheckCredential(a, a.credential, entry.credential))
            else:
                self._decide(a, verdict, now)

    @staticmethod
    def _authenticate(conn: Conn, entry: Entry, credential: str | None) -> bool | None:
        """Whether ``conn`` may sign on as ``entry``; None: check the credential."""
        if conn.cert_oris is not None and entry.ori not in conn.cert_oris:
            # PROTOCOL part 7: the certificate's CN or a SAN must be the ORI signing on.
            return False
        if entry.credential is not None:
            return None if credential is not None else False
        if conn.cert_oris:
            return True  # the client certificate is the credential
        return conn.anonymous_ok

    def _decide(self, a: Attempt, ok: bool, now: Now) -> None:
        conn, ori = a.conn, a.ori
        if not ok:
            sec = self.config.security
            if self.gate.failed(ori, now.mono, sec.lockout_after, sec.lockout_minutes * 60):
                self._log("warning", "locked_out", ori=ori, minutes=sec.lockout_minutes)
                self._audit("lockout", ori, "locked", now, peer=conn.peer)
            self._refuse(a, "bad credential or certificate", now)
            return
        self.gate.succeeded(ori)
        if conn.closed or conn.settling or not self.accepting:
            # Accepted, but the link is going away meanwhile (stop, time-out).
            self._log("info", "sign_on_rejected", peer=conn.peer, ori=ori[:9], reason="closing")
            self._reject(conn, now)
            return
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

    def _refuse(self, a: Attempt, reason: str, now: Now) -> None:
        """``N .01. SIGN-ON REJECTED`` and close; audited (part 1)."""
        conn = a.conn
        self._audit("sign_on", a.ori[:9], "failure", now, peer=conn.peer, reason=reason)
        self._log("info", "sign_on_rejected", peer=conn.peer, ori=a.ori[:9], reason=reason)
        self._reject(conn, now)

    def _reject(self, conn: Conn, now: Now) -> None:
        if not conn.closed:
            conn.link.refuse_sign_on(SignOnRejected())
            self.stats.naks += 1
            self._output(conn)
            self._close(conn, now)

    # -- provided by the engine ---------------------------------------------------

    def _link_events(self, conn: Conn, events: list[lk.LinkEvent], now: Now) -> None:
        raise NotImplementedError

    def _after_input(self, conn: Conn, now: Now) -> None:
        raise NotImplementedError
