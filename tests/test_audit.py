"""The audit trail: sign-on events made durable, HMAC chain, ``audit verify`` passing and
then naming the record edited by hand, key handling and the config checker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from nlets_switch.cli import main
from nlets_switch.config import config_from_dict, demo_config, with_overrides
from nlets_switch.errors import ConfigError
from nlets_switch.ops import audit
from nlets_switch.server.switch import Switch
from nlets_switch.store.journal import Journal, connect
from nlets_switch.tools.client import Client, SignOnError

KEY = bytes(range(32))


async def _run_switch_with_sign_ons(data: Path) -> None:
    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(data))
    journal = Journal(data / "journal.sqlite")
    trail = audit.trail_for(cfg, journal)
    sw = Switch(cfg, audit=trail, journal=journal)
    await sw.start()
    try:
        host, port = sw.addresses[0]
        c = await Client.connect(host, port, "AZNLETS20")
        await c.close()
        with pytest.raises(SignOnError):
            await Client.connect(host, port, "ZZ0000000")
        trail.record("admin", "NYNLETS00", "success", "http", {"action": "disconnect"})
        await asyncio.sleep(0.05)
        await sw.journal.barrier()
    finally:
        await sw.stop()


def _rows(data: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(connect(data / "journal.sqlite", readonly=True)) as conn:
        return conn.execute("SELECT id, component, type, subject, outcome, detail "
                            "FROM audit ORDER BY id").fetchall()


async def test_switch_events_are_recorded_and_verify_then_fails_after_a_hand_edit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _run_switch_with_sign_ons(tmp_path)
    rows = _rows(tmp_path)
    kinds = [(r[2], r[3], r[4]) for r in rows]
    assert kinds[0] == ("config_load", "(demo world)", "success")
    assert ("sign_on", "AZNLETS20", "success") in kinds
    assert ("sign_on", "ZZ0000000", "failure") in kinds
    assert ("admin", "NYNLETS00", "success") in kinds
    assert "peer" in json.loads(str(rows[1][5]))
    # The key is kept outside the data directory (issue 11), 0600.
    from nlets_switch.store.keys import key_dir

    assert not (tmp_path / "audit.key").exists()
    key_file = key_dir() / "audit.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600

    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 0
    assert f"{len(rows)} records verified" in capsys.readouterr().out

    # An auditor's nightmare: someone turns a failed sign-on into a success.
    bad = next(r[0] for r in rows if r[4] == "failure")
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite")) as db:
        db.execute("UPDATE audit SET outcome = 'success' WHERE id = ?", (bad,))
        db.commit()
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"BROKEN at record {bad}" in out and "MAC does not match" in out


def test_removing_a_record_breaks_the_chain_at_the_next(tmp_path: Path) -> None:
    db = tmp_path / "j.sqlite"
    j = Journal(db)
    conn = j.open()
    for i in range(5):
        audit.append(conn, KEY, f"2024-01-0{i + 1}T00:00:00.000000Z", "switch", "sign_on",
                     f"AZ000000{i}", "success", {"n": i})
    assert audit.verify(conn, KEY) == audit.VerifyResult(True, 5)
    assert not audit.verify(conn, b"another key 1234").ok
    conn.execute("DELETE FROM audit WHERE id = 3")
    res = audit.verify(conn, KEY)
    assert (res.ok, res.first_bad_id, res.checked) == (False, 4, 2)
    assert "missing" in res.reason
    j.close()


async def test_cli_appends_while_the_switch_writes_and_the_chain_stays_whole(
        tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    j = Journal(tmp_path / "journal.sqlite")
    j.start(loop)
    trail = audit.AuditTrail(j, KEY)
    try:
        for i in range(50):
            trail.record("sign_on", f"AZ{i:07d}", "success", "switch", {})
            if i % 10 == 0:
                await asyncio.to_thread(audit.record_now, tmp_path / "journal.sqlite", KEY,
                                        "log_access", "tester", "success", "cli", {})
        await j.barrier()
    finally:
        j.close()
    with contextlib.closing(connect(tmp_path / "journal.sqlite", readonly=True)) as conn:
        assert audit.verify(conn, KEY) == audit.VerifyResult(True, 55)


def test_key_from_config_hex_or_base64_and_checker_problems(tmp_path: Path) -> None:
    import base64

    hexkey = KEY.hex()
    cfg = config_from_dict({"audit": {"key": hexkey}})
    assert audit.load_key(cfg) == KEY
    cfg = config_from_dict({"audit": {"key": base64.b64encode(KEY).decode()}})
    assert audit.load_key(cfg) == KEY
    kf = tmp_path / "k"
    kf.write_text(hexkey)
    assert audit.load_key(config_from_dict({"audit": {"key_file": str(kf)}})) == KEY
    with pytest.raises(ConfigError) as e:
        audit.load_key(config_from_dict({"audit": {"key_file": str(tmp_path / "none")}}))
    assert "audit.key_file" in str(e.value)
    with pytest.raises(ConfigError) as e:
        config_from_dict({"audit": {"key": "abcd", "colour": 1}})
    problems = " | ".join(e.value.problems)
    assert "audit.key: too short" in problems and "audit.colour: unknown" in problems
