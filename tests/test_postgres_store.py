"""The PostgreSQL store on a real (throwaway) PostgreSQL: migrations and their version
check, the hot path's journal (write, owed, expire, recover, one transaction per batch),
and the cold tables behind the same protocols as SQLite."""

from __future__ import annotations

import asyncio
import functools
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from nlets_switch.cli import main
from nlets_switch.errors import StoreError
from nlets_switch.ops import audit, msglog, retention
from nlets_switch.store.base import AuditEvent, HelpFile, MessageQuery
from nlets_switch.store.postgres import open_pg_store, redact
from nlets_switch.store.postgres_journal import PostgresJournal
from nlets_switch.store.postgres_schema import SCHEMA_VERSION
from nlets_switch.store.records import Batch, DeliveryRow, DoneRow, MessageRow

if TYPE_CHECKING:
    from tests.conftest_postgres import PgServer

pytest_plugins = ["tests.conftest_postgres"]

KEY = bytes(range(32))


def _msg(i: int, text: str = "AM.AZNLETS20.NY.TXT\nHELLO", at: float = 1000.0) -> MessageRow:
    return MessageRow(i, at + i, "AZNLETS20", "AM", "AZNLETS20", "NY", None, i, "accepted",
                      None, None, len("AM.AZNLETS20.NY.TXT\n"), text)


def _dlv(i: int, msg: int, link: str = "NYNLETS00", expires: float = 9e9) -> DeliveryRow:
    return DeliveryRow(i, msg, link, link, "NY", i, 2, "queued", 1000.0 + i, expires, 0)


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        return {r[0] for r in c.execute("SELECT tablename FROM pg_tables "
                                        "WHERE schemaname = 'public'")}


def test_migrate_makes_the_tables_once_and_says_so(pg_url: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["store", "migrate", "--store", pg_url]) == 0
    assert f"schema version 0 -> {SCHEMA_VERSION}" in capsys.readouterr().out
    assert {"meta", "messages", "deliveries", "counters", "audit", "help_files"} <= _tables(pg_url)
    assert main(["store", "migrate", "--store", pg_url]) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["store", "version", "--store", pg_url]) == 0
    assert f"schema version {SCHEMA_VERSION}" in capsys.readouterr().out


def test_a_newer_database_is_refused_in_one_line_and_nothing_is_written(
        pg_url: str, tmp_path: Path) -> None:
    assert main(["store", "migrate", "--store", pg_url]) == 0
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
        before = c.execute("SELECT count(*) FROM audit").fetchone()
    r = subprocess.run([sys.executable, "-m", "nlets_switch", "serve", "--store", pg_url,
                        "--listen", "127.0.0.1:0", "--http", "off", "--data-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "newer nlets-switch (schema version 99" in lines[0]
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM audit").fetchone() == before
        assert c.execute("SELECT value FROM meta WHERE name = 'schema_version'"
                         ).fetchone() == ("99",)
    assert main(["store", "migrate", "--store", pg_url]) == 2
    with pytest.raises(StoreError, match="newer"):
        PostgresJournal(pg_url).recover()


def test_serve_refuses_an_unreachable_database_in_one_line(tmp_path: Path,
                                                           pg_server: PgServer) -> None:
    url = f"postgresql://nlets@127.0.0.1:{pg_server.port}/no_such_db"
    r = subprocess.run([sys.executable, "-m", "nlets_switch", "serve", "--store", url,
                        "--listen", "127.0.0.1:0", "--http", "off", "--data-dir",
                        str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and "cannot connect" in r.stderr and "no_such_db" in r.stderr


def test_the_password_never_shows() -> None:
    assert redact("postgresql://nlets:s3cret@db1:5433/nlets") == \
        "postgresql://nlets:***@db1:5433/nlets"
    assert redact("postgresql://nlets@db1/nlets") == "postgresql://nlets@db1/nlets"


async def test_journal_writes_reads_back_what_is_owed_expires_and_recovers(pg_url: str) -> None:
    j = PostgresJournal(pg_url)
    assert j.recover().msg_id == 0
    j.start(asyncio.get_running_loop())
    try:
        errors: list[BaseException | None] = []
        b = Batch(messages=[_msg(1), _msg(2, "AM.AZNLETS20.NY.TXT\nSECOND\n")],
                  deliveries=[_dlv(1, 1), _dlv(2, 2), _dlv(3, 2, "CANLETS00", expires=1500.0)],
                  counters={"id:msg": 2, "id:dlv": 3, "out:NYNLETS00": 2})
        j.write(b, errors.append)
        await j.barrier()
        assert errors == [None]
        fut: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        j.owed("NYNLETS00", 0, 10, lambda rows, e: fut.set_result((rows, e)))
        rows, err = await fut  # type: ignore[misc]
        assert err is None and [r.id for r in rows] == [1, 2]
        assert [r.body for r in rows] == ["HELLO", "SECOND"]  # body only, no trailing EOL
        # Sent then acknowledged: no longer owed.
        j.write(Batch(sent={1: 1001.0}, done=[DoneRow("acked", 1002.0, 1001.0, 1)]),
                errors.append)
        fut2: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        j.owed("NYNLETS00", 0, 10, lambda rows, e: fut2.set_result(rows))
        assert [r.id for r in await fut2] == [2]  # type: ignore[attr-defined]
        fut3: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        j.expire(2000.0, 100, lambda rows, e: fut3.set_result(rows))
        expired = await fut3
        assert [(r.delivery_id, r.link) for r in expired] == [(3, "AZNLETS20")]  # type: ignore[attr-defined]
        # A duplicate id fails that batch only, and the next one commits.
        j.write(Batch(messages=[_msg(2)]), errors.append)
        j.write(Batch(messages=[_msg(3)]), errors.append)
        await j.barrier()
        assert errors[-2] is not None and errors[-1] is None
    finally:
        j.close()
    again = PostgresJournal(pg_url)
    try:
        rec = again.recover()
    finally:
        again.close()
    assert (rec.msg_id, rec.dlv_id, rec.counters["out:NYNLETS00"]) == (3, 3, 2)


async def test_cold_tables_through_the_journal_and_a_tool_store(pg_url: str) -> None:
    j = PostgresJournal(pg_url)
    j.start(asyncio.get_running_loop())
    try:
        done: list[BaseException | None] = []
        j.write(Batch(messages=[_msg(1, at=100.0), _msg(2, "AM.AZNLETS20.NY.TXT\nFindMe here")],
                      deliveries=[_dlv(1, 1), _dlv(2, 2)]), done.append)
        j.write(Batch(done=[DoneRow("acked", 200.0, 150.0, 1)]), done.append)
        # The ops/ functions run on the writer's connection, as with SQLite.
        for i in range(3):
            # Operations cross to the writer process pickled: partials, no lambdas.
            await j.call(functools.partial(audit.append, key=KEY,
                                           ts=f"2026-01-0{i + 1}T00:00:00Z", component="test",
                                           type_="sign_on", subject=f"ORI{i}",
                                           outcome="success", detail={"n": i}))
        hits = await j.call(functools.partial(msglog.search, q=msglog.Query(text="findme")))
        assert [h["id"] for h in hits] == [2]  # case-insensitive substring
        assert done == [None, None]
    finally:
        j.close()
    with open_pg_store(pg_url) as store:
        assert audit.verify(store, KEY).ok
        assert store.count_messages(MessageQuery(ori="NY")) == 2
        assert store.owed_per_link() == {"NYNLETS00": 1}
        m = store.get_message(2, with_text=True, visible_to="NYNLETS00")
        assert m is not None and m.text is not None and "FindMe" in m.text
        assert store.get_message(2, visible_to="CANLETS00") is None
        # Retention: the closed old message goes; the audit prefix is anchored.
        pruned = retention.prune(store, now=200_000.0, messages_days=1.0, key=KEY)
        assert (pruned.messages, pruned.deliveries, pruned.audit) == (1, 1, 0)
        assert store.get_message(1) is None and store.get_message(2) is not None
        n = store.prune_audit("2026-01-02T00:00:00Z", lambda rid, mac: f"tag{rid}")
        assert n == 1 and store.audit_anchor() is not None
        assert [r.id for r in store.audit_records()] == [2, 3]
        rec = store.append_audit(AuditEvent("2026-01-04T00:00:00Z", "t", "x", "s", "success",
                                            "{}"), lambda rid, prev: f"{rid}:{prev[:4]}")
        assert rec.id == 4
        store.seed_help_files([HelpFile("NY", "ABC", "ONE", 1.0, "seed")])
        store.seed_help_files([HelpFile("NY", "ABC", "TWO", 2.0, "seed")])
        hf = store.help_file("NY", "ABC")
        assert hf is not None and hf.text == "ONE"
        store.put_help_file(HelpFile("NY", "ABC", "THREE", 3.0, "NYNLETS00"))
        hf = store.help_file("NY", "ABC")
        assert hf is not None and (hf.text, hf.updated_by) == ("THREE", "NYNLETS00")

