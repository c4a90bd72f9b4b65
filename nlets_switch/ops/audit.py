"""The audit trail (CJIS Security Policy 5.4.1.1), kept in the journal, tamper-evident.

Each record has a time, the component that saw the event, the event type,
its subject and its outcome (plus a JSON ``detail``), in the ``audit`` table
of the journal. Records are chained: ``mac = HMAC-SHA256(key, previous mac ||
canonical JSON of the record)``, so editing, inserting or removing a record
breaks the chain at that point and :func:`verify` names it. The key comes
from the configuration (``audit.key`` or ``audit.key_file``) or, when none is
configured, from ``audit.key`` in the key directory outside the data directory
(``$XDG_CONFIG_HOME/nlets-switch/``, :mod:`nlets_switch.store.keys`),
generated on first use with mode 0600; a ``<data_dir>/audit.key`` made by an
older version is still used (the chain it sealed must verify), with a
warning to move it. Signed checkpoints of the chain's head, kept outside the
data directory too, are :mod:`nlets_switch.ops.checkpoint`.

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

import asyncio
import contextlib
import functools
import os
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from nlets_switch.config import Config
from nlets_switch.core.events import Audit
from nlets_switch.errors import ConfigError, CorruptRecord, StoreError
from nlets_switch.log import get_logger
from nlets_switch.ops.settings import MIN_KEY_BYTES as MIN_KEY_BYTES  # re-exported
from nlets_switch.ops.settings import decode_key as decode_key  # re-exported
from nlets_switch.store.audit import ANCHOR_KEY
from nlets_switch.store.base import AuditAnchor
from nlets_switch.store.journal_ops import AuditSource as AuditSource  # re-exported
from nlets_switch.store.journal_ops import anchor_tag as anchor_tag  # re-exported
from nlets_switch.store.journal_ops import append as append  # re-exported
from nlets_switch.store.journal_ops import canonical as canonical  # re-exported
from nlets_switch.store.journal_ops import chain_mac as chain_mac  # re-exported
from nlets_switch.store.journal_ops import iso_utc as iso_utc  # re-exported
from nlets_switch.store.keys import key_dir, private_dir
from nlets_switch.store.postgres_journal import AnyJournal
from nlets_switch.store.sqlite import as_store, open_store

KEY_FILE_NAME: Final = "audit.key"
#: Audit records kept at most while the journal cannot commit them.
PENDING_MAX: Final = 10_000
#: First wait before audit records that failed are sent again; it doubles up to
#: RETRY_MAX_S while they keep failing.
RETRY_S: Final = 0.5
RETRY_MAX_S: Final = 5.0

Op = Callable[[Any], Any]
log = get_logger("audit")
#: Where the retention anchor is kept (the store's meta row).
ANCHOR: Final = ANCHOR_KEY


# --------------------------------------------------------------------------
# The key
# --------------------------------------------------------------------------


def legacy_key_path(cfg: Config) -> Path:
    """Where versions before issue 11 kept the key: inside the data directory."""
    return Path(cfg.data_dir) / KEY_FILE_NAME


def key_path(cfg: Config) -> Path:
    """Where the key is read from: ``audit.key_file``, else an older
    ``<data_dir>/audit.key`` that exists, else ``<key dir>/audit.key``."""
    kf = cfg.audit.key_file
    if kf:
        return Path(kf)
    legacy = legacy_key_path(cfg)
    return legacy if legacy.exists() else key_dir() / KEY_FILE_NAME


def load_key(cfg: Config, create: bool = True) -> bytes | None:
    """The audit key of ``cfg``: ``audit.key``, else ``audit.key_file``, else
    ``<data_dir>/audit.key``; when none is configured and that file does not
    exist, a new random 32-byte key is written there (hex, mode 0600) if
    ``create``, else None is returned. Raises ConfigError for a configured key
    file that cannot be read or holds no valid key."""
    sec = cfg.audit
    if sec.key:
        return decode_key(sec.key)
    path = key_path(cfg)
    try:
        return decode_key(path.read_text())
    except FileNotFoundError:
        if sec.key_file:
            # A configured key file that is missing is an error, not a reason
            # to start a new chain under a new key.
            raise ConfigError([f"audit.key_file: {path} does not exist"], cfg.source) from None
        if not create:
            return None
    except (OSError, ValueError) as e:
        raise ConfigError([f"audit.key_file: {path}: {e}"], cfg.source) from None
    private_dir(path.parent)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first: use theirs
        return decode_key(path.read_text())
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key


# --------------------------------------------------------------------------
# The chain
# --------------------------------------------------------------------------


def record_now(journal_path: Path, key: bytes, type_: str, subject: str, outcome: str,
               component: str, detail: Mapping[str, Any]) -> int:
    """Append one record from outside the switch (a command-line tool), in its own
    transaction; safe while the switch runs. Returns the record's id."""
    with open_store(journal_path) as store:
        return append(store, key, iso_utc(time.time()), component, type_, subject, outcome,
                      detail)


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
        if cfg.store.url:  # the PostgreSQL store (docs/cluster.md)
            from nlets_switch.store.postgres import open_pg_store

            # The configured node's chain (docs/cluster.md), "" when it is no cluster node.
            with open_pg_store(cfg.store.url, node=cfg.store.node_id or "") as store:
                append(store, key, iso_utc(time.time()), component, type_, user, outcome,
                       detail)
            return None
        record_now(path, key, type_, user, outcome, component, detail)
    except (OSError, StoreError, ConfigError, ValueError) as e:
        return f"warning: could not write the audit record: {e}"
    return None


class AuditTrail:
    """Appends audit records through the switch's journal, without blocking the loop.

    A record the journal could not commit (its database down, its disk full) is
    kept and sent again, after 0.5 s and then up to every 5 s, and at once when
    another record commits: every security decision reaches the trail once the
    journal takes writes again. At most :data:`PENDING_MAX` wait; past that the
    oldest are lost, loudly (``audit_records_lost``).
    """

    def __init__(self, journal: AnyJournal, key: bytes) -> None:
        self.journal = journal
        self._key = key
        #: Records that could not be queued (journal already closed).
        self.dropped = 0
        #: Records given up because too many waited (an outage longer than the bound).
        self.lost = 0
        self._pending: deque[Op] = deque()
        self._retry: asyncio.TimerHandle | None = None
        self._wait = RETRY_S
        #: Whether this outage was logged (once per outage, not per retry).
        self._told = False

    @property
    def pending(self) -> int:
        """Records waiting for the journal to take writes again."""
        return len(self._pending)

    def record(self, type: str, subject: str, outcome: str, component: str,
               detail: Mapping[str, Any] | None = None, ts: float | None = None) -> None:
        """Queue one record (time ``ts`` or now); it is committed with the next batch."""
        op = functools.partial(append, key=self._key, ts=iso_utc(time.time() if ts is None
                                                                 else ts),
                               component=component, type_=type, subject=subject,
                               outcome=outcome, detail=dict(detail or {}))
        self._submit(op)

    def audit(self, event: Audit) -> None:
        """The switch's audit sink: queue ``event`` as a record."""
        detail = dict(event.detail)
        component = str(detail.pop("component", "switch"))
        self.record(event.type, event.subject, event.outcome, component, detail,
                    event.ts or None)

    async def settle(self) -> None:
        """At stop, with the journal still open: send what waits once more and wait
        for it; what still cannot be committed is lost, and said so."""
        if not self._pending:
            return
        self._flush()
        with contextlib.suppress(Exception):
            await self.journal.barrier()
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._pending:
            self.lost += len(self._pending)
            log.error("audit_records_lost", lost=len(self._pending),
                      reason="the switch stopped")
            self._pending.clear()

    def _submit(self, op: Op) -> bool:
        try:
            self.journal.submit(op, functools.partial(self._done, op))
        except RuntimeError:
            self.dropped += 1  # the journal is closed: the switch is stopping
            return False
        return True

    def _done(self, op: Op, _result: Any, error: BaseException | None) -> None:
        if error is None:
            self._wait = RETRY_S
            if self._pending:
                # The journal takes writes again: what waited goes now.
                log.info("audit_records_resent", records=len(self._pending))
                self._flush()
            self._told = False
            return
        if not self._told:
            # Once per outage; the error's kind only (its text may quote data).
            log.warning("audit_records_waiting", error=type(error).__name__)
            self._told = True
        if len(self._pending) >= PENDING_MAX:
            self._pending.popleft()
            self.lost += 1
            if self.lost == 1 or self.lost % 1000 == 0:
                log.error("audit_records_lost", lost=self.lost, bound=PENDING_MAX)
        self._pending.append(op)
        if self._retry is None:
            self._retry = asyncio.get_running_loop().call_later(self._wait, self._flush)
            self._wait = min(RETRY_MAX_S, self._wait * 2)

    def _flush(self) -> None:
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        waiting, self._pending = self._pending, deque()
        while waiting:
            if not self._submit(waiting.popleft()):
                self.dropped += len(waiting)
                log.error("audit_records_lost", lost=len(waiting) + 1,
                          reason="the journal closed")
                return


def trail_for(cfg: Config, journal: AnyJournal) -> AuditTrail:
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


def _same(a: str, b: str) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a hand-edited MAC).
    return secrets.compare_digest(a.encode(), b.encode())


def _authentic(key: bytes, anchor: AuditAnchor) -> bool:
    try:
        return _same(anchor_tag(key, anchor.id, anchor.mac), anchor.tag)
    except ValueError:  # a MAC that is not even ASCII
        return False


def verify(db: AuditSource, key: bytes) -> VerifyResult:
    """Check every link of the chain, from the retention anchor (or the start) on."""
    store = as_store(db)
    try:
        anchor = store.audit_anchor()
    except CorruptRecord:
        anchor = AuditAnchor(0, "", "")  # unreadable: cannot be authentic
    if anchor is not None and not _authentic(key, anchor):
        # Someone who deleted old records and wrote an anchor by hand.
        return VerifyResult(False, 0, None, "the retention anchor is not authentic: records "
                            "before it may have been removed")
    prev_id, prev_mac = (anchor.id, anchor.mac) if anchor is not None else (0, "")
    checked = 0
    try:
        high = store.audit_high()
    except StoreError:
        high = 0
    for rec in store.audit_records():
        if rec.id != prev_id + 1:
            return VerifyResult(False, checked, rec.id,
                                f"records {prev_id + 1}..{rec.id - 1} are missing")
        want = chain_mac(key, prev_mac, canonical(rec.id, rec.ts, rec.component, rec.type,
                                                  rec.subject, rec.outcome, rec.detail))
        if not _same(want, rec.mac):
            return VerifyResult(False, checked, rec.id,
                                "MAC does not match: the record was changed, or one before "
                                "it was removed or changed")
        checked += 1
        prev_id, prev_mac = rec.id, rec.mac
    if high > prev_id:
        # Ids once given are gone from the end (or the table was emptied).
        return VerifyResult(False, checked, prev_id + 1,
                            f"records {prev_id + 1}..{high} are missing (the newest "
                            "records were removed)")
    return VerifyResult(True, checked)
