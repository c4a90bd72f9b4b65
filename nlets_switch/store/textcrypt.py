"""Message text at rest, encrypted (issue 11; CJIS Security Policy 5.10.1.2).

The journal keeps each message's text sealed with AES-256-GCM, as text::

    "\x1bNS1:" base64( key id (2 bytes, big-endian) | nonce (12 bytes) | ciphertext and tag )

(text, not a blob, so the column keeps its type and ``journal recover`` still
tells the tables' rows apart; the escape character never occurs in a
message, which is printable ASCII, CR and LF only)
under a key of the keyring (:mod:`nlets_switch.store.keys`, outside the data
directory), with the message id as associated data, so a blob moved onto
another row does not open. Rows written before encryption (or with
``security.encrypt_text: false``) hold the text as ``TEXT`` and are read as
they are; rotating the keyring adds a key, and rows sealed under older ids
keep opening with them.

Sealing happens where the rows are written (the journal's writer), opening
where they are read, both through this module's process-wide cipher, set
once (:func:`configure`): by ``serve`` and the tools from the configuration,
and by a writer process from :data:`ENV` (the keyring's path, inherited).
SQL sees these functions on every journal connection (:func:`install`):
``ns_open(text, id)`` gives the clear text, ``ns_seal(text, id)`` the stored
value, ``ns_words(text)`` the word index's entry for a clear text.

The word index (the message log's text search) never holds a clear word:
each distinct word of a message (a run of letters and digits, case folded)
is kept as a *blind token*, the first 8 bytes of HMAC-SHA256 of the word
under an index key derived from the text key that sealed the row, in hex
(:func:`word_tokens`). A query is tokenized the same way under every key of
the keyring (:func:`query_terms`) and matches the rows that hold all its
words. Tokens show which rows share a word, never the word; that is the
price of searching without decrypting every row (docs/records.md).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import sqlite3
import struct
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from nlets_switch.store.keys import Keyring, load_keyring

__all__ = ["ENV", "MAGIC", "TOKEN_CHARS", "configure", "configure_for", "configure_from_env",
           "current", "data_keyring", "install", "is_sealed", "keyring_path", "open_or_note",
           "open_text", "query_terms", "seal_text", "stored_tokens", "word_tokens", "words"]

MAGIC: Final = "\x1bNS1:"
#: The environment variable naming the keyring for a writer process.
ENV: Final = "NLETS_SWITCH_TEXT_KEYS"
_HEAD: Final = struct.Struct(">H12s")
_NONCE: Final = 12
#: A word of the word index: a run of letters and digits, case folded.
_WORD: Final = re.compile(r"[a-z0-9]+")
#: Bytes of HMAC-SHA256 kept per token (64 bits: collisions are negligible at any
#: log's size, and a query still matches exactly what holds the word).
_TOKEN_BYTES: Final = 8
#: Characters in a token: its bytes in hex, written with the letters a-p instead of
#: 0-9a-f, so that no token can ever read as a date of birth, a number or any other
#: field value of clear text (a scan of the journal for clear CJI finds none by chance).
TOKEN_CHARS: Final = 2 * _TOKEN_BYTES
_HEX_AS_LETTERS: Final = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
#: Derives a text key's index key (never the text key itself, so a token is no
#: help against the seal).
_INDEX_LABEL: Final = b"nlets-switch word index v1"
#: The index key when no keyring is in use (encrypt_text off: the text is in clear
#: beside it anyway, so its tokens keep nothing secret either).
_UNKEYED: Final = b"nlets-switch word index, unkeyed"


class _Cipher:
    """The keyring's AES-GCM objects and word-index keys, by key id."""

    __slots__ = ("aead", "current", "index", "ring", "tokenizers")

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self.current = ring.current
        self.aead = {kid: AESGCM(k) for kid, k in ring.keys.items()}
        self.index = {kid: hmac.digest(k, _INDEX_LABEL, "sha256")
                      for kid, k in ring.keys.items()}
        self.tokenizers = {kid: _Tokenizer(k) for kid, k in self.index.items()}


_cipher: _Cipher | None = None
#: The keyring ``security.text_key_file`` named (:func:`configure_for`), even
#: when message text is not sealed.
_named: Path | None = None


def configure(ring: Keyring | None) -> None:
    """Seal new rows under ``ring``'s current key (None: store text as it is), and
    open rows under any of its keys. Also sets :data:`ENV` for child processes."""
    global _cipher
    _cipher = _Cipher(ring) if ring is not None else None
    if ring is not None:
        os.environ[ENV] = str(ring.path)
    else:
        os.environ.pop(ENV, None)


def configure_from_env() -> None:
    """In a writer process: the keyring its parent named in :data:`ENV` (if any)."""
    path = os.environ.get(ENV)
    if path:
        ring, _ = load_keyring(Path(path), create=False)
        configure(ring)


def current() -> Keyring | None:
    """The keyring in use, or None when text is stored as it is."""
    return _cipher.ring if _cipher is not None else None


def seal_text(text: str, msg_id: int) -> str:
    """The stored form of ``text`` of message ``msg_id`` (itself when not encrypting)."""
    c = _cipher
    if c is None or text.startswith(MAGIC):  # never sealed twice
        return text
    nonce = os.urandom(_NONCE)
    ct = c.aead[c.current].encrypt(nonce, text.encode(), b"%d" % msg_id)
    return MAGIC + base64.b64encode(_HEAD.pack(c.current, nonce) + ct).decode("ascii")


def is_sealed(value: Any) -> bool:
    """Whether a stored value is sealed text."""
    return isinstance(value, str) and value.startswith(MAGIC)


def open_text(value: Any, msg_id: int) -> str:
    """The clear text of a stored value; raises ValueError when it cannot be opened."""
    if not isinstance(value, str):
        raise ValueError("not a message text")
    if not value.startswith(MAGIC):
        return value  # stored before encryption, or with it off
    try:
        raw = base64.b64decode(value[len(MAGIC):], validate=True)
        kid, nonce = _HEAD.unpack_from(raw)
    except (binascii.Error, struct.error):
        raise ValueError(f"message {msg_id}: its sealed text is damaged") from None
    c = _cipher
    if c is None or kid not in c.aead:
        raise ValueError(f"message {msg_id}: sealed under text key {kid}, which is not in "
                         "the keyring (security.text_key_file)")
    try:
        return c.aead[kid].decrypt(nonce, raw[_HEAD.size:], b"%d" % msg_id).decode()
    except InvalidTag:
        raise ValueError(f"message {msg_id}: its sealed text does not open "
                         "(changed, or moved from another row)") from None


def open_or_note(value: Any, msg_id: Any) -> str:
    """:func:`open_text`, or a one-line note saying why the text does not open (a
    listing does not stop at such a row; the note names the key it needs)."""
    try:
        return open_text(value, int(msg_id))
    except (ValueError, TypeError) as e:
        return f"[text not readable: {e}]"


_sql_open = open_or_note


# --------------------------------------------------------------------------
# The word index: keyed blind tokens (issue 10's text search under issue 11's
# rule that no index holds clear text).
# --------------------------------------------------------------------------


def words(text: str) -> list[str]:
    """The distinct words of ``text`` as the index sees them: runs of letters and
    digits, lower case, in order of first appearance."""
    return list(dict.fromkeys(_WORD.findall(text.lower())))


class _Tokenizer:
    """Blind tokens under one index key, remembered: a message's words mostly repeat
    (keys, ORIs, field tags, common names), and an HMAC costs ~1 us where a lookup
    costs ~50 ns; the writer makes tokens for every message."""

    __slots__ = ("cache", "mac")

    #: Words remembered at most (then forgotten all at once; ~10 MB at the most).
    LIMIT: Final = 100_000

    def __init__(self, key: bytes) -> None:
        self.mac = hmac.new(key, digestmod="sha256")  # keyed once, copied per word
        self.cache: dict[str, str] = {}

    def __call__(self, ws: list[str]) -> list[str]:
        cache, out = self.cache, []
        for w in ws:
            t = cache.get(w)
            if t is None:
                m = self.mac.copy()
                m.update(w.encode())
                t = m.digest()[:_TOKEN_BYTES].hex().translate(_HEX_AS_LETTERS)
                if len(cache) >= self.LIMIT:
                    cache.clear()
                cache[w] = t
            out.append(t)
        return out


_unkeyed = _Tokenizer(_UNKEYED)


def word_tokens(text: str) -> str:
    """The index entry of a message being written: the blind token of each of its
    words under the current key's index key, space-separated (``""``: none)."""
    c = _cipher
    return " ".join((c.tokenizers[c.current] if c is not None else _unkeyed)(words(text)))


def stored_tokens(value: Any, msg_id: int) -> str | None:
    """The index entry of a stored row (a migration's backfill), under the key that
    sealed it; None when its text does not open."""
    try:
        text = open_text(value, msg_id)
    except ValueError:
        return None
    c = _cipher
    tok = _unkeyed
    if c is not None and isinstance(value, str) and value.startswith(MAGIC):
        # It opened, so its header reads and its key is in the keyring.
        tok = c.tokenizers[_HEAD.unpack_from(base64.b64decode(value[len(MAGIC):]))[0]]
    return " ".join(tok(words(text)))


def query_terms(text: str) -> list[list[str]]:
    """A text query as tokens: for each of its words, the word's token under every
    index key a row may have been indexed with (each key of the keyring, and the
    unkeyed one of rows written in clear). A row matches when it holds one token of
    every word. Empty when the query has no word."""
    c = _cipher
    toks = ([c.tokenizers[k] for k in sorted(c.tokenizers)] if c is not None else [])
    toks.append(_unkeyed)
    return [[tok([w])[0] for tok in toks] for w in words(text)]


def _sql_words(value: Any) -> str:
    return word_tokens(str(value))


def _sql_stored_words(value: Any, msg_id: Any) -> str | None:
    return stored_tokens(value, int(msg_id))


def _sql_seal(value: Any, msg_id: Any) -> str:
    return seal_text(str(value), int(msg_id))


def install(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Give ``conn`` the SQL functions ``ns_open(text, id)``, ``ns_seal(text, id)``,
    ``ns_words(text)`` and ``ns_stored_words(stored, id)``."""
    conn.create_function("ns_open", 2, _sql_open, deterministic=True)
    conn.create_function("ns_seal", 2, _sql_seal)
    conn.create_function("ns_words", 1, _sql_words)
    conn.create_function("ns_stored_words", 2, _sql_stored_words)
    return conn


def keyring_path(text_key_file: str | None) -> Path:
    """``security.text_key_file``, else ``text.keys`` in the key directory."""
    from nlets_switch.store.keys import TEXT_KEYS, key_dir

    return Path(text_key_file) if text_key_file else key_dir() / TEXT_KEYS


def configure_for(text_key_file: str | None, enabled: bool = True,
                  create: bool = True) -> tuple[Keyring | None, bool]:
    """Configure from the ``security`` settings: the keyring (made when missing and
    ``create``) and whether it was made now. A tool that only reads (``create``
    False) without a keyring can still read clear rows. Raises ValueError for a
    keyring file that cannot be read, FileNotFoundError for a configured one missing."""
    global _named
    path = keyring_path(text_key_file)
    _named = path if text_key_file else None
    if not enabled:
        configure(None)
        return None, False
    if not path.exists() and not create:
        if text_key_file:
            raise FileNotFoundError(f"security.text_key_file: {path} does not exist")
        configure(None)
        return None, False
    if not path.exists() and text_key_file:
        # A configured key file that is missing is an error, not a reason to make a
        # new key (the rows sealed under the old one would not open).
        raise FileNotFoundError(f"security.text_key_file: {path} does not exist "
                                "(nlets-switch keys init makes one)")
    ring, made = load_keyring(path, create=create)
    configure(ring)
    return ring, made


def data_keyring() -> Keyring:
    """The keyring that seals the CJI kept beside the journal (the LEIS person data,
    :mod:`nlets_switch.store.leiscrypt`): the one in use for message text; else the
    one the configuration names (sealed even with ``security.encrypt_text: false``);
    else ``text.keys`` in the key directory, made when missing. Raises ValueError
    (or OSError) when it cannot be read."""
    if _cipher is not None:
        return _cipher.ring
    if _named is not None and not _named.exists():
        raise FileNotFoundError(f"security.text_key_file: {_named} does not exist "
                                "(nlets-switch keys init makes one)")
    ring, _ = load_keyring(_named or keyring_path(None), create=True)
    return ring
