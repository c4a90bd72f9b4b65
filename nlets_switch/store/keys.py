"""Keys kept outside the data directory (issue 11; CJIS Security Policy 5.10.1.2).

Whoever can read the data directory must not also hold what decrypts it or
what vouches for its audit trail. So the switch's secrets live in a *key
directory*, by default ``$XDG_CONFIG_HOME/nlets-switch/`` (else
``~/.config/nlets-switch/``), mode 0700, every file 0600:

* ``text.keys``: the keyring of message text at rest (AES-256-GCM), one key
  per line, ``ID HEX``; the last line is the key new rows are sealed with,
  older lines still open older rows (rotation adds a line, rewrites nothing);
* ``audit.key``: the HMAC key of the audit chain (:mod:`nlets_switch.ops.audit`);
* ``audit-signing.key``: the Ed25519 key that signs checkpoints of the chain
  (:mod:`nlets_switch.ops.checkpoint`), and ``audit-signing.pub`` beside it;
* ``checkpoints/``: the signed checkpoints, one file per data directory.

:func:`private_dir` and :func:`write_secret` make directories 0700 and files
0600 whatever the umask. No asyncio, no logging.
"""

from __future__ import annotations

import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["KEY_BYTES", "Keyring", "key_dir", "load_keyring", "private_dir", "private_tree",
           "rotate_keyring", "write_secret"]

#: AES-256: 32-byte keys.
KEY_BYTES: Final = 32
#: The keyring's file name in the key directory.
TEXT_KEYS: Final = "text.keys"


def key_dir() -> Path:
    """``$XDG_CONFIG_HOME/nlets-switch`` (else ``~/.config/nlets-switch``)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nlets-switch"


def private_dir(path: Path) -> Path:
    """Make ``path`` (and missing parents) and set it to 0700; returns it."""
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    return path


def private_tree(path: Path) -> Path:
    """The data directory: made if missing, 0700, and everything in it the owner's
    alone (directories 0700, files 0600), whatever the umask was when they were made."""
    private_dir(path)
    for root, dirs, files in os.walk(path):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o700)
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                os.chmod(p, 0o600)
    return path


def write_secret(path: Path, data: bytes, replace: bool = False) -> bool:
    """Write ``data`` to a new file of mode 0600 (whatever the umask).

    Without ``replace``, an existing file is left alone and False is returned
    (another process made it first). With ``replace``, the new content goes
    to a temporary file that is renamed over the old one. Either way the file
    appears whole: it is written under a temporary name first, so a process
    that lost the race to make it never reads it half written.
    """
    if not path.parent.exists():
        private_dir(path.parent)
    target = path.with_name(path.name + f".tmp{os.getpid()}.{threading.get_ident()}")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if replace:
            os.replace(target, path)
            return True
        try:
            os.link(target, path)  # atomic, and refused when the file exists
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links: made in place
            return _write_new(path, data)
        return True
    finally:
        target.unlink(missing_ok=True)


def _write_new(path: Path, data: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return True


@dataclass(frozen=True, slots=True)
class Keyring:
    """The text keys by id; ``current`` seals new rows."""

    keys: dict[int, bytes]
    current: int
    path: Path

    @property
    def key(self) -> bytes:
        """The current key."""
        return self.keys[self.current]


def _parse(path: Path, text: str) -> Keyring:
    keys: dict[int, bytes] = {}
    current = 0
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        kid_s, _, hexkey = line.partition(" ")
        try:
            kid, key = int(kid_s), bytes.fromhex(hexkey.strip())
        except ValueError:
            raise ValueError(f"{path}: line {n} is not 'ID HEX'") from None
        if len(key) != KEY_BYTES or not 0 < kid < 2**16:
            raise ValueError(f"{path}: line {n}: expected an id 1-65535 and a 32-byte key")
        keys[kid] = key
        current = kid
    if not keys:
        raise ValueError(f"{path}: holds no key")
    return Keyring(keys, current, path)


def _line(kid: int) -> bytes:
    return f"{kid} {secrets.token_bytes(KEY_BYTES).hex()}\n".encode()


def load_keyring(path: Path, create: bool = True) -> tuple[Keyring, bool]:
    """The keyring at ``path``; made (one key, id 1) when missing and ``create``.

    Returns it and whether it was made now. Raises FileNotFoundError when it is
    missing and not ``create``, ValueError when it cannot be read as a keyring.
    """
    made = False
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"{path} does not exist")
        made = write_secret(path, b"# nlets-switch text keys: ID HEX (the last one seals)\n"
                            + _line(1))
    return _parse(path, path.read_text()), made


def rotate_keyring(path: Path) -> Keyring:
    """Add a new key (the next id) and make it current; old rows keep their key."""
    ring, _ = load_keyring(path, create=False)
    text = path.read_bytes()
    if not text.endswith(b"\n"):
        text += b"\n"
    write_secret(path, text + _line(max(ring.keys) + 1), replace=True)
    return _parse(path, path.read_text())
