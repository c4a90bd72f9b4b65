"""TLS listeners (PROTOCOL part 7): the context, swapped at each client hello, and
refused handshakes audited.

The listener is created with its SSL context and handshakes from the first
byte. At each client hello an SNI callback swaps in the current context from
a cache that rebuilds it when the CA, certificate, key or CRL file changes,
so ``pki revoke`` applies from the next connection without a restart.
(Upgrading accepted plain connections with ``start_tls`` lost ClientHellos
that arrived before the upgrade: under uvloop most fast clients hung.)
A refused handshake (no certificate, another CA, revoked) is audited by the
SSL object class itself.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nlets_switch.config import Listener
from nlets_switch.log import get_logger

log = get_logger("tls")

#: ``audit(event, subject, outcome, **detail)``, as :meth:`Switch.audit`.
AuditFn = Callable[..., None]


def tls_context(lst: Listener, audit: AuditFn) -> ssl.SSLContext | None:
    """The TLS context of a listener, or None for plain TCP.

    Raises at start-up (not at the first connection) when the files are wrong.
    """
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

    class AuditedSSLObject(ssl.SSLObject):
        """Audits a refused handshake: no certificate, another CA, revoked."""

        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                raise
            except ssl.SSLError as e:
                audit("sign_on", "", "failure", listener=lst.address,
                      reason=f"tls: {e.reason or type(e).__name__}")
                log.info("tls_handshake_failed", listener=lst.address, reason=e.reason)
                raise

    base.sslobject_class = AuditedSSLObject
    return base


def peer_oris(sslobj: Any) -> frozenset[str] | None:
    """The ORIs a connection's client certificate names (None: not TLS)."""
    if sslobj is None:
        return None
    from nlets_switch.server import pki

    return frozenset(pki.peer_oris(sslobj))
