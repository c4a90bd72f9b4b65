"""Attack: cutting and rewriting the audit trail (issue 11, hole 4), against a real ``serve``.

The HMAC chain alone verified after the newest rows, or all rows, were
deleted (and the ids were then reused), and whoever read the key beside the
journal could rewrite the whole chain. Now the key is outside the data
directory, the highest id ever given is kept, and the switch signs the head
of the chain (Ed25519) into a checkpoint outside the data directory and on
MQTT: ``audit verify`` fails for each of those attacks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import aiomqtt

from nlets_switch.ops import audit
from nlets_switch.tools.client import Client
from tests.conftest_serve_process import Served, serve_process


def _cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", *args, "--data-dir",
                           str(served.data_dir)], capture_output=True, text=True,
                          env=served.env, timeout=60)


def _verify(served: Served) -> subprocess.CompletedProcess[str]:
    return _cli(served, "audit", "verify")


async def _traffic(served: Served) -> None:
    # A simulated state's terminal is a service ORI: it signs on with the
    # service credential serve made at start (issue 11), not by loopback.
    service = (served.data_dir / "service.credential").read_text().strip()
    for ori, cred in (("AZNLETS20", None), ("NYNLETS00", None), ("TXNLETS00", service)):
        c = await Client.connect("127.0.0.1", served.port, ori, cred)
        await c.close()


def _db(served: Served) -> sqlite3.Connection:
    return sqlite3.connect(served.data_dir / "journal.sqlite")


def _rows(served: Served) -> list[tuple[int, str]]:
    with contextlib.closing(_db(served)) as db:
        return [(int(r[0]), str(r[1])) for r in db.execute("SELECT id, mac FROM audit "
                                                           "ORDER BY id")]


def _snapshot(served: Served) -> bytes:
    return (served.data_dir / "journal.sqlite").read_bytes()


def _restore(served: Served, saved: bytes) -> None:
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(served.data_dir / f"journal.sqlite{suffix}")
    (served.data_dir / "journal.sqlite").write_bytes(saved)


async def test_cut_emptied_and_rewritten_trails_fail_verification(tmp_path: Path) -> None:
    # Imported here: a module-level import would load the plugin module before pytest
    # can rewrite its asserts (PytestAssertRewriteWarning in the other files using it).
    from tests.conftest_monitoring import Broker

    broker = Broker(tmp_path)
    broker.start()
    try:
        config = {"audit": {"checkpoint_s": 1},
                  "mqtt": {"host": "127.0.0.1", "port": broker.port}}
        with serve_process(tmp_path, config) as served:
            got: list[dict[str, object]] = []
            arrived = asyncio.Event()

            async def watch() -> None:
                async with aiomqtt.Client("127.0.0.1", broker.port) as c:
                    await c.subscribe("nlets/+/audit/checkpoint")
                    async for m in c.messages:
                        got.append(json.loads(bytes(m.payload)))  # type: ignore[arg-type]
                        arrived.set()

            watcher = asyncio.ensure_future(watch())
            await _traffic(served)
            await asyncio.wait_for(arrived.wait(), 10)
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await watcher
            served.proc.terminate()
            served.proc.wait(10)
        assert got[0]["sig"] and got[0]["id"]
    finally:
        broker.kill()

    # The secrets and the checkpoints are outside the data directory, 0600.
    data = served.data_dir
    assert not (data / "audit.key").exists()
    keys = tmp_path / "xdg" / "nlets-switch"
    for name in ("audit.key", "audit-signing.key"):
        assert stat.S_IMODE(os.stat(keys / name).st_mode) == 0o600
    (cp_file,) = (keys / "checkpoints").iterdir()
    last_cp = json.loads(cp_file.read_text().splitlines()[-1])

    ok = _verify(served)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "matches" in ok.stdout
    rows = _rows(served)
    assert rows[-1][0] >= last_cp["id"]
    saved = _snapshot(served)

    # 1. Cut the newest rows (and the high-water mark with them).
    with contextlib.closing(_db(served)) as db:
        db.execute("DELETE FROM audit WHERE id > ?", (rows[-1][0] - 3,))
        db.execute("DELETE FROM meta WHERE name = 'audit_high'")
        db.commit()
    cut = _verify(served)
    assert cut.returncode == 1, cut.stdout
    assert "missing" in cut.stdout

    # 2. Cut them but leave the high-water mark: the next id is not reused.
    _restore(served, saved)
    with contextlib.closing(_db(served)) as db:
        db.execute("DELETE FROM audit WHERE id > ?", (rows[-1][0] - 3,))
        db.commit()
    _cli(served, "audit", "list")  # appends a log_access record
    ids = [i for i, _ in _rows(served)]
    # The new record comes after the highest id ever given, never in a cut one's place.
    assert ids[-2:] == [rows[-1][0] - 3, rows[-1][0] + 1], ids[-3:]
    assert _verify(served).returncode == 1

    # 3. Empty the table.
    _restore(served, saved)
    with contextlib.closing(_db(served)) as db:
        db.execute("DELETE FROM audit")
        db.execute("DELETE FROM meta WHERE name = 'audit_high'")
        db.commit()
    empty = _verify(served)
    assert empty.returncode == 1 and "empty" in empty.stdout, empty.stdout

    # 4. Rewrite the chain with the HMAC key itself (an insider who read it):
    # the chain verifies on its own, the checkpoint's signature does not match.
    _restore(served, saved)
    key = audit.decode_key((keys / "audit.key").read_text())
    with contextlib.closing(_db(served)) as db:
        recs = db.execute("SELECT id, ts, component, type, subject, outcome, detail FROM audit "
                          "ORDER BY id").fetchall()
        prev = ""
        for r in recs:
            outcome = "failure" if r[3] == "sign_on" else r[5]
            mac = audit.chain_mac(key, prev, audit.canonical(r[0], r[1], r[2], r[3], r[4],
                                                             outcome, r[6]))
            db.execute("UPDATE audit SET outcome = ?, mac = ? WHERE id = ?", (outcome, mac, r[0]))
            prev = mac
        db.commit()
    with contextlib.closing(sqlite3.connect(data / "journal.sqlite")) as db:
        assert audit.verify(db, key).ok  # the HMAC chain alone is fooled
    rewritten = _verify(served)
    assert rewritten.returncode == 1 and "rewritten" in rewritten.stdout, rewritten.stdout

    # 5. A forged checkpoint line (no signing key) is refused too.
    forged = {**last_cp, "id": 1}
    cp_file.write_text(cp_file.read_text() + json.dumps(forged) + "\n")
    _restore(served, saved)
    bad = _verify(served)
    assert bad.returncode == 1 and "not signed" in bad.stdout, bad.stdout
