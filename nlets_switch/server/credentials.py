"""Sign-on credentials: stored only as a salted scrypt hash, compared in constant time.

The stored form is ``scrypt$N$r$p$<salt b64>$<hash b64>``; ``nlets-switch
hash-credential`` prints it for a configuration file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

_N, _R, _P = 2**14, 8, 1
_DKLEN = 32


def hash_credential(secret: str, *, salt: bytes | None = None, n: int = _N) -> str:
    """The stored form of ``secret``."""
    salt = salt if salt is not None else os.urandom(16)
    dk = hashlib.scrypt(secret.encode(), salt=salt, n=n, r=_R, p=_P, dklen=_DKLEN)
    b64 = base64.b64encode
    return f"scrypt${n}${_R}${_P}${b64(salt).decode()}${b64(dk).decode()}"


def verify_credential(secret: str, stored: str) -> bool:
    """Whether ``secret`` matches the stored hash (constant-time comparison)."""
    try:
        tag, n_s, r_s, p_s, salt_s, dk_s = stored.split("$")
        if tag != "scrypt":
            return False
        salt = base64.b64decode(salt_s)
        want = base64.b64decode(dk_s)
        got = hashlib.scrypt(secret.encode(), salt=salt, n=int(n_s), r=int(r_s), p=int(p_s),
                             dklen=len(want), maxmem=2**27)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)
