"""One connection as the engine sees it, and the engine's notion of now."""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from nlets_switch.core.link import Link

if TYPE_CHECKING:
    from nlets_switch.core.delivery import Endpoint


class Now(NamedTuple):
    """The time of one engine call: ``mono`` (any monotonic clock, for timers,
    rate buckets and lock-outs) and ``wall`` (seconds since the epoch, for rows,
    output headers and events)."""

    mono: float
    wall: float


class Conn:
    """A TCP (or TLS) connection: its link protocol object and what the engine
    keeps about it (custody in flight, reasons reading is paused, rate state).

    The server holds it as an opaque handle and passes it back to the engine.
    """

    __slots__ = (
        "acked", "anonymous_ok", "cert_oris", "closed", "dirty", "endpoint", "frame_error",
        "host", "id", "inflight", "link", "paused", "peer", "rate_limited", "rate_pause",
        "rate_resume_at", "registered", "repump", "settle_at", "settling", "timer_at",
        "writable",
    )

    def __init__(self, id: int, link: Link, peer: str, host: str, anonymous_ok: bool,
                 cert_oris: frozenset[str] | None) -> None:
        self.id = id
        self.link = link
        #: ``host:port`` of the peer, for logs and audit; ``host`` alone for limits.
        self.peer = peer
        self.host = host
        #: A sign-on without credential is allowed here (listener rule, loopback).
        self.anonymous_ok = anonymous_ok
        #: ORIs named by the TLS client certificate; None on plain TCP.
        self.cert_oris = cert_oris
        self.endpoint: Endpoint | None = None
        self.registered = False
        self.closed = False
        #: Messages of this link whose custody (commit) is pending.
        self.inflight = 0
        self.paused: set[str] = set()
        self.writable = True
        self.dirty = False
        self.acked = False
        self.rate_limited = False
        self.rate_pause = 0.0
        self.rate_resume_at: float | None = None
        self.repump = False
        self.frame_error = False
        self.settling = False
        self.settle_at = 0.0
        self.timer_at: float | None = None

    @property
    def ori(self) -> str:
        """The ORI signed on ('' before)."""
        return self.link.ori

    @property
    def ready(self) -> bool:
        """Signed on and taking deliveries."""
        ep = self.endpoint
        return ep is not None and ep.ready

    def deadline(self) -> float | None:
        """The earliest time this connection needs the engine's timer."""
        d = self.link.next_deadline()
        for t in (self.rate_resume_at, self.settle_at if self.settling else None):
            if t is not None and (d is None or t < d):
                d = t
        return d
