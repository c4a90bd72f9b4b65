"""Retention: how long each class of record stays in the journal, and the job that prunes.

Configuration (all optional)::

    retention:
      messages_days: 365   # messages and their deliveries
      audit_days: 365      # audit records
      interval_s: 3600     # how often the background job runs

A message is removed once it was received more than ``messages_days`` ago
*and* none of its deliveries is still open (queued, held or sent): a held
message is never removed before its hold expires (the switch's expiry sweep
closes it first). Audit records older than ``audit_days`` are removed oldest
first, and the MAC of the last one removed is stored as the chain's anchor
(meta ``audit_anchor``), so ``audit verify`` still passes afterwards.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Final

from nlets_switch.config import Config
from nlets_switch.log import get_logger
from nlets_switch.ops.audit import ANCHOR, anchor_tag, iso_utc, load_key
from nlets_switch.ops.settings import RetentionSettings as RetentionSettings  # re-exported
from nlets_switch.store.journal import OPEN_STATES

log = get_logger("retention")

DAY: Final = 86400.0

@dataclass(frozen=True, slots=True)
class PruneResult:
    """What one :func:`prune` removed."""

    messages: int = 0
    deliveries: int = 0
    audit: int = 0


def settings(cfg: Config) -> RetentionSettings:
    """The retention settings of ``cfg`` (the ``retention`` section)."""
    return cfg.retention


_OPEN = "(" + ",".join(f"'{s}'" for s in OPEN_STATES) + ")"


def prune(conn: sqlite3.Connection, now: float, messages_days: float = 365.0,
          audit_days: float = 365.0, batch: int = 10_000,
          key: bytes | None = None) -> PruneResult:
    """Remove what is past retention at ``now``; run inside a write transaction
    (a journal operation). At most ``batch`` messages per call, so one call
    never holds the writer for long; the job calls again while it is busy."""
    cutoff = now - messages_days * DAY
    ids = [r[0] for r in conn.execute(
        f"SELECT m.id FROM messages m WHERE m.received_at < ? AND NOT EXISTS ("
        f"SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.state IN {_OPEN}) "
        f"ORDER BY m.id LIMIT ?", (cutoff, batch))]
    n_dlv = 0
    for i in range(0, len(ids), 500):
        chunk = ids[i:i + 500]
        marks = ",".join("?" * len(chunk))
        n_dlv += conn.execute(f"DELETE FROM deliveries WHERE msg_id IN ({marks})",
                              chunk).rowcount
        conn.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk)
    n_audit = _prune_audit(conn, iso_utc(now - audit_days * DAY), key)
    return PruneResult(len(ids), n_dlv, n_audit)


def _prune_audit(conn: sqlite3.Connection, cutoff: str, key: bytes | None) -> int:
    if key is None:
        return 0  # without the key the anchor could not be authenticated: keep the chain
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                    "name = 'audit'").fetchone() is None:
        return 0
    # Only a prefix of the chain may go: stop at the first record that is
    # still young, even if an older-stamped one was committed after it.
    young = conn.execute("SELECT MIN(id) FROM audit WHERE ts >= ?", (cutoff,)).fetchone()[0]
    where, args = ("id < ?", [young]) if young is not None else ("1", [])
    last = conn.execute(f"SELECT id, mac FROM audit WHERE {where} ORDER BY id DESC LIMIT 1",
                        args).fetchone()
    if last is None:
        return 0
    conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                 "SET value = excluded.value",
                 (ANCHOR, json.dumps({"id": last[0], "mac": last[1],
                                      "tag": anchor_tag(key, int(last[0]), str(last[1]))})))
    return int(conn.execute("DELETE FROM audit WHERE id <= ?", (last[0],)).rowcount)


async def retention_task(switch: Any, cfg: Config) -> None:
    """Prune the journal every ``retention.interval_s`` until cancelled (or the
    journal closes). Run it as a task after ``switch.start()`` and cancel it
    before ``switch.stop()``."""
    s = settings(cfg)
    key = load_key(cfg)
    while True:
        try:
            while True:
                res: PruneResult = await switch.journal.call(functools.partial(
                    prune, now=time.time(), messages_days=s.messages_days,
                    audit_days=s.audit_days, key=key))
                if res.messages or res.audit:
                    log.info("retention_pruned", messages=res.messages,
                             deliveries=res.deliveries, audit=res.audit)
                    switch.audit("retention_prune", "journal", "success",
                                 component="retention", messages=res.messages,
                                 deliveries=res.deliveries, audit=res.audit)
                if res.messages < 10_000:
                    break
                await asyncio.sleep(0)  # let the switch's own writes in between
        except RuntimeError:
            return  # the journal is closed: the switch stopped
        except sqlite3.Error as e:
            log.error("retention_failed", error=str(e))
        await asyncio.sleep(s.interval_s)
