"""Journal faults while the switch runs, and the graceful stop.

Journal faults: custody stops, an alert goes out, the operation is retried.

Issue 15: a damaged page made delivery to one destination stop without a
word while new messages for it still got ``A``; a full disk dropped the
destinations' ``A``s and logged one line per refused message. Here, when the
journal fails an operation:

* **custody stops**: every ``M`` gets ``N .05.`` (PROTOCOL part 1, "the
  journal cannot take custody") until the journal works again, so nothing
  is acknowledged that may not be kept;
* **an alert** goes out once per fault (a :class:`JournalFault` event for
  MQTT, the dashboard and the metrics, and one ``journal_fault`` log line),
  and once more when it clears (``recovered``);
* **the operation is retried** every :data:`RETRY_S`: a failed commit's
  acknowledgement records (:meth:`Ledger.settled` carries them) go with a
  probe group, a failed read-back is asked again, the expiry sweep runs on
  its own schedule. A destination is never left stalled silently: while its
  read-back fails, the alert names it.

The stop (SIGTERM): links are still read, so every ``M`` gets ``A`` (what
was in custody, once durable) or ``N .05.`` (what came after), a ``D`` tells
each link the switch signs off, and the server closes the links once they
are quiet, so no sender finds its frames reset with the connection.
"""

from __future__ import annotations

from typing import Final

from nlets_switch.core.conn import Now
from nlets_switch.core.delivery import Endpoint
from nlets_switch.core.effects import Effect, WriteBatch
from nlets_switch.core.events import JournalFault
from nlets_switch.core.signon import SignOn
from nlets_switch.core.state import RETRY
from nlets_switch.wire import frames as fr

#: Seconds between retries of a failed journal operation.
RETRY_S: Final = 1.0


class Faults(SignOn):
    """Journal faults and the stop's entry points (a base of the engine)."""

    #: When the retry timer is due (None: not armed).
    _retry_at: float | None = None
    #: Endpoints whose read-back failed: asked again at the retry.
    _read_retry: dict[int, Endpoint] | None = None

    @property
    def custody_stopped(self) -> bool:
        """The journal is failing: messages are answered ``N .05.``."""
        return bool(self.faults)

    def _journal_failed(self, op: str, error: BaseException, destination: str | None,
                        now: Now) -> None:
        """``op`` failed: count it, alert once, stop custody, retry later."""
        failures = self.stats.journal_failures
        failures[op] = failures.get(op, 0) + 1
        key = op if destination is None else f"{op}:{destination}"
        name = type(error).__name__  # never its text: it may quote data
        if key not in self.faults:
            self.faults[key] = name
            self._log("error", "journal_fault", op=op, error=name, destination=destination,
                      custody="stopped")
            self._fx.append(JournalFault("failed", op, name, destination, now.wall))
        if op == "write":
            self.ledger.paused = True
        self._schedule_retry(now)

    def _journal_ok(self, op: str, destination: str | None, now: Now) -> None:
        """``op`` worked: the fault it had (if any) clears."""
        key = op if destination is None else f"{op}:{destination}"
        if self.faults.pop(key, None) is not None:
            self._log("warning", "journal_recovered", op=op, destination=destination,
                      custody="stopped" if self.faults else "resumed")
            self._fx.append(JournalFault("recovered", op, None, destination, now.wall))

    def _owed_failed(self, ep: Endpoint, error: BaseException, now: Now) -> None:
        if self._read_retry is None:
            self._read_retry = {}
        self._read_retry[ep.id] = ep
        self._journal_failed("read-back", error, ep.ori, now)

    def _schedule_retry(self, now: Now) -> None:
        if self._retry_at is None:
            self._retry_at = now.mono + RETRY_S
            self.timers.schedule(self._retry_at, RETRY)

    def _retry(self, now: Now) -> None:
        """The retry timer: a probe commit (with what failed groups carried), read-backs."""
        self._retry_at = None
        ledger = self.ledger
        if ledger.paused or ledger.carrying or "write" in self.faults:
            ledger.paused = False
            ledger.group()  # a probe: at least the id counters are written
            g = ledger.take(force=True)
            if g is not None:
                self._fx.append(WriteBatch(g.batch, g))
        retry = self._read_retry
        if retry:
            self._read_retry = None
            for ep in retry.values():
                if ep.closed:
                    self._journal_ok("read-back", ep.ori, now)
                elif not ep.loading:
                    self._reload(ep)

    # -- the graceful stop (issue 15: every M answered, no reset) -------------

    def stop_accepting(self, now: Now) -> list[Effect]:
        """Stopping: no new links, no new custody.

        Links are still read: what is in custody gets its ``A`` once durable,
        and every ``M`` read from now on gets ``N .05.`` (docs/protocol-choices.md),
        so a sender is answered instead of finding its frames reset with the
        connection (issue 15).
        """
        fx = self._fx = []
        self.accepting = False
        return fx

    def flush(self, now: Now) -> list[Effect]:
        """Stopping: every 'sent' record and the gathering group go to the store."""
        fx = self._fx = []
        self.ledger.paused = False  # one more try, even after a failed commit
        self.ledger.flush_sent(float("inf"))
        self._flush_group(force=False)
        return fx

    def sign_off_all(self, now: Now) -> list[Effect]:
        """Stopping, custody settled: a ``D`` to every link signed on (the switch
        signs off); nothing more is delivered. Links are still read and
        answered ``N .05.`` until they go quiet and :meth:`close_all` runs."""
        fx = self._fx = []
        for conn in list(self.conns.values()):
            ep = conn.endpoint
            if conn.closed or ep is None or not ep.ready:
                continue
            ep.ready = False
            conn.link.send_frame(fr.SIGN_OFF)
            self._output(conn)
        return fx

    @property
    def idle(self) -> bool:
        """Nothing gathers and nothing is being written."""
        return self.ledger.gathering is None and self.ledger.writing == 0

    def close_all(self, now: Now) -> list[Effect]:
        """Stopping: close every connection and detach every endpoint."""
        fx = self._fx = []
        for conn in list(self.conns.values()):
            self._close(conn, now)
        for ep in list(self.links.values()):
            self._detach(ep, now)
        return fx
