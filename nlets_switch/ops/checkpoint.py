"""Signed checkpoints of the audit chain's head, kept outside the data directory (issue 11).

The HMAC chain (:mod:`nlets_switch.ops.audit`) shows a record changed or
removed *between* others, but not the newest records cut off, nor a table
emptied, nor a chain rewritten by someone who holds the HMAC key. So the
switch signs the head of the chain (its last id and MAC) with an Ed25519
key every ``audit.checkpoint_s`` seconds (and when it stops), appends the
signed line to a file outside the data directory, and publishes it on MQTT
(``<prefix>/<switch id>/audit/checkpoint``, retained). ``audit verify`` then
also checks the chain against the newest checkpoint: the record it names
must be there with the same MAC (or lie before the retention anchor), so
rows cut after it, an emptied table, or a rewritten chain fail.

Files (defaults in the key directory of :mod:`nlets_switch.store.keys`):

* ``audit.signing_key_file``: ``audit-signing.key``, PEM PKCS#8, 0600 (made
  on first use), and ``audit-signing.pub`` beside it for anyone who checks;
* ``audit.checkpoint_dir``: ``checkpoints/``, one JSON-lines file per data
  directory (named by a hash of its absolute path), 0600.

A line: ``{"data_dir", "switch_id", "id", "mac", "ts", "signer", "sig"}``;
``sig`` is base64 Ed25519 over the line's other fields as sorted compact JSON.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from nlets_switch.config import Config
from nlets_switch.errors import StoreError
from nlets_switch.ops.audit import iso_utc
from nlets_switch.store.base import AuditStore
from nlets_switch.store.keys import key_dir, private_dir, write_secret
from nlets_switch.store.sqlite import open_store

__all__ = ["Checkpoint", "check", "checkpoint_file", "checkpoint_task", "latest",
           "load_signing_key", "public_key", "write_checkpoint"]

SIGNING_KEY: Final = "audit-signing.key"
CHECKPOINTS: Final = "checkpoints"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """One signed head of the chain."""

    data_dir: str
    switch_id: str
    id: int
    mac: str
    ts: str
    signer: str
    sig: str

    def body(self) -> bytes:
        """What the signature covers."""
        return json.dumps({"data_dir": self.data_dir, "switch_id": self.switch_id,
                           "id": self.id, "mac": self.mac, "ts": self.ts,
                           "signer": self.signer},
                          sort_keys=True, separators=(",", ":")).encode()

    def to_dict(self) -> dict[str, Any]:
        """The JSON line (and the MQTT payload)."""
        return {"data_dir": self.data_dir, "switch_id": self.switch_id, "id": self.id,
                "mac": self.mac, "ts": self.ts, "signer": self.signer, "sig": self.sig}


def signing_key_path(cfg: Config) -> Path:
    """``audit.signing_key_file``, else ``<key dir>/audit-signing.key``."""
    f = cfg.audit.signing_key_file
    return Path(f) if f else key_dir() / SIGNING_KEY


def checkpoint_file(cfg: Config) -> Path:
    """This data directory's checkpoint file."""
    d = cfg.audit.checkpoint_dir
    base = Path(d) if d else key_dir() / CHECKPOINTS
    data = str(Path(cfg.data_dir).resolve())
    return base / (hashlib.sha256(data.encode()).hexdigest()[:20] + ".jsonl")


def load_signing_key(cfg: Config, create: bool = True) -> Ed25519PrivateKey | None:
    """The Ed25519 signing key (made, with its ``.pub``, when missing and ``create``)."""
    path = signing_key_path(cfg)
    if not path.exists():
        if not create:
            return None
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        if write_secret(path, pem):
            pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
            write_secret(path.with_suffix(".pub"), pub, replace=True)
    loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ValueError(f"{path}: not an Ed25519 private key")
    return loaded


def public_key(cfg: Config) -> Ed25519PublicKey | None:
    """The key checkpoints are checked with: the signing key's, or its ``.pub`` alone."""
    path = signing_key_path(cfg)
    if path.exists():
        key = load_signing_key(cfg, create=False)
        return key.public_key() if key is not None else None
    pub = path.with_suffix(".pub")
    if pub.exists():
        loaded = serialization.load_pem_public_key(pub.read_bytes())
        if isinstance(loaded, Ed25519PublicKey):
            return loaded
    return None


def _signer(pub: Ed25519PublicKey) -> str:
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def latest(cfg: Config) -> Checkpoint | None:
    """The newest checkpoint of this data directory (unchecked), or None."""
    path = checkpoint_file(cfg)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            d = json.loads(line)
            return Checkpoint(str(d["data_dir"]), str(d["switch_id"]), int(d["id"]),
                              str(d["mac"]), str(d["ts"]), str(d["signer"]), str(d["sig"]))
        except (ValueError, KeyError, TypeError):
            continue  # a torn last line: the one before it stands
    return None


def write_checkpoint(cfg: Config, store: AuditStore | None = None) -> Checkpoint | None:
    """Sign the chain's head now and append it; None when the chain is empty or
    the head is the one last signed."""
    if store is None and cfg.store.url:
        # PostgreSQL: the configured node's chain (one per cluster node).
        from nlets_switch.store.postgres import open_pg_store

        with open_pg_store(cfg.store.url, readonly=True, node=cfg.store.node_id or "") as pg:
            return write_checkpoint(cfg, pg)
    if store is None:
        path = Path(cfg.data_dir) / "journal.sqlite"
        if not path.exists():
            return None
        # Not read-only: the last connection to close removes the WAL (after the
        # switch stopped, this one), which a read-only one cannot do.
        with open_store(path) as opened:
            last = opened.last_audit_record()
    else:
        last = store.last_audit_record()
    if last is None:
        return None
    prev = latest(cfg)
    if prev is not None and prev.id == last.id and prev.mac == last.mac:
        return None
    key = load_signing_key(cfg)
    assert key is not None
    unsigned = Checkpoint(str(Path(cfg.data_dir).resolve()), cfg.switch_id, last.id, last.mac,
                          iso_utc(time.time()), _signer(key.public_key()), "")
    sig = base64.b64encode(key.sign(unsigned.body())).decode()
    cp = Checkpoint(unsigned.data_dir, unsigned.switch_id, unsigned.id, unsigned.mac,
                    unsigned.ts, unsigned.signer, sig)
    path = checkpoint_file(cfg)
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as f:
        f.write(json.dumps(cp.to_dict(), sort_keys=True, separators=(",", ":")) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return cp


def check(cfg: Config, store: AuditStore) -> tuple[bool, str]:
    """The chain against the newest checkpoint: (ok, what was found).

    Not ok when the checkpoint's signature fails, or the record it names is
    missing (rows cut, the table emptied) or has another MAC (the chain was
    rewritten). A record before the retention anchor is gone legitimately.
    """
    cp = latest(cfg)
    if cp is None:
        return True, "no checkpoint yet"
    pub = public_key(cfg)
    if pub is None:
        return False, (f"checkpoint of {cp.ts} cannot be checked: no signing key at "
                       f"{signing_key_path(cfg)}")
    try:
        pub.verify(base64.b64decode(cp.sig), cp.body())
    except (InvalidSignature, ValueError):
        return False, f"the checkpoint of {cp.ts} is not signed by {signing_key_path(cfg)}"
    try:
        anchor = store.audit_anchor()
    except StoreError:
        anchor = None
    if anchor is not None and cp.id <= anchor.id:
        return True, f"last checkpoint record {cp.id} at {cp.ts} (since pruned)"
    rec = None
    for r in store.list_audit_records(limit=1):
        rec = r
    if rec is None or rec.id < cp.id:
        have = "the audit trail is empty" if rec is None else f"the last record is {rec.id}"
        return False, (f"records after the checkpoint are missing: the checkpoint of {cp.ts} "
                       f"names record {cp.id}, {have}")
    found = _record(store, cp.id)
    if found is None:
        return False, f"record {cp.id}, named by the checkpoint of {cp.ts}, is missing"
    if found != cp.mac:
        return False, (f"record {cp.id} is not the one the checkpoint of {cp.ts} signed: "
                       "the chain was rewritten")
    return True, f"last checkpoint record {cp.id} at {cp.ts} matches"


def _record(store: AuditStore, rid: int) -> str | None:
    """The MAC of record ``rid``, or None."""
    for r in store.audit_records():
        if r.id == rid:
            return r.mac
        if r.id > rid:
            break
    return None


async def checkpoint_task(cfg: Config,
                          publish: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Sign the head every ``audit.checkpoint_s`` seconds until cancelled; each new
    checkpoint also goes to ``publish`` (the monitor: MQTT) as an
    ``audit_checkpoint`` event. ``serve`` writes a last one after the switch stops."""
    from nlets_switch.log import get_logger

    log = get_logger("audit")
    while True:
        await asyncio.sleep(cfg.audit.checkpoint_s)
        try:
            cp = await asyncio.to_thread(write_checkpoint, cfg)
        except (OSError, StoreError, ValueError) as e:
            log.error("audit_checkpoint_failed", error=f"{type(e).__name__}: {e}")
            continue
        if cp is not None and publish is not None:
            with contextlib.suppress(Exception):
                publish({"event": "audit_checkpoint", **cp.to_dict()})
