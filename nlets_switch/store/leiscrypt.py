"""DHS LEIS person data at rest: sealed records and a keyed blind index (issue 11).

CJIS Security Policy 5.10.1.2: the names, dates of birth, identifiers,
addresses and contacts of the LEIS data set are criminal-justice
information, so ``leis.sqlite`` holds none of them in clear:

* each person's record is one AES-256-GCM blob, with ``leis-person:<row id>``
  as associated data (a blob moved onto another row does not open), under a
  key of the same keyring as message text (:mod:`nlets_switch.store.keys`,
  outside the data directory); the row carries the key id, so ``keys
  rotate`` seals new rows under the new key and old rows keep opening;
* searches find candidate rows through a **blind index**: for each search
  key the service uses (phonetic codes and spelling of last names, dates of
  birth, identifiers, address words, the DIN) the row lists
  ``HMAC-SHA256(index key, field NUL value)`` truncated to 16 bytes, never the
  value; the service decrypts the candidates and applies its own rules.

Keys, all by HKDF-SHA256 with a label of their own, so that no AES key
here is a message-text key:

* record key of key id *n*: from keyring key *n*, label ``RECORD``;
* nonce key of key id *n*: from keyring key *n*, label ``NONCE``. The nonce
  of a record is ``HMAC(nonce key, associated data | record)`` truncated to 12
  bytes (deterministic, as SIV: the same record on the same row under the
  same key gives the same blob, so the same seed builds the same file; two
  different records share a nonce only by a 96-bit collision, the bound
  random nonces have too);
* index key: from the keyring's **first** key (the lowest id), label
  ``INDEX``. Rotation adds keys and never removes one, so the index key, and
  with it every tag in the file, stays the same across ``keys rotate``:
  nothing is re-indexed. :meth:`LeisCipher.fingerprint` (an HMAC of a
  constant) is kept in the file's meta table to tell a wrong keyring from a
  damaged file.

No logging, no asyncio.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from nlets_switch.store.keys import Keyring

__all__ = ["TAG_BYTES", "LeisCipher", "LeisKeyError"]

#: Blind-index tags: HMAC-SHA256 truncated to 128 bits.
TAG_BYTES: Final = 16
_NONCE: Final = 12
_RECORD_INFO: Final = b"nlets-switch/leis/record/v1"
_NONCE_INFO: Final = b"nlets-switch/leis/nonce/v1"
_INDEX_INFO: Final = b"nlets-switch/leis/index/v1"
_FINGERPRINT: Final = b"nlets-switch/leis/fingerprint/v1"


class LeisKeyError(ValueError):
    """The LEIS data cannot be opened with this keyring; the message is one line."""


def _derive(key: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(key)


class LeisCipher:
    """The keys of the LEIS data derived from one keyring: seal, open, tag."""

    __slots__ = ("_aead", "_index", "_mac", "_nonce", "current", "ring")

    def __init__(self, ring: Keyring) -> None:
        """Derive every key from ``ring`` (new records go under ``ring.current``)."""
        self.ring = ring
        self.current = ring.current
        self._aead = {kid: AESGCM(_derive(k, _RECORD_INFO)) for kid, k in ring.keys.items()}
        self._nonce = {kid: _derive(k, _NONCE_INFO) for kid, k in ring.keys.items()}
        self._index = _derive(ring.keys[min(ring.keys)], _INDEX_INFO)
        # Keyed once; each tag copies it (a third cheaper than hmac.digest).
        self._mac = hmac.new(self._index, digestmod=hashlib.sha256)

    def fingerprint(self) -> str:
        """16 hex digits that tell this keyring's index key from another's."""
        return hmac.digest(self._index, _FINGERPRINT, "sha256")[:8].hex()

    def tag(self, field: str, value: str) -> bytes:
        """The blind-index tag of one search key (``field`` names what ``value`` is)."""
        mac = self._mac.copy()
        mac.update(f"{field}\x00{value}".encode())
        return mac.digest()[:TAG_BYTES]

    def tags(self, terms: Iterable[tuple[str, str]]) -> set[bytes]:
        """The tags of several search keys, without repeats."""
        return {self.tag(field, value) for field, value in terms}

    def seal(self, row_id: int, record: bytes) -> tuple[int, bytes]:
        """``(key id, nonce | ciphertext and tag)`` of ``record`` stored on row ``row_id``."""
        aad = b"leis-person:%d" % row_id
        nonce = hmac.digest(self._nonce[self.current], aad + b"\x00" + record,
                            "sha256")[:_NONCE]
        return self.current, nonce + self._aead[self.current].encrypt(nonce, record, aad)

    def open(self, row_id: int, kid: int, blob: bytes) -> bytes:
        """The record on row ``row_id``; :class:`LeisKeyError` when it does not open."""
        aead = self._aead.get(kid)
        if aead is None:
            raise LeisKeyError(f"LEIS person row {row_id} is sealed under text key {kid}, "
                               f"which is not in the keyring {self.ring.path}")
        try:
            return aead.decrypt(blob[:_NONCE], blob[_NONCE:], b"leis-person:%d" % row_id)
        except InvalidTag:
            raise LeisKeyError(f"LEIS person row {row_id} does not open: changed, moved "
                               "from another row, or sealed under another keyring") from None
