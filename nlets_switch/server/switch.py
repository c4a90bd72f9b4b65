"""The switch: the thin asyncio layer around the pure codec and router.

The path of one message (DESIGN.md)::

    bytes -> FrameBuffer -> Frame(M) -> parse -> router (validate, route)
          -> journal (durable, group commit) -> A to sender
          -> dispatch -> endpoint window -> endpoint A -> journal (acked)

One task per TCP link reads and feeds the pure frame buffer; everything a
frame causes is done synchronously in the loop, and what must be durable is
handed to the journal's writer thread, whose batch callback releases the
acknowledgements. Local services attach as :class:`Endpoint` objects, the
same kind of thing as a TCP :class:`Link`, so the router never knows which
is which.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import sqlite3
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from nlets_switch.config import Config, Entry, Listener, is_loopback
from nlets_switch.core.directory import Directory
from nlets_switch.core.router import Plan, Router
from nlets_switch.errors import (
    FrameError,
    LinkError,
    MessageError,
    RateLimited,
    SignOnRejected,
    SignOnRequired,
    SmCode,
    SwitchBusy,
    TooManyConnections,
)
from nlets_switch.log import get_logger
from nlets_switch.server.credentials import verify_credential
from nlets_switch.store.journal import Journal
from nlets_switch.store.records import (
    OPEN_STATES,
    Batch,
    DeliveryRow,
    DoneRow,
    ExpiredRow,
    MessageRow,
    OwedRow,
)
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import (
    SWITCH_ORI,
    Message,
    decode_body,
    er_text,
    format_output,
    next_number,
    parse_message,
    sm_text,
    stamp,
)
from nlets_switch.wire.schema import SchemaSet, load_schemas

log = get_logger("switch")

_LEAD: Final = " \r\n"
_READ_SIZE: Final = 256 * 1024
_RELOAD_BATCH: Final = 500
# Write groups handed to the journal and not yet committed: one committing, one
# waiting, so the writer never idles; the rest gathers into one bigger group.
_MAX_GROUPS: Final = 2
# A first transmission still unacknowledged after this long is journaled as
# 'sent' on its own; earlier, the acknowledgement's UPDATE records both.
_SENT_GRACE: Final = 0.5
_CHECKPOINT_S: Final = 1.0
_EXPIRE_BATCH: Final = 1000


class Pending:
    """One delivery owed to an endpoint: what it takes to render and track it."""

    __slots__ = (
        "addressed", "body", "control", "expires_at", "id", "input_no", "key", "link",
        "msg_id", "output_no", "priority", "received_at", "receiver", "sender", "sent_at",
    )

    def __init__(self, id: int, msg_id: int, link: str, receiver: str, addressed: str,
                 output_no: int, priority: int, key: str, sender: str, received_at: float,
                 input_no: int, control: str | None, body: str, expires_at: float,
                 sent_at: float | None = None) -> None:
        self.id = id
        self.msg_id = msg_id
        self.link = link
        self.receiver = receiver
        self.addressed = addressed
        self.output_no = output_no
        self.priority = priority
        self.key = key
        self.sender = sender
        self.received_at = received_at
        self.input_no = input_no
        self.control = control
        self.body = body
        self.expires_at = expires_at
        self.sent_at = sent_at


@dataclass
class Stats:
    """Counters for metrics; cheap to bump on the hot path."""

    messages: dict[tuple[str, str], int] = field(default_factory=dict)
    naks: int = 0
    delivered: int = 0
    latency_sum: float = 0.0

    def count(self, key: str, outcome: str) -> None:
        """Bump the counter of messages of ``key`` that ended as ``outcome``."""
        k = (key, outcome)
        self.messages[k] = self.messages.get(k, 0) + 1


class _WriteGroup:
    """A batch gathering while the journal is busy, and what waits on its commit."""

    __slots__ = ("batch", "dones", "out")

    def __init__(self) -> None:
        self.batch = Batch()
        self.out: list[Pending] = []
        self.dones: list[Callable[[BaseException | None], None]] = []


Event = dict[str, Any]
Observer = Callable[[Event], None]


class Endpoint:
    """Anything that signs on as an ORI and takes deliveries: a TCP link or a local service.

    Keeps the delivery queue, the window of outstanding messages (PROTOCOL
    part 1) and the rule that SM goes ahead of other traffic. Deliveries
    beyond ``max_queued`` stay in the journal and are read back as the queue
    drains, so memory stays bounded whatever the backlog.
    """

    kind = "endpoint"

    def __init__(self, switch: Switch, ori: str) -> None:
        self.switch = switch
        self.ori = ori
        self.ready = False
        self.closed = False
        self.urgent: deque[Pending] = deque()
        self.queue: deque[Pending] = deque()
        self.outstanding: dict[int, Pending] = {}
        self.seq_out = 0
        self.window = switch.config.limits.window
        self.max_queued = switch.config.limits.max_queued
        self.loading = False
        self.spilled = False
        self.last_loaded = 0
        self.signed_on_at = time.time()

    # -- deliveries -------------------------------------------------------

    def next_seq(self) -> int:
        """The next sequence number of a frame this side sends."""
        self.seq_out = (self.seq_out + 1) & 0xFFFFFFFF
        return self.seq_out

    def start_delivery(self) -> None:
        """Read back from the journal everything owed to this ORI, in order."""
        self.ready = True
        self.spilled = True
        self.last_loaded = 0
        self._reload()

    def enqueue(self, p: Pending) -> None:
        """Take a delivery that was just made durable."""
        if not self.ready or self.loading or self.spilled:
            # It is in the journal; the read-back in progress (or the next one)
            # brings it in order.
            return
        if len(self.queue) + len(self.urgent) >= self.max_queued:
            self.spilled = True
            return
        (self.urgent if p.priority == 0 else self.queue).append(p)
        self.last_loaded = max(self.last_loaded, p.id)

    def pump(self) -> None:
        """Send queued deliveries while the window allows."""
        if not self.ready or self.closed:
            return
        now = time.time()
        sent: list[int] = []
        while (len(self.outstanding) < self.window and (self.urgent or self.queue)
               and self.can_send()):
            p = self.urgent.popleft() if self.urgent else self.queue.popleft()
            if p.expires_at <= now:
                continue  # the expiry sweep records it and tells the sender
            first = p.sent_at is None
            if first:
                p.sent_at = now
                sent.append(p.id)
            seq = self.next_seq()
            self.outstanding[seq] = p
            self.transmit(seq, p)
        if sent:
            self.switch.record_sent(sent, now)
        if self.spilled and not self.loading and not self.urgent and not self.queue:
            self._reload()

    def _reload(self) -> None:
        self.loading = True
        self.switch.read_owed(self.ori, self.last_loaded,
                              min(_RELOAD_BATCH, self.max_queued), self._loaded)

    def _loaded(self, owed: list[OwedRow] | None, exc: BaseException | None) -> None:
        self.loading = False
        if self.closed or exc is not None or owed is None:
            return
        rows = [Pending(*r) for r in owed]
        self.spilled = len(rows) >= min(_RELOAD_BATCH, self.max_queued)
        have = {p.id for p in self.outstanding.values()}
        for p in rows:
            self.last_loaded = max(self.last_loaded, p.id)
            if p.id not in have:
                (self.urgent if p.priority == 0 else self.queue).append(p)
        self.pump()

    def acked(self, seq: int) -> Pending | None:
        """The endpoint acknowledged frame ``seq``; returns the delivery it ends."""
        p = self.outstanding.pop(seq, None)
        if p is not None:
            self.switch.delivered(p)
        return p

    def naked(self, seq: int, reason: str) -> Pending | None:
        """The endpoint refused frame ``seq``; it is recorded and not sent again."""
        p = self.outstanding.pop(seq, None)
        if p is not None:
            self.switch.refused_by_receiver(p, reason)
        return p

    def detach(self) -> None:
        """Stop taking deliveries; what is outstanding stays owed in the journal."""
        self.ready = False
        self.closed = True
        self.urgent.clear()
        self.queue.clear()
        self.outstanding.clear()

    # -- to be provided by each kind of endpoint --------------------------

    def can_send(self) -> bool:
        """Whether the endpoint can take another frame now (write buffer room)."""
        return True

    def transmit(self, seq: int, p: Pending) -> None:
        """Send delivery ``p`` as frame ``seq``."""
        raise NotImplementedError

    def render(self, p: Pending) -> str:
        """The output message text of a delivery (PROTOCOL part 3)."""
        sw = self.switch
        assert p.sent_at is not None
        return format_output(p.key, p.sender, sw.stamp(p.received_at), p.input_no,
                             sw.stamp(p.sent_at), p.output_no, p.receiver, p.control, p.body)


class Link(Endpoint):
    """One TCP (or TLS) connection: sign-on, frames, heartbeats, custody."""

    kind = "tcp"

    def __init__(self, switch: Switch, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter, listener: Listener) -> None:
        super().__init__(switch, "")
        self.reader = reader
        self.writer = writer
        self.listener = listener
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.peer_host = peer[0] if isinstance(peer, tuple) else ""
        self.buffer = fr.FrameBuffer(switch.config.limits.max_frame)
        #: ORIs named by the TLS client certificate; None on plain TCP.
        self.cert_oris: set[str] | None = None
        self.inflight = 0
        self.custody_free = asyncio.Event()
        self.custody_free.set()
        self.no_inflight = asyncio.Event()
        self.rate_limited = False  # this read hit the ORI's rate limit
        self.rate_pause = 0.0
        self.frame_error = False
        self.sign_off_seq: int | None = None
        now = time.monotonic()
        self.connected_at = now
        self.last_rx = now
        self.ping_seq: int | None = None
        self.ping_at = 0.0
        self.closing = False
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._flush_scheduled = False
        self._acked = False  # an A came in this read: pump once after the read
        self.log = log.bind(peer=self.peer)

    # -- writing ----------------------------------------------------------

    def can_send(self) -> bool:
        """Room in what this link has waiting to be written (limits.max_write_buffer).

        Past it, deliveries stay queued (and past ``max_queued``, in the journal
        only): a slow reader costs bounded memory.
        """
        transport = self.writer.transport
        waiting = self._out_bytes + (transport.get_write_buffer_size()
                                     if not transport.is_closing() else 0)
        return waiting < self.switch.config.limits.max_write_buffer

    def send(self, data: bytes) -> None:
        """Queue bytes; they are written together at the end of this loop turn."""
        if self.closed:
            return
        self._out.append(data)
        self._out_bytes += len(data)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what :meth:`send` queued, in one call."""
        self._flush_scheduled = False
        if self._out and not self.writer.is_closing():
            self.writer.writelines(self._out)
        self._out = []
        self._out_bytes = 0

    def send_frame(self, ftype: int, seq: int, body: bytes = b"") -> None:
        """Queue one frame."""
        self.send(fr.encode_frame(ftype, seq, body))

    def nak(self, seq: int, err: LinkError) -> None:
        """Answer frame ``seq`` with ``N`` and the error's text."""
        self.switch.stats.naks += 1
        self.send_frame(fr.NAK, seq, err.wire.encode())

    def transmit(self, seq: int, p: Pending) -> None:
        """Send a delivery as an ``M`` frame."""
        self.send_frame(fr.MESSAGE, seq, self.render(p).encode("ascii"))

    # -- reading ----------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the link ends; then detach it from the switch."""
        try:
            await self._read_loop()
            await self._settle()
            if self.sign_off_seq is not None:
                self.send_frame(fr.ACK, self.sign_off_seq)
            if self.frame_error:
                # After the A of every good frame before it (part 1: N, then close).
                self.nak(0, FrameError())
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            self.close()

    async def _settle(self) -> None:
        """Before closing: the A of every message already taken into custody goes out."""
        if self.inflight and not self.closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5):
                    await self.no_inflight.wait()
            self.flush()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.writer.drain()

    async def _read_loop(self) -> None:
        reader = self.reader
        while not self.closing:
            data = await reader.read(_READ_SIZE)
            if not data:
                return
            self.last_rx = time.monotonic()
            try:
                got = self.buffer.feed(data)
            except FrameError:
                self.frame_error = True
                return
            for f in got:
                if not self.ready:
                    await self._before_sign_on(f)
                else:
                    self._frame(f)
                if self.closing:
                    break
            if self.buffer.failed and not self.closing:
                self.frame_error = True
                return
            if self._acked:
                self._acked = False
                self.pump()
            if self.inflight >= self.switch.config.limits.max_inflight:
                self.custody_free.clear()
                await self.custody_free.wait()
            if self.rate_limited:
                # Each read in a row that hit the limit doubles the pause (to 1 s).
                self.rate_pause = min(1.0, max(self.switch.rate_wait(self.ori),
                                               self.rate_pause * 2))
            else:
                self.rate_pause = 0.0
            wait = self.rate_pause
            self.rate_limited = False
            if wait > 0:
                # A link that went past its ORI's rate is not read again until a
                # token is due: TCP back-pressure holds a flood back instead of
                # costing the switch an N per frame, so other ORIs keep their pace.
                self.flush()
                await asyncio.sleep(wait)
            # Back-pressure: a peer that does not read its acknowledgements
            # stops being read, so nothing piles up in memory for it.
            self.flush()
            await self.writer.drain()

    async def _before_sign_on(self, f: fr.Frame) -> None:
        if f.type != fr.SIGN_ON:
            self.nak(f.seq, SignOnRequired())
            self.closing = True
            return
        text = f.body.decode("ascii", "replace")
        ori, _, cred = text.partition(" ")
        refusal = await self.switch.sign_on(self, ori, cred or None)
        if refusal is not None or self.closing:
            self.log.info("sign_on_rejected", ori=ori[:9], reason=refusal)
            self.nak(f.seq, SignOnRejected())
            self.closing = True
            return
        self.ori = ori
        self.log = self.log.bind(ori=ori)
        self.switch.attach(self)
        self.send_frame(fr.ACK, f.seq, SWITCH_ORI.encode())
        self.start_delivery()

    def _frame(self, f: fr.Frame) -> None:
        t = f.type
        if t == fr.MESSAGE:
            self.switch.receive(self, f.seq, f.body)
        elif t == fr.ACK:
            if self.acked(f.seq) is not None:
                self._acked = True
        elif t == fr.HEARTBEAT:
            if self.ping_seq is not None and f.seq == self.ping_seq:
                self.ping_seq = None
            else:
                self.send_frame(fr.HEARTBEAT, f.seq)
        elif t == fr.NAK:
            self.naked(f.seq, f.body.decode("ascii", "replace")[:80])
            self.pump()
        elif t == fr.SIGN_OFF:
            # Answered after the A of every message before it (Link.run), and
            # nothing more is delivered on this link.
            self.sign_off_seq = f.seq
            self.ready = False
            self.closing = True
        elif t == fr.SIGN_ON:
            self.nak(f.seq, LinkError("ALREADY SIGNED ON", close=False))

    def custody_done(self) -> None:
        """One message of this link became durable (or failed)."""
        self.inflight -= 1
        if self.inflight < self.switch.config.limits.max_inflight:
            self.custody_free.set()
        if self.inflight == 0:
            self.no_inflight.set()

    # -- timers (called by the switch's sweeper) --------------------------

    def tick(self, now: float) -> None:
        """Sign-on timeout, heartbeats and idle timeout (PROTOCOL part 1)."""
        lim = self.switch.config.limits
        if self.closing or self.closed:
            return
        if not self.ready:
            if now - self.connected_at > lim.signon_timeout:
                self.log.info("sign_on_timeout")
                self.nak(0, SignOnRequired())
                self.abort()
            return
        if self.ping_seq is not None:
            if now - self.ping_at > lim.heartbeat_timeout:
                self.log.info("heartbeat_timeout")
                self.abort()
        elif now - self.last_rx > lim.heartbeat_interval:
            self.ping_seq = self.next_seq()
            self.ping_at = now
            self.send_frame(fr.HEARTBEAT, self.ping_seq)
        if (self.urgent or self.queue) and len(self.outstanding) < self.window:
            self.pump()  # a write buffer that was full may have drained

    def abort(self) -> None:
        """Close now from outside the read loop."""
        self.closing = True
        self.flush()
        self.writer.close()

    def close(self) -> None:
        """Detach from the switch and close the socket."""
        if self.closed:
            return
        self.flush()
        self.switch.detach(self)
        self.detach()
        with contextlib.suppress(Exception):
            self.writer.close()


# --------------------------------------------------------------------------
# The switch.
# --------------------------------------------------------------------------


class Switch:
    """The message switch: links, journal, router, timers."""

    def __init__(self, config: Config, schemas: SchemaSet | None = None) -> None:
        self.config = config
        self.schemas = schemas if schemas is not None else load_schemas()
        self.directory = Directory(config.entries)
        self.router = Router(self.directory, self.schemas, config.hold)
        self.journal = Journal(Path(config.data_dir) / "journal.sqlite")
        self.links: dict[str, Endpoint] = {}
        self.connections: set[Link] = set()
        self.stats = Stats()
        self.observers: list[Observer] = []
        #: ORI -> factory of the in-process endpoint that answers for it when no
        #: link does (the services install these).
        self.standby: dict[str, Callable[[], Endpoint]] = {}
        self.servers: list[asyncio.Server] = []
        self.addresses: list[tuple[str, int]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._msg_id = 0
        self._dlv_id = 0
        self._counters: dict[str, int] = {}
        self._stamp_cache: tuple[int, str] = (-1, "")
        self._sweeper: asyncio.Task[None] | None = None
        self._wgroup: _WriteGroup | None = None
        self._writing = 0
        self._sent: dict[int, float] = {}
        self._next_checkpoint = 0.0
        self._failures: dict[str, tuple[int, float]] = {}
        self._buckets: dict[str, list[float]] = {}
        self._peers: dict[str, int] = {}
        self._accepting = True
        self._next_expiry = 0.0
        self.expiry_interval = 5.0
        self.started = asyncio.Event()
        #: Plug-ins (local services) start after the journal and before the
        #: listeners, and stop before the journal closes; see nlets_switch.server.app.
        self.on_start: list[Callable[[], Awaitable[None]]] = []
        self.on_stop: list[Callable[[], Awaitable[None]]] = []

    # -- life cycle -------------------------------------------------------

    async def start(self) -> None:
        """Open the journal, recover its numbers and start listening."""
        loop = asyncio.get_running_loop()
        self._msg_id, self._dlv_id, self._counters = self.journal.recover()
        self.journal.start(loop)
        for hook in self.on_start:
            await hook()
        for lst in self.config.listeners:
            ctx = self.tls_context(lst)
            server = await asyncio.start_server(
                functools.partial(self._on_connect, lst), lst.host, lst.port,
                reuse_address=True, limit=_READ_SIZE, ssl=ctx,
                ssl_handshake_timeout=self.config.limits.signon_timeout if ctx else None)
            self.servers.append(server)
            for s in server.sockets:
                name = s.getsockname()
                if s.family in (socket.AF_INET, socket.AF_INET6):
                    self.addresses.append((name[0], name[1]))
        self._sweeper = asyncio.create_task(self._sweep(), name="sweeper")
        self.started.set()
        log.info("listening", addresses=[f"{h}:{p}" for h, p in self.addresses],
                 journal=str(self.journal.path), oris=len(self.directory))

    def tls_context(self, lst: Listener) -> ssl.SSLContext | None:
        """The TLS context of a listener (PROTOCOL part 7), or None for plain TCP.

        The listener's context stays; for each handshake, when the client's
        hello arrives, it swaps in the current context from a cache that
        rebuilds it when the CA, certificate, key or CRL file changes, so
        ``pki revoke`` applies from the next connection without a restart.
        A refused handshake (no certificate, another CA, revoked) is audited.
        """
        if not lst.tls:
            return None
        from nlets_switch.server import pki  # TLS is optional; keep start-up light without it

        t = lst.tls
        files = pki.TlsFiles(Path(t["ca"]), Path(t["cert"]), Path(t["key"]),
                             Path(t["crl"]) if t.get("crl") else None)
        cache = pki.ServerContextCache(files, bool(t.get("require_client_cert", True)))
        base = cache.context()  # fails at start-up, not at the first connection

        def hello(sslobj: Any, server_name: str | None, ctx: ssl.SSLContext) -> None:
            try:
                current = cache.context()
            except (OSError, ssl.SSLError, ValueError) as e:
                log.error("tls_context_reload_failed", listener=lst.address,
                          error=type(e).__name__)
                return
            if current is not ctx:
                sslobj.context = current

        base.sni_callback = hello
        switch = self

        class AuditedSSLObject(ssl.SSLObject):
            """Audits a refused handshake: no certificate, another CA, revoked."""

            def do_handshake(self) -> None:
                try:
                    super().do_handshake()
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                    raise
                except ssl.SSLError as e:
                    switch.audit("sign_on", "", "failure", listener=lst.address,
                                 reason=f"tls: {e.reason or type(e).__name__}")
                    log.info("tls_handshake_failed", listener=lst.address, reason=e.reason)
                    raise

        base.sslobject_class = AuditedSSLObject
        return base
    async def stop(self) -> None:
        """Graceful stop: no new links, finish custody and writing, close links."""
        self._accepting = False
        for s in self.servers:
            s.close()
        conns = list(self.connections)
        for c in conns:
            c.closing = True
        for hook in self.on_stop:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(hook(), 10)
        # Every message read so far gets its A (custody is taken) before links
        # close, and what was sent is recorded.
        self._flush_sent(float("inf"))
        with contextlib.suppress(Exception):
            async with asyncio.timeout(10):
                while True:
                    self._flush_group()
                    await self.journal.barrier()
                    if self._wgroup is None and self._writing == 0:
                        break
        for c in conns:
            c.flush()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.writer.drain(), 2)
            c.close()
        for t in list(self._tasks):
            t.cancel()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for ep in list(self.links.values()):
            self.detach(ep)
        for s in self.servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(s.wait_closed(), 2)
        self.journal.close()
        log.info("stopped")

    def rate_wait(self, ori: str) -> float:
        """Seconds until ``ori`` has a token again (0 when it has one)."""
        bucket = self._buckets.get(ori)
        if bucket is None or bucket[0] >= 1.0:
            return 0.0
        lim = self.config.limits
        now = time.monotonic()
        tokens = bucket[0] + (now - bucket[1]) * lim.rate_per_ori
        return 0.0 if tokens >= 1.0 else min(1.0, (1.0 - tokens) / lim.rate_per_ori)

    def reload(self, cfg: Config) -> None:
        """Take a new directory, limits and hold rules without dropping unaffected links.

        Listeners and the data directory stay as started. A removed ORI is
        signed off; what is held for it stays in the journal.
        """
        cfg = cfg.model_copy(update={"listeners": self.config.listeners,
                                     "data_dir": self.config.data_dir})
        self.config = cfg
        self.directory = Directory(cfg.entries)
        self.router = Router(self.directory, self.schemas, cfg.hold)
        for ori, ep in list(self.links.items()):
            ep.window = cfg.limits.window
            ep.max_queued = cfg.limits.max_queued
            if isinstance(ep, Link):
                ep.buffer.max_frame = cfg.limits.max_frame
            if self.directory.sign_on_entry(ori) is None and isinstance(ep, Link):
                log.info("signed_off_by_reload", ori=ori)
                ep.abort()
                ep.close()
        self.audit("config_reload", cfg.source, "success", oris=len(self.directory))
        log.info("reloaded", source=cfg.source, oris=len(self.directory))

    # -- connections --------------------------------------------------------

    async def _on_connect(self, lst: Listener, reader: asyncio.StreamReader,
                          writer: asyncio.StreamWriter) -> None:
        if not self._accepting:
            writer.close()
            return
        peer = writer.get_extra_info("peername")
        host = peer[0] if isinstance(peer, tuple) else str(peer)
        lim = self.config.limits
        if (sum(self._peers.values()) >= lim.max_connections
                or self._peers.get(host, 0) >= lim.max_connections_per_peer):
            # Refused before any TLS or sign-on work: N .06. with seq 0, then close.
            log.warning("too_many_connections", peer=host)
            writer.write(fr.encode_frame(fr.NAK, 0, TooManyConnections().wire.encode()))
            writer.close()
            return
        self._peers[host] = self._peers.get(host, 0) + 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            cert_oris: set[str] | None = None
            sslobj = writer.get_extra_info("ssl_object")
            if sslobj is not None:
                from nlets_switch.server import pki

                cert_oris = pki.peer_oris(sslobj)
            link = Link(self, reader, writer, lst)
            link.cert_oris = cert_oris
            self.connections.add(link)
            link.log.debug("connected", tls=cert_oris is not None)
            try:
                await link.run()
            finally:
                self.connections.discard(link)
        finally:
            n = self._peers.get(host, 1) - 1
            if n > 0:
                self._peers[host] = n
            else:
                self._peers.pop(host, None)
            if task is not None:
                self._tasks.discard(task)

    async def sign_on(self, link: Link, ori: str, credential: str | None) -> str | None:
        """Check a sign-on; None when accepted, else the reason (audited either way).

        After ``security.lockout_after`` failures an ORI is locked out for
        ``security.lockout_minutes``, whatever it sends (CJIS 5.5.3).
        """
        entry = self.directory.sign_on_entry(ori)
        now = time.monotonic()
        reason: str | None = None
        if entry is None:
            reason = "unknown ori" if self.directory.entry(ori) is None else "not signing on"
        else:
            fails, until = self._failures.get(ori, (0, 0.0))
            if until > now:
                reason = "locked out"
            elif not await self.authenticate(link, entry, credential):
                reason = "bad credential or certificate"
                sec = self.config.security
                fails += 1
                if fails >= sec.lockout_after:
                    self._failures[ori] = (0, now + sec.lockout_minutes * 60)
                    log.warning("locked_out", ori=ori, minutes=sec.lockout_minutes)
                    self.audit("lockout", ori, "locked", peer=link.peer)
                else:
                    self._failures[ori] = (fails, 0.0)
            else:
                self._failures.pop(ori, None)
        if reason is not None:
            self.audit("sign_on", ori[:9], "failure", peer=link.peer, reason=reason)
        return reason

    async def authenticate(self, link: Link, entry: Entry, credential: str | None) -> bool:
        """Whether ``link`` may sign on as ``entry`` (certificate, credential, loopback rule)."""
        if link.cert_oris is not None and entry.ori not in link.cert_oris:
            # PROTOCOL part 7: the certificate's CN or a SAN must be the ORI signing on.
            return False
        if entry.credential is not None:
            if credential is None:
                return False
            # scrypt is deliberately slow: keep it off the event loop.
            return await asyncio.to_thread(verify_credential, credential, entry.credential)
        if link.cert_oris:
            return True  # the client certificate is the credential
        rule = link.listener.no_credential
        return rule == "any" or (rule == "loopback" and is_loopback(link.peer_host))

    def attach(self, ep: Endpoint) -> None:
        """Make ``ep`` the live endpoint of its ORI, replacing an older one (part 1)."""
        old = self.links.get(ep.ori)
        # The new endpoint holds the ORI before the old one goes, so the old
        # one's detach neither reports the ORI offline nor wakes a standby.
        self.links[ep.ori] = ep
        if old is not None and old is not ep:
            old_log = getattr(old, "log", log)
            old_log.info("replaced_by_new_sign_on")
            if isinstance(old, Link):
                old.abort()
                old.close()
            else:
                self.detach(old)
                old.detach()
        ep.signed_on_at = time.time()
        self.audit("sign_on", ep.ori, "success", peer=getattr(ep, "peer", ep.kind))
        log.info("signed_on", ori=ep.ori, kind=ep.kind)
        self.emit({"event": "link", "ori": ep.ori, "state": "online", "kind": ep.kind})

    def detach(self, ep: Endpoint) -> None:
        """``ep`` is gone; its deliveries stay owed in the journal.

        When an out-of-process responder's link ends, the in-process service it
        replaced (``standby``) takes its ORI back.
        """
        if ep.ori and self.links.get(ep.ori) is ep:
            del self.links[ep.ori]
            log.info("signed_off", ori=ep.ori, outstanding=len(ep.outstanding))
            self.emit({"event": "link", "ori": ep.ori, "state": "offline", "kind": ep.kind})
            make = self.standby.get(ep.ori)
            if make is not None and isinstance(ep, Link) and self._accepting:
                fresh = make()
                self.attach(fresh)
                fresh.start_delivery()

    def online(self, ori: str) -> bool:
        """Whether ``ori`` has a live endpoint."""
        ep = self.links.get(ori)
        return ep is not None and ep.ready

    # -- numbers and times -------------------------------------------------

    def stamp(self, ts: float) -> str:
        """``HH:MM MM/DD/YYYY`` in the switch's time zone, cached per minute."""
        minute = int(ts // 60)
        if self._stamp_cache[0] != minute:
            self._stamp_cache = (minute, stamp(ts, self.config.tz))
        return self._stamp_cache[1]

    def _number(self, name: str, touched: dict[str, int]) -> int:
        n = next_number(self._counters.get(name, 0))
        self._counters[name] = n
        touched[name] = n
        return n

    # -- the path of one message --------------------------------------------

    def receive(self, link: Link, seq: int, body: bytes) -> None:
        """An ``M`` frame from a link: check, route, journal; ``A`` once durable."""
        lim = self.config.limits
        bucket = self._buckets.get(link.ori)
        now = time.monotonic()
        if bucket is None:
            bucket = self._buckets[link.ori] = [float(lim.rate_burst), now]
        else:
            bucket[0] = min(float(lim.rate_burst), bucket[0] + (now - bucket[1]) * lim.rate_per_ori)
            bucket[1] = now
        if bucket[0] < 1.0:
            # Past the ORI's rate: N, and nothing is journaled.
            link.nak(seq, RateLimited())
            link.rate_limited = True
            self.stats.count("?", "rate_limited")
            return
        bucket[0] -= 1.0
        try:
            text = decode_body(body, self.config.limits.max_message)
        except LinkError as e:
            link.nak(seq, e)
            self.stats.count("?", "refused")
            self.emit({"event": "refused", "ori": link.ori, "reason": e.wire})
            return
        if not self._accepting:
            link.nak(seq, SwitchBusy())
            return
        link.inflight += 1
        link.no_inflight.clear()
        self.accept(link.ori, text, functools.partial(self._custody, link, seq))

    def accept(self, link_ori: str, text: str,
               done: Callable[[BaseException | None], None] | None = None) -> int:
        """Take one input message sent by ``link_ori``; returns its message id.

        Local services call this too, so their answers pass through the journal
        like any other message.
        """
        now = time.time()
        g = self._group()
        b = g.batch
        touched, msgs, dlvs, out = b.counters, b.messages, b.deliveries, g.out
        if done is not None:
            g.dones.append(done)
        self._msg_id += 1
        msg_id = self._msg_id
        input_no = self._number(f"in:{link_ori}", touched)
        msg: Message | None = None
        try:
            msg = parse_message(text)
            plan = self.router.route(msg, link_ori, self.online)
        except MessageError as err:
            origin = link_ori
            control = None
            if msg is not None:
                control = msg.control
                if self.directory.may_speak(link_ori, msg.origin):
                    origin = msg.origin
            elif err.control is not None:
                control = err.control  # the header was read as far as the control field
            key = msg.key if msg is not None else text[:3].split(".")[0]
            msgs.append(MessageRow(msg_id, now, link_ori, key, origin if msg else None,
                                   ",".join(msg.destinations) if msg else None, control,
                                   input_no, "rejected", f"{err.code.wire} {err.detail}".rstrip(),
                                   None, 0, text))
            er = er_text(err, text)
            self._switch_message("ER", er, msg_id, link_ori, origin, control, now, msgs, dlvs,
                                 out, touched)
            # Unknown keys count as "?": a hostile link must not grow the label set.
            label = key if key in self.schemas else "?"
            self.stats.count(label, "rejected")
            self.emit({"event": "rejected", "msg_id": msg_id, "key": label, "ori": link_ori,
                       "code": int(err.code)})
        else:
            body_start = len(text) - len(msg.text.lstrip(_LEAD))
            msgs.append(MessageRow(msg_id, now, link_ori, msg.key, msg.origin,
                                   ",".join(msg.destinations), msg.control, input_no, "accepted",
                                   None, None, body_start, text))
            self._plan(plan, msg, msg_id, link_ori, input_no, now, text, msgs, dlvs, out,
                       touched)
        return msg_id

    def _group(self) -> _WriteGroup:
        """The rows gathered now; one journal operation will carry them all."""
        g = self._wgroup
        if g is None:
            g = self._wgroup = _WriteGroup()
            if self._writing < _MAX_GROUPS:
                asyncio.get_running_loop().call_soon(self._flush_group)
        return g

    def _flush_group(self, force: bool = False) -> None:
        if self._writing >= _MAX_GROUPS and not force:
            return  # the group waits for a commit to finish, and grows meanwhile
        g = self._wgroup
        self._wgroup = None
        if g is None:
            return
        # The highest ids handed out survive retention emptying the tables, so
        # an id never names two messages (a MID quoted in an NFQ, an export).
        g.batch.counters["id:msg"] = self._msg_id
        g.batch.counters["id:dlv"] = self._dlv_id
        self._writing += 1
        self.journal.write(g.batch, functools.partial(self._group_durable, g))

    def _group_durable(self, g: _WriteGroup, exc: BaseException | None) -> None:
        self._writing -= 1
        for done in g.dones:
            done(exc)
        if exc is None:
            self.dispatch(g.out)
        if self._wgroup is not None:
            self._flush_group()

    def read_owed(self, link: str, after: int, limit: int,
                  done: Callable[[list[OwedRow] | None, BaseException | None], None]) -> None:
        """What is owed to ``link`` past id ``after``, read after every earlier write.

        Rows still gathering in the write group (an acknowledgement, say) go
        to the journal first; otherwise a read-back could resend a delivery
        whose A had already come.
        """
        self._flush_group(force=True)
        self.journal.owed(link, after, limit, done)

    def record_sent(self, ids: Iterable[int], at: float) -> None:
        """Deliveries transmitted for the first time.

        Most are acknowledged within milliseconds, and then one UPDATE records
        both (sent_at and acked). Only those still unacknowledged after
        ``_SENT_GRACE`` get a 'sent' record of their own (see the sweeper).
        """
        for i in ids:
            self._sent[i] = at

    def _flush_sent(self, older_than: float) -> None:
        old = [(i, at) for i, at in self._sent.items() if at <= older_than]
        if old:
            sent = self._group().batch.sent
            for i, at in old:
                del self._sent[i]
                sent[i] = at

    def _record_done(self, p: Pending, state: str) -> None:
        g = self._group()
        now = time.time()
        sent_at = self._sent.pop(p.id, None) or g.batch.sent.pop(p.id, None)
        g.batch.done.append(DoneRow(state, now, sent_at if sent_at is not None else now, p.id))

    def _plan(self, plan: Plan, msg: Message, msg_id: int, link_ori: str, input_no: int,
              now: float, text: str, msgs: list[MessageRow], dlvs: list[DeliveryRow],
              out: list[Pending], touched: dict[str, int]) -> None:
        expires = now + plan.hold.expire_s
        body = msg.body
        priority = 0 if msg.key == "SM" else 1
        for r in plan.routes:
            t = r.target
            self._dlv_id += 1
            out_no = self._number(f"out:{t.link}", touched)
            dlvs.append(DeliveryRow(self._dlv_id, msg_id, t.link, t.receiver, t.addressed, out_no,
                                    priority, "held" if r.held else "queued", now, expires,
                                    int(r.held)))
            out.append(Pending(self._dlv_id, msg_id, t.link, t.receiver, t.addressed, out_no,
                               priority, msg.key, msg.origin, now, input_no, msg.control, body,
                               expires))
        for st in plan.statuses:
            sm = sm_text(st.code, st.addressed, text)
            self._switch_message("SM", sm, msg_id, link_ori, msg.origin, msg.control, now, msgs,
                                 dlvs, out, touched)
        outcome = "held" if any(r.held for r in plan.routes) else (
            "routed" if plan.routes else "status")
        self.stats.count(msg.key, outcome)
        if self.observers:
            self.emit({"event": outcome, "msg_id": msg_id, "key": msg.key, "ori": msg.origin,
                       "control": msg.control,
                       "to": [r.target.receiver for r in plan.routes],
                       "sm": [[int(s.code), s.addressed] for s in plan.statuses]})

    def _switch_message(self, key: str, text: str, reply_to: int, link: str, receiver: str,
                        control: str | None, now: float, msgs: list[MessageRow],
                        dlvs: list[DeliveryRow], out: list[Pending],
                        touched: dict[str, int]) -> None:
        """An ER or SM from NL0000000 back to the link that sent the message (part 4)."""
        self._msg_id += 1
        mid = self._msg_id
        in_no = self._number(f"in:{SWITCH_ORI}", touched)
        msgs.append(MessageRow(mid, now, SWITCH_ORI, key, SWITCH_ORI, receiver, control, in_no,
                               "accepted", None, reply_to, 0, text))
        self._dlv_id += 1
        out_no = self._number(f"out:{link}", touched)
        expires = now + self.router.hold_rule(key).expire_s
        priority = 0 if key == "SM" else 1
        dlvs.append(DeliveryRow(self._dlv_id, mid, link, receiver, receiver, out_no, priority,
                                "queued", now, expires, 0))
        out.append(Pending(self._dlv_id, mid, link, receiver, receiver, out_no, priority, key,
                           SWITCH_ORI, now, in_no, control, text, expires))

    def _custody(self, link: Link, seq: int, exc: BaseException | None) -> None:
        link.custody_done()
        if exc is not None:
            link.log.error("journal_write_failed", error=type(exc).__name__)
            link.nak(seq, SwitchBusy())
        else:
            link.send_frame(fr.ACK, seq)

    def dispatch(self, pendings: Iterable[Pending]) -> None:
        """Hand durable deliveries to the endpoints that are signed on."""
        touched: set[Endpoint] = set()
        for p in pendings:
            ep = self.links.get(p.link)
            if ep is not None:
                ep.enqueue(p)
                touched.add(ep)
        for ep in touched:
            ep.pump()

    def delivered(self, p: Pending) -> None:
        """An endpoint acknowledged a delivery: journaled (not awaited) and counted."""
        self._record_done(p, "acked")
        self.stats.delivered += 1
        if p.sent_at is not None:
            self.stats.latency_sum += time.time() - p.received_at
        if self.observers:
            self.emit({"event": "delivered", "msg_id": p.msg_id, "key": p.key, "to": p.receiver,
                       "latency_s": round(time.time() - p.received_at, 6)})

    def refused_by_receiver(self, p: Pending, reason: str) -> None:
        """An endpoint answered ``N`` to a delivery: recorded, not sent again."""
        self._record_done(p, "refused")
        self.emit({"event": "refused_by_receiver", "msg_id": p.msg_id, "to": p.receiver})

    # -- timers -------------------------------------------------------------

    async def _sweep(self) -> None:
        lim = self.config.limits
        period = max(0.02, min(1.0, lim.heartbeat_interval / 4, lim.heartbeat_timeout / 4,
                               lim.signon_timeout / 4))
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for c in list(self.connections):
                c.tick(now)
            wall = time.time()
            self._flush_sent(wall - _SENT_GRACE)
            if wall >= self._next_checkpoint:
                self._next_checkpoint = wall + _CHECKPOINT_S
                with contextlib.suppress(sqlite3.Error):
                    await asyncio.to_thread(self.journal.checkpoint)
            if wall >= self._next_expiry:
                self._next_expiry = wall + self.expiry_interval
                self._flush_group(force=True)
                self.journal.expire(wall, _EXPIRE_BATCH, self._expired)

    def _expired(self, rows: list[ExpiredRow] | None, exc: BaseException | None) -> None:
        """Held messages whose hold ran out: tell their senders with SM .04 (part 4)."""
        if not rows:
            return
        now = time.time()
        g = self._group()
        b = g.batch
        touched, msgs, dlvs, out = b.counters, b.messages, b.deliveries, g.out
        for _did, addressed, mid, link, key, origin, control, text in rows:
            self.stats.count(key, "expired")
            self.emit({"event": "expired", "msg_id": mid, "key": key, "to": addressed})
            if key in ("SM", "ER") or link == SWITCH_ORI:
                continue
            sm = sm_text(SmCode.DROPPED, addressed, text)
            self._switch_message("SM", sm, mid, link, origin, control, now, msgs, dlvs, out,
                                 touched)
        if len(rows) >= _EXPIRE_BATCH:
            self._next_expiry = 0.0

    # -- monitoring -----------------------------------------------------------

    def emit(self, event: Event) -> None:
        """Give an event to every observer; observers must never block (bounded queues)."""
        if not self.observers:
            return
        event.setdefault("ts", time.time())
        for obs in self.observers:
            obs(event)

    def audit(self, event: str, subject: str, outcome: str, **detail: Any) -> None:
        """An audit-trail event (CJIS 5.4.1.1); the audit issue makes it durable."""
        self.emit({"event": "audit", "type": event, "subject": subject, "outcome": outcome,
                   **detail})

    def open_states(self) -> tuple[str, ...]:
        """The delivery states that still owe something (for tools)."""
        return OPEN_STATES
