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
from typing import Any

from nlets_switch.config import Config
from nlets_switch.log import get_logger
from nlets_switch.ops.audit import load_key
from nlets_switch.ops.settings import RetentionSettings as RetentionSettings  # re-exported

# The pruning itself runs in the journal's writer process: it lives where the
# writer need not import the switch (store/journal_ops.py).
from nlets_switch.store.journal_ops import DAY as DAY  # re-exported
from nlets_switch.store.journal_ops import PruneResult as PruneResult  # re-exported
from nlets_switch.store.journal_ops import RetentionSource as RetentionSource  # re-exported
from nlets_switch.store.journal_ops import prune as prune  # re-exported

log = get_logger("retention")


def settings(cfg: Config) -> RetentionSettings:
    """The retention settings of ``cfg`` (the ``retention`` section)."""
    return cfg.retention


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
