"""Journal operations that the switch's services hand to the writer process.

An operation crosses to the writer pickled, as a ``functools.partial`` of a
module-level function: unpickling it imports the function's module *in the
writer*. Defined beside the services that use them (``services/nl.py``,
``ops/audit.py``, ``ops/retention.py``), they made the writer import the
whole switch (configuration, pydantic, lxml, the services) just to append an
audit record or seed the help files: 30 MiB of the writer's own memory
(issue 9's memory goal). Here they need only the store and the standard
library (and HMAC from ``cryptography``, which the writer loads for the
message text anyway); those modules re-export them under their old names.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, TypeAlias

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as chmac

from nlets_switch.store.base import (
    AuditEvent,
    AuditStore,
    HelpFile,
    HelpStore,
    LoggedMessage,
    MessageLogStore,
    OrionRecord,
    OrionStore,
    RetentionStore,
)
from nlets_switch.store.sqlite import Connection, as_store

DAY: Final = 86400.0

#: What :func:`append` works on: any audit store, or a SQLite connection to the journal
#: (the writer's, when it runs as a journal operation).
AuditSource: TypeAlias = AuditStore | Connection
#: What :func:`prune` works on: any retention store, or a SQLite connection to the journal
#: (the writer's, when it runs as a journal operation).
RetentionSource: TypeAlias = RetentionStore | Connection


# -- the audit chain (ops/audit.py) ---------------------------------------------


def iso_utc(ts: float) -> str:
    """The audit time format: ISO 8601 UTC, microseconds, ``Z`` (sorts as text)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def anchor_tag(key: bytes, rid: int, mac: str) -> str:
    """The keyed tag of a retention anchor: without the key nobody can move it."""
    return chain_mac(key, "anchor", f"{rid}|{mac}".encode("ascii"))


def append(db: AuditSource, key: bytes, ts: str, component: str, type_: str,
           subject: str, outcome: str, detail: Mapping[str, Any]) -> int:
    """Append one record (inside the current write transaction, if one is open);
    returns its id."""
    det = json.dumps(dict(detail), sort_keys=True, separators=(",", ":"), default=str)
    event = AuditEvent(ts, component, type_, subject, outcome, det)

    def seal(row_id: int, prev_mac: str) -> str:
        return chain_mac(key, prev_mac, canonical(row_id, ts, component, type_, subject,
                                                  outcome, det))

    return as_store(db).append_audit(event, seal).id


# -- retention (ops/retention.py) -----------------------------------------------


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one :func:`prune` removed."""

    messages: int = 0
    deliveries: int = 0
    audit: int = 0


def prune(db: RetentionSource, now: float, messages_days: float = 365.0,
          audit_days: float = 365.0, batch: int = 10_000,
          key: bytes | None = None) -> PruneResult:
    """Remove what is past retention at ``now``; run inside a write transaction
    (a journal operation). At most ``batch`` messages per call, so one call
    never holds the writer for long; the job calls again while it is busy.
    Without the audit ``key`` no audit record is removed: the anchor that
    replaces them could not be authenticated."""
    store = as_store(db)
    with store.transaction():
        msgs = store.prune_messages(now - messages_days * DAY, batch)
        n_audit = 0
        if key is not None:
            n_audit = store.prune_audit(iso_utc(now - audit_days * DAY),
                                        functools.partial(anchor_tag, key))
    return PruneResult(msgs.messages, msgs.deliveries, n_audit)


# -- help files, ORION, the message log (services/nl.py) ----------------------------


def help_seed(store: HelpStore, files: Iterable[tuple[str, str, str]], at: float,
              by: str) -> None:
    """Store the (state, file, text) help files that are not there yet."""
    store.seed_help_files(HelpFile(s, f, text, at, by) for s, f, text in files)


def help_get(store: HelpStore, state: str, file: str) -> str | None:
    """The text of one help file, or None."""
    hf = store.help_file(state, file)
    return None if hf is None else hf.text


def help_put(store: HelpStore, state: str, file: str, text: str, by: str, at: float) -> None:
    """Write one help file (replacing it)."""
    store.put_help_file(HelpFile(state, file, text, at, by))


def help_append(store: HelpStore, state: str, file: str, text: str, by: str,
                at: float) -> None:
    """Add ``text`` to the end of a help file (or start it)."""
    # Read and write in the one writer thread: nothing comes between them.
    old = store.help_file(state, file)
    joined = text if old is None or not old.text else f"{old.text}\n{text}"
    store.put_help_file(HelpFile(state, file, joined, at, by))


def help_delete(store: HelpStore, state: str, file: str) -> bool:
    """Remove one help file; whether it was there."""
    return store.delete_help_file(state, file)


def orion_put(store: OrionStore, rec: OrionRecord) -> None:
    """Keep one ORION change."""
    store.put_orion_record(rec)


def orion_records(store: OrionStore) -> list[OrionRecord]:
    """Every stored ORION change (run on the journal's writer thread)."""
    return store.orion_records()


def logged_message(store: MessageLogStore, msg_id: int) -> LoggedMessage | None:
    """One logged message with its text, or None."""
    return store.get_message(msg_id, with_text=True)
