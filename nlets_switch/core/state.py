"""The engine's state and the small helpers every part of it uses.

The engine is one class split by concern into a chain of bases, each in its
own module: :class:`EngineState` (this one: what the engine knows),
:class:`~nlets_switch.core.dispatch.Dispatch` (endpoints, queues, windows),
:class:`~nlets_switch.core.signon.SignOn` (sign-on, lock-out) and
:class:`~nlets_switch.core.engine.Engine` (the entry points, frames in,
closing, timers). Effects are appended to ``self._fx``, the list the current
entry point returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from nlets_switch.core import link as lk
from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.controls import Controls, ReviewRule
from nlets_switch.core.delivery import Delivery, Endpoint
from nlets_switch.core.directory import Directory
from nlets_switch.core.effects import Effect, Log, Output, PauseReading, ResumeReading
from nlets_switch.core.events import Audit, Security, SwitchEvent
from nlets_switch.core.formats import Formats
from nlets_switch.core.ledger import Ledger, Stats
from nlets_switch.core.router import Router
from nlets_switch.core.timers import Timers
from nlets_switch.errors import LinkError
from nlets_switch.store.records import Recovered
from nlets_switch.wire.message import decode_body, format_output, stamp
from nlets_switch.wire.schema import SchemaSet
from nlets_switch.wire.xml import XmlInput

if TYPE_CHECKING:
    from nlets_switch.config import Config


def review_rules(config: Config) -> tuple[ReviewRule, ...]:
    """The ``intervention.rules`` of a configuration (none when it has no such section)."""
    section = getattr(config, "intervention", None)
    return section.review_rules() if section is not None else ()


class TimerTag:
    """What a heap entry wakes when it is not a connection."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<timer {self.name}>"


EXPIRY: Final = TimerTag("expiry")
SENT: Final = TimerTag("sent")
CHECKPOINT: Final = TimerTag("checkpoint")
RETRY: Final = TimerTag("retry")


class EngineState:
    """What the engine knows: configuration, directory, links, timers, counters."""

    def __init__(self, config: Config, schemas: SchemaSet, recovered: Recovered | None = None,
                 directory: Directory | None = None, router: Router | None = None) -> None:
        self.config = config
        self.schemas = schemas
        self.directory = directory if directory is not None else Directory(config.entries)
        self.router = (router if router is not None
                       else Router(self.directory, schemas, config.hold))
        #: Remove status and review rules (core/controls.py); the router consults them.
        self.controls: Controls = self.router.controls
        self.controls.rules = review_rules(config)
        self.stats = Stats()
        self.ledger = Ledger(self.router, self.directory, schemas, self.stats, self.online,
                             recovered or Recovered(0, 0, {}))
        #: The XML codec and the rules of XML links (XML.md).
        self.formats = Formats(schemas, self.directory, config.limits.max_message)
        self.ledger.check_plan = self.formats.check_plan
        #: ORI -> its live endpoint (a link or a local service).
        self.links: dict[str, Endpoint] = {}
        #: Cluster mode: ORIs signed on at the other nodes (the server keeps it up to
        #: date), and whether sign-ons wait for this node to hold their ORI.
        self.elsewhere: set[str] = set()
        self.cluster = False
        #: Endpoints woken while a read-back ran: read again from the start after it.
        self.rewake: set[int] = set()
        #: Connections open (until the server reports them lost).
        self.conns: dict[int, Conn] = {}
        #: Connections per peer host.
        self.peers: dict[str, int] = {}
        #: Connections that have not asked to sign on, oldest first (in all, per host).
        self.unauth: dict[int, Conn] = {}
        self.unauth_by_host: dict[str, dict[int, Conn]] = {}
        self.accepting = True
        self.timers: Timers[Any] = Timers()
        self._buckets: dict[str, list[float]] = {}
        self._ids = 0
        self._fx: list[Effect] = []
        self._stamp_cache: tuple[int, str] = (-1, "")
        self._sent_at: float | None = None
        #: Journal operations failing now: ``op`` or ``op:destination`` -> the
        #: error's class name. While any is here custody is stopped (``N .05.``).
        self.faults: dict[str, str] = {}
        #: Monotonic time of the latest bytes read from any link (a stop waits
        #: for the links to go quiet before closing them).
        self.last_input = 0.0

    # -- queries ----------------------------------------------------------------

    def online(self, ori: str) -> bool:
        """Whether ``ori`` has a live endpoint (here, or in cluster mode on another node)."""
        ep = self.links.get(ori)
        return (ep is not None and ep.ready) or ori in self.elsewhere

    def render(self, d: Delivery) -> str:
        """The output message text of a delivery (PROTOCOL part 3)."""
        assert d.sent_at is not None
        return format_output(d.key, d.sender, self._stamp(d.received_at), d.input_no,
                             self._stamp(d.sent_at), d.output_no, d.receiver, d.control,
                             d.body)

    def render_for(self, ep: Endpoint, d: Delivery) -> bytes:
        """The bytes of a delivery to ``ep``'s link: text, or a document for an XML link."""
        assert d.sent_at is not None
        return self.formats.render(d, self._stamp(d.received_at), self._stamp(d.sent_at),
                                   ep.xml)

    def _read_body(self, conn: Conn, body: bytes) -> str | XmlInput:
        """An ``M`` body as text, or as a document read by the codec for an XML
        link (XML.md); raises the LinkError whose ``N`` it deserves."""
        if conn.endpoint is not None and conn.endpoint.xml:
            return self.formats.read(body)
        return decode_body(body, self.config.limits.max_message)

    def _take(self, ori: str, got: str | XmlInput, now: Now) -> SwitchEvent:
        """Into the gathering group: a text, or a document's translation (the
        journal keeps the document) or its ER."""
        if isinstance(got, str):
            return self.ledger.accept(ori, got, now.wall)[1]
        if got.text is not None:
            return self.ledger.accept(ori, got.text, now.wall, original=got.document)[1]
        assert got.error is not None
        return self.ledger.reject(ori, got.error, got.header, got.document, now.wall)[1]

    def write_limits(self) -> tuple[int, int]:
        """(high, low) water marks for a transport's write buffer.

        The engine stops writing to a link at ``high`` bytes of its own output
        per turn, and the transport pauses it past ``high``: together at most
        ``limits.max_write_buffer`` (and a frame) wait for a slow reader.
        """
        high = max(1, self.config.limits.max_write_buffer // 2)
        return high, high // 4

    # -- helpers ----------------------------------------------------------------

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    def _configure(self, link: lk.Link) -> None:
        lim = self.config.limits
        link.max_frame = lim.max_frame
        link.signon_timeout = lim.signon_timeout
        link.heartbeat_interval = lim.heartbeat_interval
        link.heartbeat_timeout = lim.heartbeat_timeout
        link.frame_timeout = lim.frame_timeout

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self._fx.append(Log(level, event, fields))

    def _audit(self, type_: str, subject: str, outcome: str, now: Now, **detail: Any) -> None:
        self._fx.append(Audit(type_, subject, outcome, detail, now.wall))

    def _security(self, type_: str, subject: str, outcome: str, now: Now,
                  **detail: Any) -> None:
        """A security event: audited and published (never message text or credentials)."""
        self._fx.append(Security(type_, subject, outcome, detail, now.wall))

    def _output(self, conn: Conn) -> None:
        if not conn.dirty and conn.link.pending_bytes:
            conn.dirty = True
            self._fx.append(Output(conn))

    def _nak(self, conn: Conn, seq: int, err: LinkError) -> None:
        self.stats.naks += 1
        conn.link.send_nak(seq, err)

    def _pause(self, conn: Conn, reason: str) -> None:
        if not conn.paused and not conn.closed:
            self._fx.append(PauseReading(conn))
        conn.paused.add(reason)

    def _resume(self, conn: Conn, reason: str) -> None:
        paused = conn.paused
        if reason in paused:
            paused.discard(reason)
            if not paused and not conn.closed:
                self._fx.append(ResumeReading(conn))

    def _arm(self, conn: Conn, soon: float | None = None) -> None:
        """Make sure the heap wakes ``conn`` by its deadline (or ``soon``)."""
        d = conn.deadline() if soon is None else soon
        if d is not None and (conn.timer_at is None or d < conn.timer_at):
            conn.timer_at = d
            self.timers.schedule(d, conn)

    def _take_token(self, ori: str, now: Now) -> bool:
        lim = self.config.limits
        bucket = self._buckets.get(ori)
        if bucket is None:
            bucket = self._buckets[ori] = [float(lim.rate_burst), now.mono]
        else:
            bucket[0] = min(float(lim.rate_burst),
                            bucket[0] + (now.mono - bucket[1]) * lim.rate_per_ori)
            bucket[1] = now.mono
        if bucket[0] < 1.0:
            return False
        bucket[0] -= 1.0
        return True

    def _rate_wait(self, ori: str, now: Now) -> float:
        """Seconds until ``ori`` has a token again (0 when it has one)."""
        bucket = self._buckets.get(ori)
        if bucket is None or bucket[0] >= 1.0:
            return 0.0
        rate = self.config.limits.rate_per_ori
        tokens = bucket[0] + (now.mono - bucket[1]) * rate
        return 0.0 if tokens >= 1.0 else min(1.0, (1.0 - tokens) / rate)

    def _stamp(self, ts: float) -> str:
        """``HH:MM MM/DD/YYYY`` in the switch's time zone, cached per minute."""
        minute = int(ts // 60)
        if self._stamp_cache[0] != minute:
            self._stamp_cache = (minute, stamp(ts, self.config.tz))
        return self._stamp_cache[1]
