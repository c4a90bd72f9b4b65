"""The audit trail (CJIS Security Policy 5.4.1.1), kept in the journal, tamper-evident.

Each record has a time, the component that saw the event, the event type,
its subject and its outcome (plus a JSON ``detail``), in the ``audit`` table
of the journal. Records are chained: ``mac = HMAC-SHA256(key, previous mac ||
canonical JSON of the record)``, so editing, inserting or removing a record
breaks the chain at that point and :func:`verify` names it. The key comes
from the configuration (``audit.key`` or ``audit.key_file``) or, when none is
configured, from ``<data_dir>/audit.key``, generated on first use with mode
0600.

The MAC is computed inside the journal operation, on the writer thread, in
the same transaction as the insert, and from the previous row as committed,
so the chain follows commit order even when another process (a command-line
tool recording ``log_access``) appends to it at the same time: SQLite's write
lock serialises the two.

Retention (:mod:`nlets_switch.ops.retention`) removes the oldest records; the MAC
of the last one removed is kept as the *anchor* (meta ``audit_anchor``), and
verification starts from it.

Events recorded (see docs/records.md): ``sign_on`` success/failure (the
switch emits them), ``config_load`` / ``config_reload``, ``log_access`` (the
log commands), ``api_access`` (the operator HTTP API), ``admin`` actions and
``retention_prune``.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

from nlets_switch.config import Config, register_section
from nlets_switch.core.events import Audit
from nlets_switch.errors import ConfigError
from nlets_switch.store.journal import Journal

#: Keys shorter than this are refused (128 bits).
MIN_KEY_BYTES: Final = 16
KEY_FILE_NAME: Final = "audit.key"
ANCHOR: Final = "audit_anchor"

_DDL = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    component TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT NOT NULL,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    mac TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts);
"""


def iso_utc(ts: float) -> str:
    """The audit time format: ISO 8601 UTC, microseconds, ``Z`` (sorts as text)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# --------------------------------------------------------------------------
# The key
# --------------------------------------------------------------------------


def decode_key(text: str) -> bytes:
    """A key written as hex or base64; raises ValueError (too short or neither)."""
    s = text.strip()
    key: bytes | None = None
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", s):
        key = bytes.fromhex(s)
    else:
        with contextlib.suppress(binascii.Error, ValueError):
            key = base64.b64decode(s, validate=True)
    if key is None:
        raise ValueError("not hex or base64")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}")
    return key


def key_path(cfg: Config) -> Path:
    """Where the key is read from: ``audit.key_file`` or ``<data_dir>/audit.key``."""
    sec = cfg.raw.get("audit") or {}
    kf = sec.get("key_file") if isinstance(sec, Mapping) else None
    return Path(kf) if kf else Path(cfg.data_dir) / KEY_FILE_NAME


def load_key(cfg: Config, create: bool = True) -> bytes | None:
    """The audit key of ``cfg``: ``audit.key``, else ``audit.key_file``, else
    ``<data_dir>/audit.key``; when none is configured and that file does not
    exist, a new random 32-byte key is written there (hex, mode 0600) if
    ``create``, else None is returned. Raises ConfigError for a configured key
    file that cannot be read or holds no valid key."""
    sec = cfg.raw.get("audit") or {}
    if not isinstance(sec, Mapping):
        sec = {}
    if sec.get("key"):
        return decode_key(str(sec["key"]))
    path = key_path(cfg)
    try:
        return decode_key(path.read_text())
    except FileNotFoundError:
        if sec.get("key_file"):
            # A configured key file that is missing is an error, not a reason
            # to start a new chain under a new key.
            raise ConfigError([f"audit.key_file: {path} does not exist"], cfg.source) from None
        if not create:
            return None
    except (OSError, ValueError) as e:
        raise ConfigError([f"audit.key_file: {path}: {e}"], cfg.source) from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


def check_audit_section(raw: Any) -> list[str]:
    """Problems of the ``audit`` section (registered with the config loader)."""
    if raw is None:
        return []
    if not isinstance(raw, Mapping):
        return ["audit: expected a mapping (key, key_file)"]
    out = [f"audit.{k}: unknown setting (known: key, key_file)"
           for k in raw if k not in ("key", "key_file")]
    if raw.get("key") is not None and raw.get("key_file") is not None:
        out.append("audit.key: give key or key_file, not both")
    if raw.get("key") is not None:
        try:
            decode_key(str(raw["key"]))
        except ValueError as e:
            out.append(f"audit.key: {e} (hex or base64, at least {MIN_KEY_BYTES} bytes)")
    kf = raw.get("key_file")
    if kf is not None and (not isinstance(kf, str) or not kf):
        out.append("audit.key_file: expected a file path")
    return out


register_section("audit", check_audit_section)


# --------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------


def canonical(row_id: int, ts: str, component: str, type_: str, subject: str, outcome: str,
              detail: str) -> bytes:
    """The bytes a record's MAC covers: its columns as sorted, compact JSON."""
    return json.dumps({"id": row_id, "ts": ts, "component": component, "type": type_,
                       "subject": subject, "outcome": outcome, "detail": detail},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def chain_mac(key: bytes, prev_mac: str, record: bytes) -> str:
    """HMAC-SHA256(key, previous mac (hex text) || record), as hex."""
    h = chmac.HMAC(key, hashes.SHA256())
    h.update(prev_mac.encode("ascii"))
    h.update(record)
    return h.finalize().hex()


def ensure_table(conn: sqlite3.Connection) -> None:
    """Create the ``audit`` table if it is missing (inside the caller's transaction)."""
    for stmt in _DDL.split(";"):
        if stmt.strip():
            conn.execute(stmt)


def anchor_tag(key: bytes, rid: int, mac: str) -> str:
    """The keyed tag of a retention anchor: without the key nobody can move it."""
    return chain_mac(key, "anchor", f"{rid}|{mac}".encode("ascii"))


def _anchor(conn: sqlite3.Connection) -> tuple[int, str]:
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (ANCHOR,)).fetchone()
    if row is None:
        return 0, ""
    a = json.loads(row[0])
    return int(a["id"]), str(a["mac"])


def _anchor_ok(conn: sqlite3.Connection, key: bytes) -> bool:
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (ANCHOR,)).fetchone()
    if row is None:
        return True
    try:
        a = json.loads(row[0])
        return secrets.compare_digest(anchor_tag(key, int(a["id"]), str(a["mac"])),
                                      str(a.get("tag", "")))
    except (ValueError, TypeError, KeyError):
        return False


def append(conn: sqlite3.Connection, key: bytes, ts: str, component: str, type_: str,
           subject: str, outcome: str, detail: Mapping[str, Any]) -> int:
    """Append one record inside the current write transaction; returns its id."""
    ensure_table(conn)
    last = conn.execute("SELECT id, mac FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    prev_id, prev_mac = (int(last[0]), str(last[1])) if last is not None else _anchor(conn)
    row_id = prev_id + 1
    det = json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), default=str)
    mac = chain_mac(key, prev_mac, canonical(row_id, ts, component, type_, subject, outcome,
                                             det))
    conn.execute("INSERT INTO audit (id, ts, component, type, subject, outcome, detail, mac) "
                 "VALUES (?,?,?,?,?,?,?,?)", (row_id, ts, component, type_, subject, outcome,
                                              det, mac))
    return row_id


def record_now(journal_path: Path, key: bytes, type_: str, subject: str, outcome: str,
               component: str, detail: Mapping[str, Any]) -> int:
    """Append one record from outside the switch (a command-line tool), in its own
    transaction; safe while the switch runs. Returns the record's id."""
    from nlets_switch.store.journal import connect

    conn = connect(journal_path)
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rid = append(conn, key, iso_utc(time.time()), component, type_, subject, outcome,
                         detail)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rid
    finally:
        conn.close()


def record_from_tool(cfg: Config, type_: str, outcome: str, detail: Mapping[str, Any],
                     component: str = "cli") -> str | None:
    """Record one event from a command-line tool as the operating-system user; returns a
    warning to print instead of failing the command when it cannot be written."""
    import getpass

    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "?"
    path = Path(cfg.data_dir) / "journal.sqlite"
    try:
        key = load_key(cfg)
        assert key is not None
        record_now(path, key, type_, user, outcome, component, detail)
    except (OSError, sqlite3.Error, ConfigError, ValueError) as e:
        return f"warning: could not write the audit record: {e}"
    return None


class AuditTrail:
    """Appends audit records through the switch's journal, without blocking the loop."""

    def __init__(self, journal: Journal, key: bytes) -> None:
        self.journal = journal
        self._key = key
        #: Records that could not be queued (journal already closed).
        self.dropped = 0

    def record(self, type: str, subject: str, outcome: str, component: str,
               detail: Mapping[str, Any] | None = None, ts: float | None = None) -> None:
        """Queue one record (time ``ts`` or now); it is committed with the next batch."""
        op = functools.partial(append, key=self._key, ts=iso_utc(time.time() if ts is None
                                                                 else ts),
                               component=component, type_=type, subject=subject,
                               outcome=outcome, detail=dict(detail or {}))
        try:
            self.journal.submit(op)
        except RuntimeError:
            self.dropped += 1  # the journal is closed: the switch is stopping

    def audit(self, event: Audit) -> None:
        """The switch's audit sink: queue ``event`` as a record."""
        detail = dict(event.detail)
        component = str(detail.pop("component", "switch"))
        self.record(event.type, event.subject, event.outcome, component, detail,
                    event.ts or None)


def trail_for(cfg: Config, journal: Journal) -> AuditTrail:
    """The audit trail of a switch (its sink): load (or create) the key and record
    the configuration load. Records queue until the journal's writer runs."""
    key = load_key(cfg)
    assert key is not None
    trail = AuditTrail(journal, key)
    trail.record("config_load", str(cfg.source), "success", "config",
                 {"switch_id": cfg.switch_id, "oris": len(cfg.entries)})
    return trail


# --------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of :func:`verify`: ``checked`` records were read; when not ``ok``,
    ``first_bad_id`` is the first record whose link is broken and ``reason`` says how."""

    ok: bool
    checked: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(conn: sqlite3.Connection, key: bytes) -> VerifyResult:
    """Check every link of the chain, from the retention anchor (or the start) on."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                       "name = 'audit'").fetchone()
    if has is None:
        return VerifyResult(True, 0)
    if not _anchor_ok(conn, key):
        # Someone who deleted old records and wrote an anchor by hand.
        return VerifyResult(False, 0, None, "the retention anchor is not authentic: records "
                            "before it may have been removed")
    prev_id, prev_mac = _anchor(conn)
    checked = 0
    for row in conn.execute("SELECT id, ts, component, type, subject, outcome, detail, mac "
                            "FROM audit ORDER BY id"):
        rid = int(row[0])
        if rid != prev_id + 1:
            return VerifyResult(False, checked, rid,
                                f"records {prev_id + 1}..{rid - 1} are missing")
        try:
            want = chain_mac(key, prev_mac, canonical(rid, *(str(v) for v in row[1:7])))
        except (TypeError, ValueError) as e:
            return VerifyResult(False, checked, rid, f"unreadable record: {e}")
        if not secrets.compare_digest(want, str(row[7])):
            return VerifyResult(False, checked, rid,
                                "MAC does not match: the record was changed, or one before "
                                "it was removed or changed")
        checked += 1
        prev_id, prev_mac = rid, str(row[7])
    return VerifyResult(True, checked)
