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
import time
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from nlets_switch.config import Config
from nlets_switch.log import get_logger
from nlets_switch.ops.audit import anchor_tag, iso_utc, load_key
from nlets_switch.ops.settings import RetentionSettings as RetentionSettings  # re-exported
from nlets_switch.store.base import RetentionStore
from nlets_switch.store.sqlite import Connection, as_store

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


#: What :func:`prune` works on: any retention store, or a SQLite connection to the journal
#: (the writer's, when it runs as a journal operation).
RetentionSource: TypeAlias = RetentionStore | Connection


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
        except Exception as e:
            # Whatever the store or the journal raised (a locked or full disk, a
            # damaged file): try again next interval rather than stop pruning for good.
            log.error("retention_failed", error=f"{type(e).__name__}: {e}")
        await asyncio.sleep(s.interval_s)
