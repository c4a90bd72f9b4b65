"""The switch's security upkeep: bounded security events and logs, revocation of live links.

* A flood must not become a flood of audit rows or log lines: the security
  events that an attacker can cause at will (bad frames, refused
  handshakes, rate limits, connections refused or evicted) are audited and
  published once per peer and kind each second, and the repeats as one
  event with a count (``repeated``). The same for the log lines of refused
  connections (``ops.ratelog``).
* Once a second the TLS listeners look at their files; when the CRL has
  changed, every live link whose client certificate it revokes is signed
  off (``N .01. CERTIFICATE REVOKED``), within about a second of the change
  (CJIS Security Policy 5.6.2.2.2: revoked credentials stop working).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Final

from nlets_switch.core.events import Audit, Security
from nlets_switch.log import get_logger
from nlets_switch.ops.ratelog import RateLog

if TYPE_CHECKING:
    from nlets_switch.server.connection import LinkConnection
    from nlets_switch.server.switch import Switch
    from nlets_switch.server.tls_listener import TlsListener

log = get_logger("security")

#: Security events an attacker can cause at will: summarised per peer and kind.
BOUNDED_EVENTS: Final = frozenset(
    {"bad_frame", "frame_timeout", "rate_limited", "admission"})
#: Log lines a connection flood would repeat: summarised per event.
BOUNDED_LOGS: Final = frozenset(
    {"too_many_connections", "connection_evicted", "sign_on_timeout", "tls_handshake_failed",
     "sign_on_rejected", "frame_timeout"})
#: How often the CRL is looked at and summaries are written.
POLL_S: Final = 1.0


def _host(peer: Any) -> str:
    text = str(peer or "")
    return text.rsplit(":", 1)[0] if text.count(":") == 1 else text


class Upkeep:
    """The security events and logs of one switch, bounded; the revocation watch."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        self.events = RateLog(1.0, max_keys=1000)
        self.logs = RateLog(1.0, max_keys=1000)
        self.tls: list[TlsListener] = []
        self._task: asyncio.Task[None] | None = None
        #: TLS connections still in their handshake, oldest first (in all, per host):
        #: they belong to the pool of connections not signed on too.
        self._handshaking: dict[int, LinkConnection] = {}
        self._handshaking_by_host: dict[str, dict[int, LinkConnection]] = {}

    # -- TLS handshakes in the pool of connections not signed on ------------------

    def handshake_started(self, proto: LinkConnection, host: str) -> None:
        """A TLS connection begins its handshake; the oldest give way past the limits."""
        lim = self.switch.config.limits
        mine = self._handshaking_by_host.setdefault(host, {})
        while len(mine) >= lim.max_unauthenticated_per_peer:
            next(iter(mine.values())).evict()
        while len(self._handshaking) >= lim.max_unauthenticated:
            next(iter(self._handshaking.values())).evict()
        self._handshaking[id(proto)] = proto
        self._handshaking_by_host.setdefault(host, {})[id(proto)] = proto

    def handshake_ended(self, proto: LinkConnection, host: str) -> None:
        """The handshake is done, refused, or the connection is gone."""
        self._handshaking.pop(id(proto), None)
        mine = self._handshaking_by_host.get(host)
        if mine is not None:
            mine.pop(id(proto), None)
            if not mine:
                del self._handshaking_by_host[host]

    # -- events and logs ---------------------------------------------------------

    def admit(self, event: Audit) -> Audit | None:
        """The event to keep now (None: only counted); summaries go out first."""
        if not isinstance(event, Security) or not (
                event.type in BOUNDED_EVENTS or event.detail.get("tls")):
            return event
        key: Hashable = (event.subject, _host(event.detail.get("peer")))
        full, summary = self.events.hit(event.type, key, time.monotonic())
        if summary is not None:
            self._summary_event(summary.event, summary.key, summary.repeated, summary.seconds)
        return event if full else None

    def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """A log line of the engine; a refused connection's is bounded per event."""
        logger = get_logger("switch")
        if event not in BOUNDED_LOGS:
            getattr(logger, level)(event, **fields)
            return
        full, summary = self.logs.hit(event, None, time.monotonic())
        if summary is not None:
            getattr(logger, level)(event, repeated=summary.repeated,
                                   seconds=round(summary.seconds, 3))
        if full:
            getattr(logger, level)(event, **fields)

    def _summary_event(self, kind: str, key: Hashable, repeated: int, seconds: float) -> None:
        subject, host = key if isinstance(key, tuple) else ("", str(key))
        self.switch.emit_now(Security(kind, str(subject), "repeated",
                                      {"peer": host, "repeated": repeated,
                                       "seconds": round(seconds, 3)}, time.time()))

    def flush(self) -> None:
        """Summaries of the bursts that ended."""
        now = time.monotonic()
        for s in self.events.flush(now):
            self._summary_event(s.event, s.key, s.repeated, s.seconds)
        for s in self.logs.flush(now):
            get_logger("switch").info(s.event, repeated=s.repeated, seconds=round(s.seconds, 3))

    # -- revocation ----------------------------------------------------------------

    def start(self) -> None:
        """Look at the CRLs and write summaries once a second, until :meth:`stop`."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
            self._task.set_name("security-upkeep")

    async def stop(self) -> None:
        """Stop the watch (the last summaries are written)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(POLL_S)
            try:
                self.flush()
                self.check_revocations()
            except Exception as e:  # the watch must outlive one bad look at a file
                log.error("security_upkeep_failed", error=type(e).__name__)

    def check_revocations(self) -> int:
        """Sign off the live links whose certificate a changed CRL revokes; how many."""
        revoked: set[int] = set()
        changed = False
        for t in self.tls:
            serials = t.poll()
            if serials is not None:
                changed = True
                revoked |= serials
        if not changed or not revoked:
            return 0
        n = 0
        for proto in list(self.switch.connections):
            serial = proto.cert_serial
            if serial is not None and serial in revoked and proto.conn is not None \
                    and not proto.conn.closed:
                n += 1
                self.switch.apply(self.switch.engine.revoke(proto.conn, serial,
                                                            self.switch.now()))
        return n
