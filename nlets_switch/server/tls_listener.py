"""TLS listeners (PROTOCOL part 7): the context, swapped at each client hello, and
refused handshakes audited.

The listener is created with its SSL context and handshakes from the first
byte. At each client hello an SNI callback swaps in the current context from
a cache that rebuilds it when the CA, certificate, key or CRL file changes,
so ``pki revoke`` applies from the next connection without a restart.
(Upgrading accepted plain connections with ``start_tls`` lost ClientHellos
that arrived before the upgrade: under uvloop most fast clients hung.)
A refused handshake (no certificate, another CA, revoked) is audited by the
connection, which does the TLS over memory BIOs and knows the peer's address
(``server/connection.py``).

:meth:`TlsListener.poll` (once a second, from ``server.security``) notices a
changed CRL and gives the serial numbers it revokes, so live links signed on
with a revoked certificate are signed off too, not only new connections.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from nlets_switch.config import Listener
from nlets_switch.log import get_logger

log = get_logger("tls")


class TlsListener:
    """One TLS listener's context cache and the CRL it watches."""

    def __init__(self, lst: Listener, context: ssl.SSLContext, cache: Any,
                 crl: Path | None) -> None:
        self.listener = lst
        self.context = context
        self._cache = cache
        self._crl = crl
        self._seen: ssl.SSLContext | None = context

    def poll(self) -> set[int] | None:
        """The serials the CRL revokes when the files changed since the last poll, else None."""
        try:
            current = self._cache.context()
        except (OSError, ssl.SSLError, ValueError) as e:
            log.error("tls_context_reload_failed", listener=self.listener.address,
                      error=type(e).__name__)
            return None
        if current is self._seen:
            return None
        self._seen = current
        return revoked_serials(self._crl)


def revoked_serials(crl: Path | None) -> set[int]:
    """The serial numbers a PEM (or DER) CRL file lists."""
    if crl is None:
        return set()
    from cryptography import x509

    data = crl.read_bytes()
    parsed = (x509.load_pem_x509_crl(data) if data.lstrip().startswith(b"-----")
              else x509.load_der_x509_crl(data))
    return {r.serial_number for r in parsed}


def tls_context(lst: Listener) -> ssl.SSLContext | None:
    """The TLS context of a listener, or None for plain TCP.

    Raises at start-up (not at the first connection) when the files are wrong.
    """
    t = tls_listener(lst)
    return t.context if t is not None else None


def tls_listener(lst: Listener) -> TlsListener | None:
    """The TLS context of a listener and its CRL watch, or None for plain TCP."""
    if not lst.tls:
        return None
    from nlets_switch.server import pki  # TLS is optional; keep start-up light without it

    t = lst.tls
    files = pki.TlsFiles(Path(t["ca"]), Path(t["cert"]), Path(t["key"]),
                         Path(t["crl"]) if t.get("crl") else None)
    cache = pki.ServerContextCache(files, bool(t.get("require_client_cert", True)))
    base = cache.context()

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

    return TlsListener(lst, base, cache, files.crl)


def peer_serial(sslobj: Any) -> int | None:
    """The serial number of a connection's verified client certificate (None: none)."""
    if sslobj is None:
        return None
    try:
        cert = sslobj.getpeercert()
    except (ValueError, ssl.SSLError):
        return None
    serial = cert.get("serialNumber") if cert else None
    return int(serial, 16) if isinstance(serial, str) else None


def peer_oris(sslobj: Any) -> frozenset[str] | None:
    """The ORIs a connection's client certificate names (None: not TLS)."""
    if sslobj is None:
        return None
    from nlets_switch.server import pki

    return frozenset(pki.peer_oris(sslobj))
