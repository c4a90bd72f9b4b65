"""The files of a PKI directory: their paths, the index of issued certificates,
and writing keys and certificates safely.

Every private key is written with mode 0600; every file is written to a
temporary name in the same directory, flushed to disk and renamed, so a
crash never leaves half a key or half a CRL behind. Used by
:mod:`nlets_switch.server.pki`, which re-exports what callers need.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from nlets_switch.errors import NletsError

__all__ = [
    "DEFAULT_DIR",
    "Index",
    "IssuedCert",
    "PkiError",
    "PkiPaths",
    "load_index",
    "locked",
    "make_private_dir",
    "pki_paths",
    "save_index",
    "write_atomic",
    "write_cert",
    "write_key",
]

#: Where ``nlets-switch pki`` keeps its files unless told ``--dir``.
DEFAULT_DIR: Final = Path("nlets-data") / "pki"

_INDEX_VERSION: Final = 1


class PkiError(NletsError):
    """A PKI command that cannot be done; the message says why and what to do."""


# --------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------


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
# Files
# --------------------------------------------------------------------------


def make_private_dir(path: Path) -> None:
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


def write_atomic(path: Path, data: bytes, mode: int) -> None:
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


def write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomic(path, pem, 0o600)


def write_cert(path: Path, cert: x509.Certificate) -> None:
    write_atomic(path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


@contextlib.contextmanager
def locked(paths: PkiPaths) -> Iterator[None]:
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


def save_index(paths: PkiPaths, index: Index) -> None:
    text = json.dumps(index.to_json(), indent=2) + "\n"
    write_atomic(paths.index, text.encode("utf-8"), 0o644)
