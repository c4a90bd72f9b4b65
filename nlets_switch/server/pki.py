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

Every private key is written with mode 0600; every file is written to a
temporary name in the same directory, flushed to disk and renamed, so a
crash never leaves half a key or half a CRL behind.

A client certificate names its ORI twice: in the subject common name, and
in a subjectAltName URI ``urn:nlets-switch:ori:<ORI>`` (a URI, not a DNS
name, because an ORI is not a host name and a DNS SAN would let a
certificate pass as a server certificate for a host called ``AZNLETS20``).
:func:`ori_of_certificate` reads both.

This module does file I/O and, unless given ``now=``, reads the clock; it
has no asyncio and no logging.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import ipaddress
import json
import os
import re
import ssl
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nlets_switch.errors import NletsError

#: Where ``nlets-switch pki`` keeps its files unless told ``--dir``.
DEFAULT_DIR: Final = Path("nlets-data") / "pki"

#: The switch's own ORI (PROTOCOL part 4): the server certificate's CN.
SWITCH_ORI: Final = "NL0000000"

#: The prefix of the subjectAltName URI that carries an ORI.
ORI_URI_PREFIX: Final = "urn:nlets-switch:ori:"

#: Validity defaults, in days. The server and client terms stay under 398
#: days, the limit browsers and many TLS stacks hold leaf certificates to.
CA_DAYS: Final = 3650
SERVER_DAYS: Final = 397
CLIENT_DAYS: Final = 365
#: The CRL's next-update, in days. OpenSSL refuses every client certificate
#: once the CRL has expired, so ``pki crl`` must run again before then.
CRL_DAYS: Final = 30

# PROTOCOL part 2: 2-letter state, province or territory code, then 7
# letters or digits.
_ORI = re.compile(r"[A-Z]{2}[A-Z0-9]{7}")

# Certificates and CRLs start a few minutes in the past, so a peer whose
# clock is slightly behind ours does not refuse them as "not yet valid".
_BACKDATE: Final = dt.timedelta(minutes=5)

_INDEX_VERSION: Final = 1


class PkiError(NletsError):
    """A PKI command that cannot be done; the message says why and what to do."""


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


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


@dataclass(frozen=True)
class PkiPaths:
    """Every file of one PKI directory; ``cert``/``key`` are the server's."""

    dir: Path
    ca: Path
    ca_key: Path
    cert: Path
    key: Path
    crl: Path
    index: Path
    clients: Path

    def client(self, ori: str) -> tuple[Path, Path]:
        """The certificate and key paths of ``ori``'s client certificate."""
        return self.clients / f"{ori}.pem", self.clients / f"{ori}.key"


def pki_paths(directory: str | os.PathLike[str]) -> PkiPaths:
    """The paths of a PKI directory, whether or not the files exist yet."""
    d = Path(directory)
    return PkiPaths(
        dir=d,
        ca=d / "ca.pem",
        ca_key=d / "ca.key",
        cert=d / "server.pem",
        key=d / "server.key",
        crl=d / "crl.pem",
        index=d / "index.json",
        clients=d / "clients",
    )


# --------------------------------------------------------------------------
# ORIs
# --------------------------------------------------------------------------


def is_ori(text: str) -> bool:
    """True for a well-formed ORI: ``AZNLETS20`` (PROTOCOL part 2)."""
    return _ORI.fullmatch(text) is not None


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
# Files
# --------------------------------------------------------------------------


def _make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with mode 0700 if it does not exist.

    A directory that already exists keeps its mode: the operator may have
    chosen it, and the keys inside are 0600 whatever the directory allows.
    """
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.mkdir(mode=0o700)
    # mkdir's mode is filtered by the umask; say it explicitly.
    path.chmod(0o700)


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with ``mode``: temp file, fsync, rename.

    The temporary file is created with ``mode`` from the start (mkstemp
    creates it 0600), so a key is never readable by others, not even for
    a moment.
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # The rename is durable only once the directory is flushed too.
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_atomic(path, pem, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    _write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


@contextlib.contextmanager
def _locked(paths: PkiPaths) -> Iterator[None]:
    """Hold an exclusive lock on the PKI directory: two ``pki`` commands at
    once must not both read the index and each write their own version."""
    fd = os.open(paths.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# The index
# --------------------------------------------------------------------------


@dataclass
class IssuedCert:
    """One certificate in the index."""

    serial: int
    ori: str
    kind: str  # "server" or "client"
    not_before: dt.datetime
    not_after: dt.datetime
    revoked_at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The index entry; the serial is upper-case hex, as ``openssl x509 -serial``."""
        return {
            "serial": f"{self.serial:X}",
            "kind": self.kind,
            "not_before": self.not_before.isoformat(),
            "not_after": self.not_after.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }

    @classmethod
    def from_json(cls, ori: str, data: dict[str, Any]) -> IssuedCert:
        """Read an entry written by :meth:`to_json`."""
        revoked = data.get("revoked_at")
        return cls(
            serial=int(data["serial"], 16),
            ori=ori,
            kind=str(data["kind"]),
            not_before=dt.datetime.fromisoformat(data["not_before"]),
            not_after=dt.datetime.fromisoformat(data["not_after"]),
            revoked_at=dt.datetime.fromisoformat(revoked) if revoked else None,
        )


@dataclass
class Index:
    """``index.json``: the serials issued per ORI, and the last CRL number."""

    crl_number: int = 0
    certs: dict[str, list[IssuedCert]] = field(default_factory=dict)

    def add(self, entry: IssuedCert) -> None:
        """Record a newly issued certificate."""
        self.certs.setdefault(entry.ori, []).append(entry)

    def revoked(self) -> list[IssuedCert]:
        """Every revoked certificate, oldest revocation first."""
        out = [c for entries in self.certs.values() for c in entries if c.revoked_at]
        return sorted(out, key=lambda c: (c.revoked_at, c.serial))

    def to_json(self) -> dict[str, Any]:
        """The whole file's content."""
        return {
            "version": _INDEX_VERSION,
            "crl_number": self.crl_number,
            "certificates": {
                ori: [c.to_json() for c in entries] for ori, entries in sorted(self.certs.items())
            },
        }


def load_index(directory: str | os.PathLike[str]) -> Index:
    """Read a PKI directory's ``index.json`` (an empty index if there is none)."""
    path = pki_paths(directory).index
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Index()
    except (OSError, ValueError) as exc:
        raise PkiError(f"cannot read {path}: {exc}") from exc
    if data.get("version") != _INDEX_VERSION:
        raise PkiError(f"{path}: unknown index version {data.get('version')!r}")
    index = Index(crl_number=int(data.get("crl_number", 0)))
    for ori, entries in data.get("certificates", {}).items():
        for entry in entries:
            index.add(IssuedCert.from_json(ori, entry))
    return index


def _save_index(paths: PkiPaths, index: Index) -> None:
    text = json.dumps(index.to_json(), indent=2) + "\n"
    _write_atomic(paths.index, text.encode("utf-8"), 0o644)


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
    _write_key(paths.key, key)
    _write_cert(paths.cert, cert)
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
    _make_private_dir(paths.dir)
    with _locked(paths):
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
        _write_key(paths.ca_key, key)
        _write_cert(paths.ca, ca_cert)
        index = Index()
        _issue_server(paths, index, ca_cert, key, hosts, at, server_days)
        _write_crl_locked(paths, index, ca_cert, key, at, CRL_DAYS)
        _save_index(paths, index)
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
    with _locked(paths):
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
        _make_private_dir(paths.clients)
        cert_path, key_path = paths.client(ori)
        _write_key(key_path, key)
        _write_cert(cert_path, cert)
        index.add(IssuedCert(cert.serial_number, ori, "client",
                             cert.not_valid_before_utc, cert.not_valid_after_utc))
        _save_index(paths, index)
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
    with _locked(paths):
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
        _save_index(paths, index)
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
    with _locked(paths):
        index = load_index(paths.dir)
        _write_crl_locked(paths, index, ca_cert, ca_key, at, days)
        _save_index(paths, index)
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
    _write_atomic(paths.crl, crl.public_bytes(serialization.Encoding.PEM), 0o644)


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
    """A server context: TLS 1.2 or newer, client certificates checked.

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
