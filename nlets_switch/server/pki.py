"""A small certificate authority for TLS links (PROTOCOL part 7).

``nlets-switch pki`` drives this module; the TLS listener and the tests use
it as a library. One directory holds everything (default
``./nlets-data/pki``, mode 0700)::

    ca.pem  ca.key            the CA (EC P-256, ECDSA with SHA-256)
    server.pem  server.key    the switch's certificate: CN NL0000000,
                              SAN DNS localhost, IP 127.0.0.1, extra --host names
    crl.pem                   the CA's certificate revocation list
    clients/ORI.pem ORI.key   one client certificate per ORI (clientAuth)
    index.json                every serial issued, per ORI, and revocations

This module makes, issues and revokes; :mod:`nlets_switch.server.pki_files`
keeps the directory's files (written atomically, keys 0600) and its index;
:mod:`nlets_switch.server.tls` builds the TLS contexts and reads the ORIs a
certificate names. The names of both that callers use are re-exported here.
ORIs are checked by :func:`nlets_switch.wire.domain.is_ori`; the server
certificate names :data:`~nlets_switch.wire.domain.SWITCH_ORI`.

This module does file I/O and, unless given ``now=``, reads the clock; it
has no asyncio and no logging.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nlets_switch.server.pki_files import (
    DEFAULT_DIR,
    Index,
    IssuedCert,
    PkiError,
    PkiPaths,
    load_index,
    locked,
    make_private_dir,
    pki_paths,
    save_index,
    write_atomic,
    write_cert,
    write_key,
)
from nlets_switch.server.tls import (
    ORI_URI_PREFIX,
    ServerContextCache,
    ServerTlsFiles,
    TlsFiles,
    client_ssl_context,
    is_revoked,
    load_crl,
    ori_of_certificate,
    peer_oris,
    server_ssl_context,
)
from nlets_switch.wire.domain import SWITCH_ORI, is_ori

__all__ = [
    "CA_DAYS",
    "CLIENT_DAYS",
    "CRL_DAYS",
    "DEFAULT_DIR",
    "ORI_URI_PREFIX",
    "SERVER_DAYS",
    "SWITCH_ORI",
    "Index",
    "IssuedCert",
    "PkiError",
    "PkiPaths",
    "ServerContextCache",
    "ServerTlsFiles",
    "TlsFiles",
    "check_ori",
    "client_ssl_context",
    "init_ca",
    "is_ori",
    "is_revoked",
    "issue_client",
    "load_crl",
    "load_index",
    "ori_of_certificate",
    "peer_oris",
    "pki_paths",
    "revoke",
    "server_ssl_context",
    "write_crl",
]

#: Validity defaults, in days. The server and client terms stay under 398
#: days, the limit browsers and many TLS stacks hold leaf certificates to.
CA_DAYS: Final = 3650
SERVER_DAYS: Final = 397
CLIENT_DAYS: Final = 365
#: The CRL's next-update, in days. OpenSSL refuses every client certificate
#: once the CRL has expired, so ``pki crl`` must run again before then.
CRL_DAYS: Final = 30

# Certificates and CRLs start a few minutes in the past, so a peer whose
# clock is slightly behind ours does not refuse them as "not yet valid".
_BACKDATE: Final = dt.timedelta(minutes=5)


def check_ori(ori: str) -> str:
    """Return ``ori`` if it is well formed, else raise :class:`PkiError`.

    Lower-case letters are refused rather than folded, so that the ORI in the
    certificate is exactly the one the operator typed and will sign on with.
    """
    if is_ori(ori):
        return ori
    hint = ""
    if is_ori(ori.upper()):
        hint = f" (ORIs are upper case: {ori.upper()})"
    elif len(ori) != 9:
        hint = f" (it has {len(ori)} characters)"
    elif not ori[:2].isalpha():
        hint = " (the first two characters must be a state code, such as AZ)"
    raise PkiError(
        f"malformed ORI {ori!r}{hint}: an ORI is 9 characters, a 2-letter state "
        "code then 7 upper-case letters or digits, such as AZNLETS20"
    )


# --------------------------------------------------------------------------
# The CA
# --------------------------------------------------------------------------


def _now(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(dt.UTC)


def _load_ca(paths: PkiPaths) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    try:
        cert = x509.load_pem_x509_certificate(paths.ca.read_bytes())
        key = serialization.load_pem_private_key(paths.ca_key.read_bytes(), password=None)
    except FileNotFoundError as exc:
        raise PkiError(
            f"no CA in {paths.dir} ({exc.filename} is missing): "
            f"run `nlets-switch pki init --dir {paths.dir}` first"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise PkiError(f"{paths.ca_key}: expected an EC private key")
    return cert, key


def _new_key() -> ec.EllipticCurvePrivateKey:
    # P-256: small, fast to make (the tests make many), and what every TLS
    # 1.2 and 1.3 stack, openssl s_client included, speaks.
    return ec.generate_private_key(ec.SECP256R1())


def _leaf(
    *,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    san: Iterable[x509.GeneralName],
    eku: x509.ObjectIdentifier,
    now: dt.datetime,
    days: int,
) -> x509.Certificate:
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        .add_extension(x509.SubjectAlternativeName(list(san)), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )


def _host_name(host: str) -> x509.GeneralName:
    """An IP address SAN for an address, a DNS SAN for anything else."""
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        return x509.DNSName(host.encode("idna").decode("ascii"))
    except UnicodeError as exc:
        raise PkiError(f"--host {host!r} is neither an IP address nor a DNS name") from exc


def _issue_server(
    paths: PkiPaths,
    index: Index,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    hosts: Iterable[str],
    now: dt.datetime,
    days: int,
) -> None:
    names: list[x509.GeneralName] = []
    for host in ("localhost", "127.0.0.1", *hosts):
        name = _host_name(host)
        if name not in names:
            names.append(name)
    names.append(x509.UniformResourceIdentifier(ORI_URI_PREFIX + SWITCH_ORI))
    key = _new_key()
    cert = _leaf(
        subject=x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, SWITCH_ORI),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nlets-switch"),
        ]),
        key=key, ca_cert=ca_cert, ca_key=ca_key, san=names,
        eku=ExtendedKeyUsageOID.SERVER_AUTH, now=now, days=days,
    )
    write_key(paths.key, key)
    write_cert(paths.cert, cert)
    index.add(IssuedCert(cert.serial_number, SWITCH_ORI, "server",
                         cert.not_valid_before_utc, cert.not_valid_after_utc))


def init_ca(
    directory: str | os.PathLike[str] = DEFAULT_DIR,
    hosts: Iterable[str] = (),
    *,
    force: bool = False,
    server_days: int = SERVER_DAYS,
    ca_days: int = CA_DAYS,
    now: dt.datetime | None = None,
) -> PkiPaths:
    """Make a CA, an empty CRL and the switch's server certificate.

    The server certificate has CN ``NL0000000`` and SANs ``localhost``,
    ``127.0.0.1`` and every name in ``hosts`` (IP addresses become IP SANs,
    the rest DNS SANs). Refuses (:class:`PkiError`) when a CA exists, unless
    ``force``: then the old CA, its index and the client certificates it
    issued are replaced, since none of them would verify any more.
    """
    paths = pki_paths(directory)
    if paths.ca.exists() and not force:
        raise PkiError(
            f"a CA already exists in {paths.dir} ({paths.ca}); add --force to replace it "
            "(every certificate it issued stops working)"
        )
    if min(server_days, ca_days) < 1:
        raise PkiError("validity must be at least 1 day")
    at = _now(now)
    make_private_dir(paths.dir)
    with locked(paths):
        if force:
            for entries in load_index(paths.dir).certs.values():
                for entry in entries:
                    if entry.kind == "client":
                        for p in paths.client(entry.ori):
                            p.unlink(missing_ok=True)
        key = _new_key()
        name = x509.Name([
            x509.NameAttribute(NameOID.COMMON_NAME, "nlets-switch demo CA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nlets-switch"),
        ])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(at - _BACKDATE)
            .not_valid_after(at + dt.timedelta(days=ca_days))
            # path_length=0: this CA signs leaves only, never another CA.
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True,
                    crl_sign=True, encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        # Key first: a ca.pem without its key would block `init` for nothing.
        write_key(paths.ca_key, key)
        write_cert(paths.ca, ca_cert)
        index = Index()
        _issue_server(paths, index, ca_cert, key, hosts, at, server_days)
        _write_crl_locked(paths, index, ca_cert, key, at, CRL_DAYS)
        save_index(paths, index)
    return paths


def issue_client(
    directory: str | os.PathLike[str],
    ori: str,
    days: int = CLIENT_DAYS,
    *,
    now: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """Issue a client certificate for ``ori``; returns (certificate, key) paths.

    Subject CN = ``ori``, SAN URI ``urn:nlets-switch:ori:<ori>``, EKU
    clientAuth, valid ``days`` days. Issuing again for the same ORI replaces
    the files; the older certificate stays valid until it expires or is
    revoked by serial (:func:`revoke` with ``serial=``).
    """
    check_ori(ori)
    if ori == SWITCH_ORI:
        raise PkiError(f"{SWITCH_ORI} is the switch's own ORI; no endpoint may hold it")
    if days < 1:
        raise PkiError("--days must be at least 1")
    paths = pki_paths(directory)
    at = _now(now)
    ca_cert, ca_key = _load_ca(paths)
    with locked(paths):
        index = load_index(paths.dir)
        key = _new_key()
        cert = _leaf(
            subject=x509.Name([
                x509.NameAttribute(NameOID.COMMON_NAME, ori),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "nlets-switch"),
            ]),
            key=key, ca_cert=ca_cert, ca_key=ca_key,
            san=[x509.UniformResourceIdentifier(ORI_URI_PREFIX + ori)],
            eku=ExtendedKeyUsageOID.CLIENT_AUTH, now=at, days=days,
        )
        make_private_dir(paths.clients)
        cert_path, key_path = paths.client(ori)
        write_key(key_path, key)
        write_cert(cert_path, cert)
        index.add(IssuedCert(cert.serial_number, ori, "client",
                             cert.not_valid_before_utc, cert.not_valid_after_utc))
        save_index(paths, index)
    return cert_path, key_path


def revoke(
    directory: str | os.PathLike[str],
    ori: str,
    *,
    serial: int | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Revoke ``ori``'s current certificate and re-issue the CRL; returns its serial.

    The current certificate is the newest one issued for ``ori`` that is not
    revoked yet; ``serial`` picks another one of that ORI's certificates.
    """
    check_ori(ori)
    paths = pki_paths(directory)
    at = _now(now)
    ca_cert, ca_key = _load_ca(paths)
    with locked(paths):
        index = load_index(paths.dir)
        entries = index.certs.get(ori, [])
        if serial is not None:
            chosen = [c for c in entries if c.serial == serial]
            if not chosen:
                raise PkiError(f"no certificate with serial {serial:X} was issued to {ori}")
            if chosen[0].revoked_at:
                raise PkiError(f"serial {serial:X} of {ori} is already revoked")
        else:
            chosen = [c for c in entries if not c.revoked_at][-1:]
            if not chosen:
                what = "every certificate of it is already revoked" if entries else (
                    "no certificate was issued to it")
                raise PkiError(f"nothing to revoke for {ori}: {what}")
        entry = chosen[0]
        entry.revoked_at = at
        _write_crl_locked(paths, index, ca_cert, ca_key, at, CRL_DAYS)
        save_index(paths, index)
    return entry.serial


def write_crl(
    directory: str | os.PathLike[str] = DEFAULT_DIR,
    *,
    days: int = CRL_DAYS,
    now: dt.datetime | None = None,
) -> Path:
    """Issue the CRL again (a new number, next-update ``days`` from now)."""
    if days < 1:
        raise PkiError("the CRL must be valid for at least 1 day")
    paths = pki_paths(directory)
    at = _now(now)
    ca_cert, ca_key = _load_ca(paths)
    with locked(paths):
        index = load_index(paths.dir)
        _write_crl_locked(paths, index, ca_cert, ca_key, at, days)
        save_index(paths, index)
    return paths.crl


def _write_crl_locked(
    paths: PkiPaths,
    index: Index,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    now: dt.datetime,
    days: int,
) -> None:
    index.crl_number += 1
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - _BACKDATE)
        .next_update(now + dt.timedelta(days=days))
        .add_extension(x509.CRLNumber(index.crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
    )
    for entry in index.revoked():
        assert entry.revoked_at is not None
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(entry.serial)
            .revocation_date(entry.revoked_at)
            .build()
        )
    crl = builder.sign(ca_key, hashes.SHA256())
    write_atomic(paths.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)
