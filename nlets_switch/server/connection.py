"""One TCP (or TLS) connection: an asyncio protocol that feeds the engine.

Every callback of the transport becomes one engine call with the time of
now; the effects go back to the switch to carry out. There is no protocol
decision here: reading pauses and resumes when the engine says so (custody
past ``max_inflight``, the rate limit, a peer that does not read what it is
sent), and the transport's write-buffer limits come from the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any, Final, cast

from nlets_switch.config import Listener, is_loopback
from nlets_switch.core.conn import Conn
from nlets_switch.server.tls_listener import peer_oris, peer_serial

if TYPE_CHECKING:
    from nlets_switch.server.switch import Switch

#: A closed transport still flushing to a peer that does not read is aborted after this.
_ABORT_AFTER: Final = 10.0


class LinkConnection(asyncio.Protocol):
    """The transport side of one link; ``conn`` is the engine's handle for it."""

    def __init__(self, switch: Switch, listener: Listener) -> None:
        self.switch = switch
        self.listener = listener
        self.transport: asyncio.Transport | None = None
        self.conn: Conn | None = None
        #: The serial number of the client certificate (TLS), for revocation.
        self.cert_serial: int | None = None
        self._over_ssl = False

    @property
    def ori(self) -> str:
        """The ORI signed on ('' before)."""
        return self.conn.ori if self.conn is not None else ""

    @property
    def ready(self) -> bool:
        """Signed on and taking deliveries."""
        return self.conn is not None and self.conn.ready

    def buffered(self) -> int:
        """Bytes waiting to be sent: the transport's buffer and the link's queue."""
        size = 0
        if self.transport is not None and not self.transport.is_closing():
            size = self.transport.get_write_buffer_size()
        if self.conn is not None:
            size += self.conn.link.pending_bytes
        return size

    # -- the transport's callbacks ------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Register with the engine (refused past the connection limits)."""
        self.transport = t = cast(asyncio.Transport, transport)
        sw = self.switch
        peer = t.get_extra_info("peername")
        if isinstance(peer, tuple):
            name, host, loop_host = f"{peer[0]}:{peer[1]}", str(peer[0]), str(peer[0])
        else:
            name = host = str(peer)
            loop_host = ""
        rule = self.listener.no_credential
        anonymous_ok = rule == "any" or (rule == "loopback" and is_loopback(loop_host))
        high, low = sw.engine.write_limits()
        t.set_write_buffer_limits(high, low)
        sslobj = t.get_extra_info("ssl_object")
        self._over_ssl = sslobj is not None
        cert = peer_oris(sslobj)
        self.cert_serial = peer_serial(sslobj)
        conn, effects = sw.engine.open(name, host, anonymous_ok, cert, sw.now())
        self.conn = conn
        sw.register(self)
        sw.apply(effects)

    def data_received(self, data: bytes) -> None:
        """Bytes in: the engine reads the frames."""
        sw = self.switch
        assert self.conn is not None
        sw.apply(sw.engine.receive(self.conn, data, sw.now()))

    def eof_received(self) -> bool:
        """The peer closed its side: the As of what it sent still go out.

        (Over TLS the transport closes anyway: a half-closed TLS link is not kept.)
        """
        sw = self.switch
        assert self.conn is not None
        sw.apply(sw.engine.eof(self.conn, sw.now()))
        return not self._over_ssl

    def connection_lost(self, exc: Exception | None) -> None:
        """Gone: the engine detaches the link; what it was owed stays held."""
        sw = self.switch
        if self.conn is not None:
            sw.unregister(self)
            sw.apply(sw.engine.lost(self.conn, sw.now()))

    def pause_writing(self) -> None:
        """The peer does not read fast enough: no more deliveries, and it is not read."""
        sw = self.switch
        if self.conn is not None:
            sw.apply(sw.engine.writable(self.conn, False, sw.now()))

    def resume_writing(self) -> None:
        """The write buffer drained."""
        sw = self.switch
        if self.conn is not None:
            sw.apply(sw.engine.writable(self.conn, True, sw.now()))

    # -- carrying out the engine's effects ----------------------------------------

    def write(self, data: list[bytes]) -> None:
        """Write frames (once per loop turn)."""
        t = self.transport
        if data and t is not None and not t.is_closing():
            t.writelines(data)

    def close(self, data: list[bytes]) -> None:
        """Write the last frames, then close (gracefully; aborted if the peer never reads)."""
        t = self.transport
        if t is None or t.is_closing():
            return
        if data:
            t.writelines(data)
        t.close()
        asyncio.get_running_loop().call_later(_ABORT_AFTER, _abort, t)

    def pause_reading(self) -> None:
        """Stop reading the peer."""
        t = self.transport
        if t is not None and not t.is_closing():
            t.pause_reading()

    def resume_reading(self) -> None:
        """Read the peer again."""
        t = self.transport
        if t is not None and not t.is_closing():
            t.resume_reading()


def _abort(t: Any) -> None:
    with contextlib.suppress(Exception):
        if t.get_write_buffer_size():
            t.abort()
