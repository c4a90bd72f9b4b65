"""Custody on PostgreSQL: a node killed with kill -9 loses nothing it acknowledged; the
database stopped under load means N to senders (never an A for what is not committed),
links stay up and traffic resumes by itself; the message log and the audit trail of a
switch on PostgreSQL."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from nlets_switch.cli import main
from nlets_switch.config import demo_config, with_overrides
from nlets_switch.ops import audit, msglog
from nlets_switch.server.switch import Switch
from nlets_switch.store import textcrypt
from nlets_switch.store.postgres import open_pg_store
from nlets_switch.store.postgres_journal import PostgresJournal
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory, free_port
from tests.test_durability import start_switch

if TYPE_CHECKING:
    from tests.conftest_postgres import PgServer

pytest_plugins = ["tests.conftest_postgres"]
# The PostgreSQL make_switch (each switch on the test's own database).
from tests.test_postgres_switch import make_switch  # noqa: E402

__all__ = ["make_switch"]

KEY = bytes(range(32))


async def test_kill_9_after_acknowledgement_loses_nothing(tmp_path: Path, pg_url: str) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = start_switch(data, port, "--store", pg_url)
    n = 200
    sent: list[str] = []
    try:
        az = await Client.connect("127.0.0.1", port, "AZNLETS20")
        futs = []
        for i in range(n):
            text = f"AM.AZNLETS20.NY.*C{i}.TXT\nHELD MESSAGE {i:04d} " + "X" * (i % 37)
            sent.append(text)
            futs.append(az.send_nowait(text))
        answers = await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert all(a.ok for a in answers)  # every one acknowledged: custody taken
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    await az.close(sign_off=False)

    proc = start_switch(data, port, "--store", pg_url)
    try:
        ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
        got = [parse_output(await ny.receive(10)) for _ in range(n)]
        await ny.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    want = [s.split("TXT\n", 1)[1] for s in sent]
    assert [g.text for g in got] == want  # all of them, in order, byte for byte
    assert [g.output_no for g in got] == list(range(1, n + 1))
    assert not (data / "journal.sqlite").exists()  # nothing went to SQLite


async def test_database_outage_under_load_means_n_and_traffic_resumes(
        make_switch: SwitchFactory, connect: ClientFactory, pg_server: PgServer) -> None:
    # The load outruns the per-ORI rate limit (200/s), and during the outage every
    # M is answered N at once; the limit is not what this test is about.
    sw = await make_switch({"limits": {"rate_per_ori": 100_000, "rate_burst": 100_000}})
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00")
    acked: list[str] = []
    refused = 0
    received: set[str] = set()

    async def drain() -> None:
        while True:
            received.add(parse_output(await ny.receive(None)).text)

    async def send_for(seconds: float) -> tuple[int, int]:
        nonlocal refused
        ok = n = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            body = f"LOAD {len(acked) + refused:05d}"
            futs = [az.send_nowait(f"AM.AZNLETS20.NY.TXT\n{body}{k}") for k in range(5)]
            for k, a in enumerate(await asyncio.gather(*futs)):
                n += 1
                if a.ok:
                    ok += 1
                    acked.append(f"{body}{k}")
                else:
                    refused += 1
            await asyncio.sleep(0.01)
        return ok, n

    reader = asyncio.create_task(drain())
    try:
        ok, n = await send_for(1.0)
        assert ok == n > 0
        pg_server.stop("fast")
        try:
            ok, n = await send_for(3.0)
            # Nothing can be committed: every message is refused (N), none acknowledged,
            # and the links stay up.
            assert n > 0 and ok == 0
        finally:
            pg_server.start()
        # It comes back by itself: acknowledgements again within a few seconds.
        deadline = time.monotonic() + 15
        while True:
            ok, n = await send_for(0.5)
            if ok == n > 0:
                break
            assert time.monotonic() < deadline, "traffic did not resume"
        # Every acknowledged message reaches NY, over the same links.
        for _ in range(150):
            if set(acked) <= received:
                break
            await asyncio.sleep(0.1)
        assert set(acked) <= received
    finally:
        reader.cancel()
    assert isinstance(sw.journal, PostgresJournal) and sw.journal.unavailable > 0
    # And each of them is in the database (sealed at rest: opened with the keyring).
    with psycopg.connect(sw.journal.url) as c:
        texts = {textcrypt.open_text(r[1], r[0]).split("\n", 1)[1] for r in c.execute(
            "SELECT id, text FROM messages WHERE origin = 'AZNLETS20' AND key = 'AM'")}
    assert set(acked) <= texts


async def test_message_log_and_audit_of_a_switch_on_postgres(
        tmp_path: Path, pg_url: str, connect: ClientFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    from nlets_switch.server.app import build_switch

    (tmp_path / "audit.key").write_text(KEY.hex())
    (tmp_path / "audit.key").chmod(0o600)
    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(tmp_path), store=pg_url)
    sw: Switch = await build_switch(cfg)
    await sw.start()
    try:
        az = await connect(sw, "AZNLETS20")
        ny = await connect(sw, "NYNLETS00")
        assert (await az.send("DQ.AZNLETS20.NY.*DQ0001.TXT\nNAM/SMITH,JOHN.DOB/19500101."
                              "SEX/M")).ok
        await ny.receive(5)
        # NLQ: the log answers through the journal's writer (on PostgreSQL).
        # RAND (issue 13): TYP, BEG, END and FND/NAM; an acknowledgement, then the NLR.
        assert (await ny.send("NLQ.NYNLETS00.NL.TXT\nTYP/DQ.BEG/200001010000."
                              "END/209912312359.NAM/SMITH,JOHN")).ok
        assert parse_output(await ny.receive(10)).text.startswith("ACK")
        answer = parse_output(await ny.receive(10))
        assert answer.key == "NLR" and "AZNLETS20" in answer.text
        await asyncio.sleep(0.1)
        await sw.journal.barrier()
    finally:
        await sw.stop()
    assert not (tmp_path / "journal.sqlite").exists()
    with open_pg_store(pg_url, readonly=True) as store:
        hits = msglog.search(store, msglog.Query(key="DQ", text="smith"))
        assert len(hits) == 1 and hits[0]["origin"] == "AZNLETS20"
        kinds = [(r.type, r.subject) for r in store.audit_records()]
        assert ("sign_on", "AZNLETS20") in kinds and ("log_access", "NYNLETS00") in kinds
        assert audit.verify(store, KEY).ok
    # The tools read the same store (--store), and their own access is audited there.
    where = ["--store", pg_url, "--data-dir", str(tmp_path)]
    capsys.readouterr()
    assert main(["log", "search", "--key", "DQ", "--text", "SMITH", *where]) == 0
    assert "AZNLETS20" in capsys.readouterr().out
    assert main(["audit", "verify", *where]) == 0
    assert "records verified" in capsys.readouterr().out
    assert not (tmp_path / "journal.sqlite").exists()
    with open_pg_store(pg_url, readonly=True) as store:
        assert [r.type for r in store.audit_records()][-2:] == ["log_access", "audit_verify"]
    # A hand edit breaks the chain at that record.
    with psycopg.connect(pg_url, autocommit=True) as c:
        rid = c.execute("SELECT min(id) FROM audit WHERE type = 'sign_on'").fetchone()[0]
        c.execute("UPDATE audit SET outcome = 'failure' WHERE id = %s", (rid,))
    with open_pg_store(pg_url, readonly=True) as store:
        res = audit.verify(store, KEY)
        assert not res.ok and res.first_bad_id == rid
    assert main(["audit", "verify", *where]) == 1
    assert f"BROKEN at record {rid}" in capsys.readouterr().out


async def test_an_ori_signing_on_during_an_outage_gets_what_is_owed_when_it_returns(
        make_switch: SwitchFactory, connect: ClientFactory, pg_server: PgServer) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    for i in range(3):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT\nHELD {i}")).ok
        assert parse_output(await az.receive(5)).key == "SM"  # NY not signed on: held
    pg_server.stop("fast")
    try:
        ny = await connect(sw, "NYNLETS00")  # signs on; its read-back cannot run yet
        assert not [t async for t in _within(ny, 1.0)]
    finally:
        pg_server.start()
    # Nothing new is sent: the read-back waited for the database and runs now.
    got = [parse_output(await ny.receive(10)).text for _ in range(3)]
    assert got == ["HELD 0", "HELD 1", "HELD 2"]


async def _within(c: Client, seconds: float) -> AsyncIterator[str]:
    """What ``c`` receives within ``seconds``."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        try:
            yield await c.receive(left)
        except TimeoutError:
            return


async def audited_switch(tmp_path: Path, make_switch: SwitchFactory) -> Switch:
    """A switch built as serve builds it (its audit trail on the database), keyed by KEY."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "audit.key").write_text(KEY.hex())
    (tmp_path / "data" / "audit.key").chmod(0o600)
    return await make_switch(build=True)


async def test_audit_records_made_during_an_outage_reach_the_trail_when_it_returns(
        tmp_path: Path, make_switch: SwitchFactory, connect: ClientFactory,
        pg_server: PgServer) -> None:
    # Every security decision is audited: a sign-on decided while the database is
    # down is kept (bounded) and written once it is back, in the verified chain.
    sw = await audited_switch(tmp_path, make_switch)
    await connect(sw, "AZNLETS20")
    await sw.journal.barrier()
    pg_server.stop("fast")
    try:
        await connect(sw, "NYNLETS00")  # decided and audited during the outage
        await asyncio.sleep(0.5)
    finally:
        pg_server.start()
    url = sw.journal.url
    deadline = time.monotonic() + 20
    while True:
        with open_pg_store(url, readonly=True) as store:
            kinds = [(r.type, r.subject) for r in store.audit_records()]
            ok = audit.verify(store, KEY).ok
        if ("sign_on", "NYNLETS00") in kinds:
            break
        assert time.monotonic() < deadline, f"the outage's audit record was lost: {kinds}"
        await asyncio.sleep(0.3)
    assert ok and ("sign_on", "AZNLETS20") in kinds


async def test_audit_records_still_waiting_at_stop_are_counted_lost(
        tmp_path: Path, make_switch: SwitchFactory, connect: ClientFactory,
        pg_server: PgServer) -> None:
    # Stopped during an outage, the switch tries the waiting records once more and
    # counts (and logs) what it could not write: never a silent loss.
    sw = await audited_switch(tmp_path, make_switch)
    trail = sw.audit_sink
    assert isinstance(trail, audit.AuditTrail)
    await sw.journal.barrier()
    pg_server.stop("fast")
    try:
        await connect(sw, "NYNLETS00")
        for _ in range(50):
            if trail.pending:
                break
            await asyncio.sleep(0.1)
        assert trail.pending >= 1 and trail.lost == 0
        await sw.stop()
        assert trail.pending == 0 and trail.lost >= 1
    finally:
        pg_server.start()
