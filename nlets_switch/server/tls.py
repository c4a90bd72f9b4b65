"""TLS for links (PROTOCOL part 7): the server and client contexts, and the ORIs
a peer's certificate names.

The listener builds its context with :class:`ServerContextCache`, which
rebuilds it when the CA, the certificate, the key or the CRL changes, so a
``pki revoke`` applies from the next connection; :func:`peer_oris` gives the
ORIs a sign-on may claim. Making the certificates is :mod:`nlets_switch.server.pki`.

A client certificate names its ORI twice: in the subject common name, and
in a subjectAltName URI ``urn:nlets-switch:ori:<ORI>`` (a URI, not a DNS
name, because an ORI is not a host name and a DNS SAN would let a
certificate pass as a server certificate for a host called ``AZNLETS20``).
:func:`ori_of_certificate` reads both. No asyncio, no logging.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID

from nlets_switch.wire.domain import is_ori

__all__ = [
    "ORI_URI_PREFIX",
    "TLS12_CIPHERS",
    "ServerContextCache",
    "ServerTlsFiles",
    "TlsFiles",
    "client_ssl_context",
    "is_revoked",
    "load_crl",
    "ori_of_certificate",
    "peer_oris",
    "server_ssl_context",
]

#: The prefix of the subjectAltName URI that carries an ORI.
ORI_URI_PREFIX: Final = "urn:nlets-switch:ori:"

#: TLS 1.2 cipher suites offered: forward-secret AEAD only (no CBC, no RSA key
#: exchange; issue 11). TLS 1.3's suites are all AEAD and are not set here.
TLS12_CIPHERS: Final = ("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                        "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
                        "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256")


class ServerTlsFiles(Protocol):
    """What :func:`server_ssl_context` needs: both :class:`PkiPaths` and
    :class:`TlsFiles` (built from a listener's ``tls:`` configuration) fit."""

    @property
    def ca(self) -> Path:
        """The CA certificate that client certificates must chain to."""
        ...

    @property
    def cert(self) -> Path:
        """The server certificate (PEM)."""
        ...

    @property
    def key(self) -> Path:
        """The server's private key (PEM)."""
        ...

    @property
    def crl(self) -> Path | None:
        """The CA's CRL (PEM), or None to skip revocation checks."""
        ...


@dataclass(frozen=True)
class TlsFiles:
    """The files of one TLS listener, as its configuration names them."""

    ca: Path
    cert: Path
    key: Path
    crl: Path | None = None


# --------------------------------------------------------------------------
# ORIs in certificates
# --------------------------------------------------------------------------


def ori_of_certificate(cert: x509.Certificate | bytes) -> set[str]:
    """The ORIs a certificate names: its subject CN and its ORI SAN URIs.

    ``cert`` may be a parsed certificate or DER bytes (what
    ``ssl_object.getpeercert(binary_form=True)`` gives). Only well-formed
    ORIs are returned; a certificate that names none gives an empty set. A
    sign-on is acceptable when its ORI is in this set (PROTOCOL part 7).
    """
    if isinstance(cert, bytes):
        cert = x509.load_der_x509_certificate(cert)
    found: set[str] = set()
    for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        if isinstance(attr.value, str) and is_ori(attr.value):
            found.add(attr.value)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return found
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(ORI_URI_PREFIX) and is_ori(uri[len(ORI_URI_PREFIX):]):
            found.add(uri[len(ORI_URI_PREFIX):])
    return found


def peer_oris(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> set[str]:
    """The ORIs of a TLS peer's verified certificate; empty when it sent none.

    In asyncio: ``peer_oris(writer.get_extra_info("ssl_object"))``.
    """
    if ssl_object is None:
        return set()
    der = ssl_object.getpeercert(binary_form=True)
    return ori_of_certificate(der) if der else set()


# --------------------------------------------------------------------------
# Revocation
# --------------------------------------------------------------------------


def load_crl(path: str | os.PathLike[str]) -> x509.CertificateRevocationList:
    """Read a PEM CRL."""
    return x509.load_pem_x509_crl(Path(path).read_bytes())


def is_revoked(crl: x509.CertificateRevocationList, cert: x509.Certificate) -> bool:
    """True if ``crl`` (from ``cert``'s issuer) lists ``cert``'s serial.

    This does not check the CRL's signature or dates; the TLS stack does
    that for handshakes (:func:`server_ssl_context`).
    """
    return (
        crl.issuer == cert.issuer
        and crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    )

# --------------------------------------------------------------------------
# SSL contexts
# --------------------------------------------------------------------------


def server_ssl_context(
    paths: ServerTlsFiles, require_client_cert: bool = True
) -> ssl.SSLContext:
    """A server context: TLS 1.2 (AEAD suites only) or newer, client certificates checked.

    With ``require_client_cert`` a client without a certificate from
    ``paths.ca`` fails the handshake (CERT_REQUIRED); without it a client
    may send none, but one it sends is still verified (CERT_OPTIONAL). When
    ``paths.crl`` is set, the client's certificate is checked against it
    (VERIFY_CRL_CHECK_LEAF): a revoked certificate fails the handshake, and
    so does every certificate once the CRL's next-update has passed.

    The CRL is read once, here. After ``pki revoke`` or ``pki crl``, build
    a new context for new connections (:class:`ServerContextCache` does).
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_cert_chain(certfile=paths.cert, keyfile=paths.key)
    ctx.load_verify_locations(cafile=paths.ca)
    # Python 3.13 turns strict X.509 checks on by default; ask for them now.
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    if paths.crl is not None:
        # A CAfile may hold CRLs too; OpenSSL adds them to the same store.
        ctx.load_verify_locations(cafile=paths.crl)
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_ssl_context(
    ca: str | os.PathLike[str],
    cert: str | os.PathLike[str] | None = None,
    key: str | os.PathLike[str] | None = None,
) -> ssl.SSLContext:
    """A client context: TLS 1.2 or newer, the server verified against ``ca``
    (host name included: connect with ``server_hostname="localhost"`` or a
    name given to ``pki init --host``), presenting ``cert``/``key`` if given."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.load_verify_locations(cafile=ca)
    if cert is not None:
        ctx.load_cert_chain(certfile=cert, keyfile=key)
    return ctx


class ServerContextCache:
    """Gives the current server context, rebuilt when a file has changed.

    ``context()`` costs four ``stat`` calls when nothing changed, so a
    listener can call it for every accepted connection (e.g. with
    ``StreamWriter.start_tls``) and pick up a revocation without a restart.
    """

    def __init__(self, files: ServerTlsFiles, require_client_cert: bool = True) -> None:
        self._files = files
        self._require = require_client_cert
        self._stamp: tuple[tuple[int, int, int], ...] | None = None
        self._ctx: ssl.SSLContext | None = None

    def _current_stamp(self) -> tuple[tuple[int, int, int], ...]:
        f = self._files
        out = []
        for p in (f.ca, f.cert, f.key, f.crl):
            if p is None:
                out.append((0, 0, 0))
            else:
                st = os.stat(p)
                out.append((st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(out)

    def context(self) -> ssl.SSLContext:
        """The context for a new connection."""
        stamp = self._current_stamp()
        if self._ctx is None or stamp != self._stamp:
            self._ctx = server_ssl_context(self._files, self._require)
            self._stamp = stamp
        return self._ctx
