"""One TCP (or TLS) connection: an asyncio protocol that feeds the engine.

Every callback of the transport becomes one engine call with the time of
now; the effects go back to the switch to carry out. There is no protocol
decision here: reading pauses and resumes when the engine says so (custody
past ``max_inflight``, the rate limit, a peer that does not read what it is
sent), and the transport's write-buffer limits come from the engine.

On a TLS listener the connection does its own TLS over memory BIOs (the
listener is plain TCP underneath): the handshake starts with the first byte,
so no ClientHello is lost, and a refused handshake is known *here*, with the
peer's address, to be audited (issue 11) — asyncio's own TLS layer reports
it to nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import TYPE_CHECKING, Any, Final, cast

from nlets_switch.config import Listener, is_loopback
from nlets_switch.core.conn import Conn
from nlets_switch.log import get_logger
from nlets_switch.server.tls_listener import TlsListener, peer_oris, peer_serial

if TYPE_CHECKING:
    from nlets_switch.server.switch import Switch

log = get_logger("tls")
#: Plain text read from the TLS layer at once.
_READ: Final = 65536

#: A closed transport still flushing to a peer that does not read is aborted after this.
_ABORT_AFTER: Final = 10.0


class LinkConnection(asyncio.Protocol):
    """The transport side of one link; ``conn`` is the engine's handle for it."""

    def __init__(self, switch: Switch, listener: Listener,
                 tls: TlsListener | None = None) -> None:
        self.switch = switch
        self.listener = listener
        self.tls = tls
        self.transport: asyncio.Transport | None = None
        self.conn: Conn | None = None
        self._sslobj: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._handshake_timer: asyncio.TimerHandle | None = None
        self._peer = ""
        self._host = ""
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
        """Register with the engine (refused past the connection limits); over TLS,
        once the handshake is done."""
        self.transport = t = cast(asyncio.Transport, transport)
        peer = t.get_extra_info("peername")
        self._peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self._host = str(peer[0]) if isinstance(peer, tuple) else str(peer)
        if self.tls is not None:
            self._over_ssl = True
            # Until it has signed on, it is in the pool of connections not signed on.
            self.switch.upkeep.handshake_started(self, self._host)
            self._sslobj = self.tls.context.wrap_bio(self._incoming, self._outgoing,
                                                     server_side=True)
            self._handshake_timer = asyncio.get_running_loop().call_later(
                self.switch.config.limits.signon_timeout, self._handshake_timed_out)
            return
        self._open(None)

    def _open(self, sslobj: ssl.SSLObject | None) -> None:
        t = self.transport
        assert t is not None
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
        cert = peer_oris(sslobj)
        self.cert_serial = peer_serial(sslobj)
        conn, effects = sw.engine.open(name, host, anonymous_ok, cert, sw.now())
        self.conn = conn
        sw.register(self)
        sw.apply(effects)

    def data_received(self, data: bytes) -> None:
        """Bytes in: the engine reads the frames (over TLS, once decrypted)."""
        if self._sslobj is not None:
            data = self._tls_in(data)
            if not data or self.conn is None:
                return
        sw = self.switch
        assert self.conn is not None
        sw.apply(sw.engine.receive(self.conn, data, sw.now()))

    # -- TLS over memory BIOs ---------------------------------------------------------

    def _tls_in(self, data: bytes) -> bytes:
        """Feed TLS records; returns the plain text they complete (b'' for none yet)."""
        sslobj = self._sslobj
        assert sslobj is not None
        self._incoming.write(data)
        if self.conn is None:
            try:
                sslobj.do_handshake()
            except ssl.SSLWantReadError:
                self._tls_flush()
                return b""
            except (ssl.SSLError, ssl.CertificateError) as e:
                self._refused(f"tls: {getattr(e, 'reason', None) or type(e).__name__}")
                return b""
            self._tls_flush()
            self._handshake_over()
            self._open(sslobj)
            if self.conn is None or self.conn.closed:
                return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = sslobj.read(_READ)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self._tls_flush()
                self.eof_received()
                break
            except ssl.SSLError:
                # A broken record after the handshake: the link's input ends there.
                if self.transport is not None:
                    self.transport.close()
                break
            if not chunk:
                break
            chunks.append(chunk)
        self._tls_flush()  # session tickets, key updates
        return b"".join(chunks)

    def _tls_flush(self) -> None:
        t = self.transport
        pending = self._outgoing.read()
        if pending and t is not None and not t.is_closing():
            t.write(pending)

    def _refused(self, reason: str) -> None:
        """A refused handshake: audited with the peer's address, then closed."""
        lst = self.listener
        self.switch.security("sign_on", "", "failure", listener=lst.address, tls=True,
                             peer=self._peer, reason=reason)
        log.info("tls_handshake_failed", listener=lst.address, peer=self._peer,
                 reason=reason)
        self._tls_flush()  # the alert, when OpenSSL made one
        self._handshake_over()
        if self.transport is not None:
            self.transport.close()

    def _handshake_over(self) -> None:
        if self._handshake_timer is not None:
            self._handshake_timer.cancel()
            self._handshake_timer = None
        self.switch.upkeep.handshake_ended(self, self._host)

    def evict(self) -> None:
        """The oldest handshake gives way to a newcomer (issue 11): closed, counted."""
        self._handshake_over()
        self.switch.security("admission", "", "evicted", peer=self._peer, tls=True,
                             reason="oldest connection not signed on")
        if self.transport is not None:
            self.transport.abort()

    def _handshake_timed_out(self) -> None:
        self._handshake_timer = None
        if self.conn is None and self.transport is not None \
                and not self.transport.is_closing():
            self._refused("tls: handshake timed out")
            if self.transport is not None:
                self.transport.abort()

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
        if self._sslobj is not None and self.conn is None:
            self._handshake_over()
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
            if self._sslobj is not None:
                self._tls_write(data)
            else:
                t.writelines(data)

    def _tls_write(self, data: list[bytes]) -> None:
        sslobj = self._sslobj
        assert sslobj is not None
        try:
            sslobj.write(b"".join(data))
        except ssl.SSLError:
            return  # the TLS session is over; the transport closes with it
        self._tls_flush()

    def close(self, data: list[bytes]) -> None:
        """Write the last frames, then close (gracefully; aborted if the peer never reads)."""
        t = self.transport
        if t is None or t.is_closing():
            return
        if data:
            self.write(data)
        if self._sslobj is not None and self.conn is not None:
            with contextlib.suppress(ssl.SSLError):
                self._sslobj.unwrap()  # close_notify
            self._tls_flush()
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
