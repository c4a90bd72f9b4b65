"""Second review (HTTP, monitoring, message log, audit, retention, services, adapters).

It found five bugs, fixed since and kept here as tests: message ids reused
after retention emptied the log, a hand-written retention anchor hiding
deleted audit records, a 500 (unaudited) for a huge message id, no answer to
an NFQ with a 20-digit MID, and pending IARs holding LESC's delivery window
against GPQs. The other tests cover behaviour no other test checks.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from nlets_switch.config import config_from_dict, demo_config, with_overrides
from nlets_switch.core.events import Audit, MemoryAudit
from nlets_switch.ops import audit, retention
from nlets_switch.ops.monitor import token_hash
from nlets_switch.server.app import build_switch
from nlets_switch.server.switch import Switch
from nlets_switch.store.journal import Journal, connect
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest_services import world

if TYPE_CHECKING:
    from tests.conftest_monitoring import MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]

DAY = 86400.0
READER = "reader-token-0123456789"
OFFICER = "officer-token-0123456789"
API = {"api": {"tokens": [
    {"name": "ops", "token_sha256": token_hash(READER)},
    {"name": "auditor", "token": OFFICER, "see_text": True},
]}}
IAQ = ("IAQ.AZNLETS20.AX.*{ctl}.TXT\nPUR/C.ATN/DET J ROE.PHN/6025550100.NAM/GARCIA,MARIA."
       "DOB/19850312.SEX/F.POB/MM.CUS/Y.OFF/0399")


async def get(addr: tuple[str, int] | None, path: str,
              token: str | None = None) -> tuple[int, Any]:
    assert addr is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(
            f"http://{addr[0]}:{addr[1]}{path}", headers=headers) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.text()


# -- HTTP API ----------------------------------------------------------------------


async def test_message_id_beyond_sqlite_range_is_a_client_error_and_audited(
        monitored: MonitoredFactory) -> None:
    sw, mon = await monitored(API)
    audits: list[dict[str, Any]] = []
    sw.observers.append(lambda e: audits.append(e.to_dict()) if isinstance(e, Audit) else None)
    status, _ = await get(mon.http_address, "/api/messages/99999999999999999999", OFFICER)
    assert status in (400, 404)
    assert [(a["subject"], a["path"]) for a in audits if a["type"] == "api_access"] == [
        ("auditor", "/api/messages/99999999999999999999")]


async def test_loopback_without_token_never_sees_message_text(
        monitored: MonitoredFactory) -> None:
    """No api section: loopback reads the API, but the message text stays withheld."""
    sw, mon = await monitored()
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    try:
        assert (await az.send("AM.AZNLETS20.NY.TXT\nLOOPBACK SECRET")).ok
        await sw.journal.barrier()
        status, found = await get(mon.http_address, "/api/messages?key=AM")
        assert status == 200 and found["count"] == 1
        status, one = await get(mon.http_address, f"/api/messages/{found['messages'][0]['id']}")
        assert status == 200 and one["text_withheld"] is True
        assert "LOOPBACK SECRET" not in json.dumps(one)
    finally:
        await az.close()


async def test_bearer_token_required_even_from_loopback_once_tokens_exist(
        monitored: MonitoredFactory) -> None:
    """With api.tokens set, loopback gets no free pass, and odd schemes do not count."""
    _, mon = await monitored(API)
    addr = mon.http_address
    assert addr is not None
    async with aiohttp.ClientSession() as s:
        for auth in ("", "Bearer", "Bearer  ", f"Basic {READER}", f"bearer{READER}"):
            headers = {"Authorization": auth} if auth else {}
            async with s.get(f"http://{addr[0]}:{addr[1]}/api/stats", headers=headers) as r:
                assert r.status == 401, auth
        async with s.get(f"http://{addr[0]}:{addr[1]}/api/stats",
                         headers={"Authorization": f"bearer   {READER}  "}) as r:
            assert r.status == 200


# -- message log over the wire (NFQ) ------------------------------------------------


async def test_nfq_with_a_twenty_digit_mid_is_answered_no_record(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        try:
            assert (await az.send("NFQ.AZNLETS20.NL.*F1.TXT\nMID/99999999999999999999")).ok
            out = parse_output(await az.receive(3))
            assert out.key == "NFR" and out.text.strip() == "NO RECORD"
        finally:
            await az.close()


# -- retention -----------------------------------------------------------------------


async def test_message_ids_are_not_reused_after_retention_empties_the_log(
        tmp_path: Path) -> None:
    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(tmp_path))
    sw = Switch(cfg, audit=MemoryAudit())
    await sw.start()
    try:
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        assert (await az.send("AM.AZNLETS20.AZNLETS20.TXT\nTO MYSELF")).ok
        await az.receive(5)  # delivered and acknowledged: nothing stays open
        await az.close()
        await sw.journal.barrier()
        first_max = sw.engine.ledger.msg_id
    finally:
        await sw.stop()
    path = tmp_path / "journal.sqlite"
    with contextlib.closing(connect(path)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        res = retention.prune(conn, time.time() + 400 * DAY)
        conn.execute("COMMIT")
        assert res.messages == first_max  # the whole log went
    sw = Switch(cfg, audit=MemoryAudit())
    await sw.start()
    try:
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        assert (await az.send("AM.AZNLETS20.NY.TXT\nAFTER THE PRUNE")).ok
        await az.close()
        await sw.journal.barrier()
        with contextlib.closing(connect(path, readonly=True)) as conn:
            new_ids = [r[0] for r in conn.execute("SELECT id FROM messages")]
        assert new_ids and min(new_ids) > first_max
    finally:
        await sw.stop()


# -- audit chain ---------------------------------------------------------------------


def test_forged_anchor_does_not_hide_deleted_audit_records(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.sqlite")
    conn = j.open()
    key = bytes(range(32))
    try:
        for i in range(5):
            audit.append(conn, key, f"2024-01-0{i + 1}T00:00:00.000000Z", "switch", "sign_on",
                         "AZNLETS20", "failure" if i < 3 else "success", {})
        assert audit.verify(conn, key) == audit.VerifyResult(True, 5)
        mac3 = conn.execute("SELECT mac FROM audit WHERE id = 3").fetchone()[0]
        # The tamperer: remove the three failed sign-ons, no key needed.
        conn.execute("DELETE FROM audit WHERE id <= 3")
        conn.execute("INSERT INTO meta (name, value) VALUES (?, ?)",
                     (audit.ANCHOR, json.dumps({"id": 3, "mac": mac3})))
        assert not audit.verify(conn, key).ok
    finally:
        j.close()


def test_verify_names_a_changed_detail_and_a_swapped_pair(tmp_path: Path) -> None:
    """Editing only the JSON detail, or swapping two rows' contents, breaks the chain there."""
    j = Journal(tmp_path / "j.sqlite")
    conn = j.open()
    key = bytes(range(32))
    try:
        for i in range(4):
            audit.append(conn, key, f"2024-01-0{i + 1}T00:00:00.000000Z", "http", "api_access",
                         f"tok{i}", "success", {"path": f"/api/messages/{i}"})
        conn.execute("UPDATE audit SET detail = ? WHERE id = 2",
                     (json.dumps({"path": "/api/links"}, separators=(",", ":")),))
        assert audit.verify(conn, key).first_bad_id == 2
        j2 = Journal(tmp_path / "k.sqlite")
        c2 = j2.open()
        for i in range(4):
            audit.append(c2, key, f"2024-01-0{i + 1}T00:00:00.000000Z", "http", "api_access",
                         f"tok{i}", "success", {})
        rows = {r[0]: r[1:] for r in c2.execute("SELECT id, subject, mac FROM audit")}
        c2.execute("UPDATE audit SET subject = ?, mac = ? WHERE id = 3", rows[4])
        c2.execute("UPDATE audit SET subject = ?, mac = ? WHERE id = 4", rows[3])
        assert audit.verify(c2, key).first_bad_id == 3
        j2.close()
    finally:
        j.close()


# -- services: LEIS and the delivery window ---------------------------------------------


async def test_iaq_delay_does_not_hold_the_window_against_gpq(tmp_path: Path) -> None:
    cfg = config_from_dict({"limits": {"window": 2}, "services": {
        "leis": {"persons": 500, "delay_s": 3}, "nl": {"gather_s": 0.5}}})
    cfg = with_overrides(cfg, ["127.0.0.1:0"], str(tmp_path))
    sw = await build_switch(cfg)
    await sw.start()
    try:
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        for ctl in ("IA1", "IA2"):
            assert (await az.send(IAQ.format(ctl=ctl))).ok
        acks = [parse_output(await az.receive(5)) for _ in range(2)]
        assert all(a.key == "AM" and a.text.startswith("ACK") for a in acks)
        t0 = time.monotonic()
        assert (await az.send("GPQ.AZNLETS20.AX.*GP1.TXT\nNAM/GARCIA,MARIA")).ok
        got = None
        while got is None and time.monotonic() - t0 < 6:
            out = parse_output(await az.receive(6))
            if out.key == "GPR":
                got = time.monotonic() - t0
        assert got is not None and got < 1.5, got
        await az.close()
    finally:
        await sw.stop()



async def test_text_search_needs_a_token_that_may_see_text(
        monitored: MonitoredFactory) -> None:
    """Searching message text would reveal it word by word: only with see_text."""
    _sw, mon = await monitored(API)
    status, body = await get(mon.http_address, "/api/messages?text=SMITH", READER)
    assert status == 403 and "see message text" in body["error"]
    status, _ = await get(mon.http_address, "/api/messages?text=SMITH", OFFICER)
    assert status == 200
