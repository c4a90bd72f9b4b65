"""Retention: old messages and audit records go, held messages stay, the chain still verifies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from pathlib import Path

import pytest

from nlets_switch.config import config_from_dict, demo_config, with_overrides
from nlets_switch.core.events import MemoryAudit
from nlets_switch.errors import ConfigError
from nlets_switch.ops import audit, msglog, retention
from nlets_switch.ops.msglog import Query
from nlets_switch.server.switch import Switch
from nlets_switch.store.journal import Journal, connect
from nlets_switch.tools.client import Client

DAY = 86400.0
HELD = "AM.AZNLETS20.NY.TXT\nFOR NEW YORK WHEN IT SIGNS ON"
DONE = "AM.AZNLETS20.AZ0070500.TXT\nDELIVERED AT ONCE"


async def _traffic(sw: Switch) -> tuple[int, int]:
    """One AM delivered and acknowledged, one held for NY (not signed on)."""
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ag = await Client.connect(host, port, "AZ0070500")
    try:
        assert (await az.send(DONE)).ok
        done_id = sw.engine.ledger.msg_id
        await ag.receive(5)
        assert (await az.send(HELD)).ok
        held_id = sw.engine.ledger.msg_id - 1  # the SM .02 follows it
        await az.drain(0.1)
        await sw.journal.barrier()
    finally:
        await az.close()
        await ag.close()
    await sw.journal.barrier()
    return done_id, held_id


async def test_prune_keeps_held_messages_and_a_verifiable_audit_chain(tmp_path: Path) -> None:
    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(tmp_path))
    journal = Journal(tmp_path / "journal.sqlite")
    trail = audit.trail_for(cfg, journal)
    sw = Switch(cfg, audit=trail, journal=journal)
    await sw.start()
    try:
        done_id, held_id = await _traffic(sw)
        later = time.time() + 400 * DAY
        res = await sw.journal.call(functools.partial(retention.prune, now=later,
                                                      key=audit.load_key(cfg)))
        assert res.messages >= 2 and res.deliveries >= 1 and res.audit >= 3
        with contextlib.closing(connect(tmp_path / "journal.sqlite", readonly=True)) as conn:
            left = {r["id"] for r in msglog.search(conn, Query(limit=None))}
            assert held_id in left and done_id not in left
            held = msglog.get(conn, held_id)
            assert held is not None and held["deliveries"][0]["state"] == "held"
            assert conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
            key = audit.load_key(cfg)
            assert key is not None
            assert audit.verify(conn, key).ok
        # New records chain on from the anchor and still verify.
        trail.record("admin", "operator", "success", "cli", {"action": "test"})
        await sw.journal.barrier()
        with contextlib.closing(connect(tmp_path / "journal.sqlite", readonly=True)) as conn:
            assert audit.verify(conn, key) == audit.VerifyResult(True, 1)
        # A second prune with nothing old removes nothing.
        res = await sw.journal.call(functools.partial(retention.prune, now=time.time()))
        assert res == retention.PruneResult(0, 0, 0)
    finally:
        await sw.stop()


async def test_partial_audit_prune_leaves_newer_records_verifiable(tmp_path: Path) -> None:
    from nlets_switch.store.journal import Journal

    j = Journal(tmp_path / "j.sqlite")
    conn = j.open()
    key = bytes(32)
    for day in range(1, 10):
        audit.append(conn, key, f"2024-01-0{day}T00:00:00.000000Z", "switch", "sign_on",
                     "AZNLETS20", "success", {})
    now = 1704067200.0 + 5 * DAY + 20 * DAY  # 2024-01-26: keep the last 20 days
    res = retention.prune(conn, now, messages_days=365, audit_days=20, key=key)
    assert res.audit == 5
    assert audit.verify(conn, key) == audit.VerifyResult(True, 4)
    j.close()


async def test_background_task_prunes_on_its_interval(tmp_path: Path) -> None:
    cfg = config_from_dict({"retention": {"messages_days": 1e-9, "audit_days": 365,
                                          "interval_s": 0.05}})
    cfg = with_overrides(cfg, ["127.0.0.1:0"], str(tmp_path))
    sw = Switch(cfg, audit=MemoryAudit())
    await sw.start()
    task = asyncio.create_task(retention.retention_task(sw, cfg))
    try:
        done_id, held_id = await _traffic(sw)
        for _ in range(100):
            await asyncio.sleep(0.05)
            with contextlib.closing(connect(tmp_path / "journal.sqlite", readonly=True)) as c:
                left = {r["id"] for r in msglog.search(c, Query(limit=None))}
            if done_id not in left:
                break
        assert done_id not in left and held_id in left
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await sw.stop()


def test_retention_settings_and_checker() -> None:
    cfg = config_from_dict({"retention": {"messages_days": 30}})
    assert retention.settings(cfg) == retention.RetentionSettings(
        messages_days=30.0, audit_days=365.0, interval_s=3600.0)
    with pytest.raises(ConfigError) as e:
        config_from_dict({"retention": {"messages_days": -1, "audit_days": "x", "keep": 1}})
    problems = " | ".join(e.value.problems)
    assert "retention.messages_days: expected a positive number" in problems
    assert "retention.audit_days" in problems and "retention.keep: unknown" in problems
