"""The message log: real traffic through an in-process switch, then search, show, export,
the NLQ/NFQ answers and their visibility rule, and the ``log`` commands while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

import pytest

from nlets_switch.config import demo_config, with_overrides
from nlets_switch.core.events import MemoryAudit
from nlets_switch.errors import ErCode, MessageError
from nlets_switch.ops import msglog, rand
from nlets_switch.ops.msglog import Query
from nlets_switch.server.switch import Switch
from nlets_switch.store.journal import connect
from nlets_switch.tools.client import Client

DQ = "DQ.AZNLETS20.NY.*DQ0001.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M"
AM = "AM.AZ0070500.NY.TXT\nMEET AT NOON"
BAD = "RQ.AZNLETS20.NY.TXT\nLIC/123456.LIT/PC"


@dataclass
class World:
    sw: Switch
    data: Path
    ids: dict[str, int]

    def ro(self) -> sqlite3.Connection:
        return connect(self.data / "journal.sqlite", readonly=True)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    """A running switch with a little traffic: a DQ and an AM (both to NY, which is
    signed on), a rejected RQ, and an AM from NY back to AZ."""
    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(tmp_path))
    sw = Switch(cfg, audit=MemoryAudit())
    await sw.start()
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ag = await Client.connect(host, port, "AZ0070500")
    ny = await Client.connect(host, port, "NYNLETS00")
    ids: dict[str, int] = {}
    try:
        for name, c, text in (("dq", az, DQ), ("am", ag, AM), ("bad", az, BAD),
                              ("reply", ny, "AM.NYNLETS00.AZNLETS20.TXT\nRECEIVED")):
            assert (await c.send(text)).ok
            last = sw.engine.ledger.msg_id
            ids[name] = last if name != "bad" else last - 1  # ER follows it
        await ny.receive(5)
        await ny.receive(5)
        await az.receive(5)  # the ER
        await az.receive(5)  # NY's reply
        await sw.journal.barrier()
        await asyncio.sleep(0.05)  # the acks of the deliveries
        await sw.journal.barrier()
        yield World(sw, tmp_path, ids)
    finally:
        for c in (az, ag, ny):
            await c.close()
        await sw.stop()


async def test_search_finds_traffic_by_ori_key_control_text_and_time(world: World) -> None:
    with contextlib.closing(world.ro()) as conn:
        everything = msglog.search(conn, Query())
        assert [r["id"] for r in everything] == sorted((r["id"] for r in everything),
                                                       reverse=True)
        dq = msglog.search(conn, Query(key="DQ"))
        assert [r["id"] for r in dq] == [world.ids["dq"]]
        r = dq[0]
        assert r["origin"] == "AZNLETS20" and r["destinations"] == ["NY"]
        assert r["control"] == "DQ0001" and r["status"] == "accepted"
        assert r["deliveries"] == [{"receiver": "NYNLETS00", "link": "NYNLETS00",
                                    "addressed": "NY", "state": "acked"}]
        assert "text" not in r
        assert [x["id"] for x in msglog.search(conn, Query(control="DQ0001"))] == [r["id"]]
        assert [x["id"] for x in msglog.search(conn, Query(text="smith,john"))] == [r["id"]]
        assert msglog.search(conn, Query(text="100%")) == []
        # NY received the DQ and the AM, and sent the reply.
        ny = {x["id"] for x in msglog.search(conn, Query(ori="NYNLETS00"))}
        assert {world.ids["dq"], world.ids["am"], world.ids["reply"]} <= ny
        assert world.ids["bad"] not in ny
        t = msglog.search(conn, Query(key="DQ"))[0]["received_at"]
        ts = msglog.parse_when(t, 0)
        assert msglog.search(conn, Query(key="DQ", since=ts + 1)) == []
        assert len(msglog.search(conn, Query(key="DQ", since=ts - 1, until=ts + 1))) == 1
        assert len(msglog.search(conn, Query(limit=2))) == 2


async def test_show_gives_the_whole_life_and_text_only_when_asked(world: World) -> None:
    with contextlib.closing(world.ro()) as conn:
        bad = msglog.get(conn, world.ids["bad"], with_text=False)
        assert bad is not None and bad["status"] == "rejected"
        assert bad["reason"].startswith(".22.")
        assert "text" not in bad
        (er,) = bad["caused"]
        assert er["key"] == "ER" and er["code"] == ".22. INVALID MESSAGE FORMAT"
        assert er["deliveries"][0]["receiver"] == "AZNLETS20"
        dq = msglog.get(conn, world.ids["dq"], with_text=True)
        assert dq is not None and dq["text"] == DQ
        (d,) = dq["deliveries"]
        assert d["state"] == "acked" and d["sent_at"] and d["done_at"] and not d["open"]
        assert msglog.get(conn, 999_999, with_text=True) is None


async def test_export_jsonl_and_csv_with_progress(world: World) -> None:
    with contextlib.closing(world.ro()) as conn:
        n_all = len(msglog.search(conn, Query(limit=None)))
        buf = io.StringIO()
        calls: list[tuple[int, int]] = []
        n = msglog.export(conn, Query(limit=None), "jsonl", buf,
                          lambda d, t: calls.append((d, t)))
        rows = [json.loads(line) for line in buf.getvalue().splitlines()]
        assert n == len(rows) == n_all
        assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)  # oldest first
        assert all("text" not in r for r in rows)
        assert calls[0] == (0, n_all) and calls[-1] == (n_all, n_all)
        buf = io.StringIO()
        assert msglog.export(conn, Query(key="DQ", limit=None), "csv", buf,
                             with_text=True) == 1
        (row,) = list(csv.DictReader(io.StringIO(buf.getvalue())))
        assert row["key"] == "DQ" and row["deliveries"] == "NYNLETS00:acked"
        assert row["text"] == DQ


#: RAND's mandatory period (BEG, END), wide enough for every test's traffic.
PERIOD = [("BEG", "200001010000"), ("END", "209912312359")]
KEYS = frozenset({"AM", "DQ", "RQ", "ER", "SM"})


def nlq(conn: sqlite3.Connection, ori: str, *fields: tuple[str, str], ct: bool = False) -> str:
    return rand.answer_rand(conn, ori, [*fields[:1], *PERIOD, *fields[1:]], KEYS,
                            control_terminal=ct, tz=UTC)


async def test_nlq_lists_only_what_the_requester_sent_or_received(world: World) -> None:
    # Adapted to RAND (issue 13): TYP/BEG/END and FND or NAM replace MKE/CTL/ORI/LIM,
    # and nothing found answers NOT ON FILE (Nlets) where it said NO RECORD.
    with contextlib.closing(world.ro()) as conn:
        az = nlq(conn, "AZ0070500", ("TYP", "AM"), ("FND", "NOON"))
        lines = az.splitlines()
        # AZ0070500 sent the AM to NY; NY's reply went to AZNLETS20, not to it.
        assert lines[0] == "1 MESSAGE"
        assert lines[1].startswith(f"MID/{world.ids['am']} ")
        assert lines[1].endswith(" AM AZ0070500 NY")
        ny = nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "E"))
        assert ny.splitlines()[0] == "2 MESSAGES"
        assert nlq(conn, "TXNLETS00", ("TYP", "DQ"), ("NAM", "SMITH")) == "NOT ON FILE"
        # SRC/ narrows, never widens: TX asking about AZ's traffic sees nothing.
        assert nlq(conn, "TXNLETS00", ("TYP", "DQ"), ("NAM", "SMITH"),
                   ("SRC", "AZNLETS20")) == "NOT ON FILE"
        hit = nlq(conn, "NYNLETS00", ("TYP", "DQ,AM"), ("NAM", "JOHN SMITH"))
        assert "*DQ0001" in hit and f"MID/{world.ids['dq']} " in hit


async def test_rand_fields_and_rules(world: World) -> None:
    with contextlib.closing(world.ro()) as conn:
        dq, am, reply = (f"MID/{world.ids[k]} " for k in ("dq", "am", "reply"))
        # NAM: components in any order, * after the first character.
        for name in ("SMITH,JOHN", "JOHN SMITH", "SMI* JO*", "JOHN"):
            assert dq in nlq(conn, "AZNLETS20", ("TYP", "DQ"), ("NAM", name)), name
        assert nlq(conn, "AZNLETS20", ("TYP", "DQ"), ("NAM", "JANE SMITH")) == "NOT ON FILE"
        # AND narrows, ORR widens.
        assert nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "NOON"), ("AND", "MEET")) \
            .splitlines()[0] == "1 MESSAGE"
        assert nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "NOON"),
                   ("AND", "NIGHT")) == "NOT ON FILE"
        both = nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "NOON"), ("ORR", "RECEIVED"))
        assert am in both and reply in both
        # SRC and DST ORIs.
        assert nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "E"),
                   ("SRC", "NYNLETS00")).splitlines()[1].startswith(reply)
        only = nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "E"), ("DST", "AZNLETS20"))
        assert only.splitlines()[0] == "1 MESSAGE" and reply in only
        # BEG/END bound the period.
        assert nlq(conn, "NYNLETS00", ("TYP", "AM"), ("FND", "E")) != "NOT ON FILE"
        assert rand.answer_rand(conn, "NYNLETS00", [
            ("TYP", "AM"), ("BEG", "200001010000"), ("END", "200001020000"), ("FND", "E")],
            KEYS) == "NOT ON FILE"
        # Keys the switch does not know are named in a warning line.
        warn = nlq(conn, "NYNLETS00", ("TYP", "AM,ZZQ"), ("FND", "NOON"))
        assert warn.splitlines()[:2] == ["WARNING: KEYS NOT SEARCHED: ZZQ", "1 MESSAGE"]
        # A control terminal sees its state's traffic; an agency only its own.
        assert am in nlq(conn, "AZNLETS20", ("TYP", "AM"), ("FND", "NOON"), ct=True)
        assert nlq(conn, "AZNLETS20", ("TYP", "AM"), ("FND", "NOON")) == "NOT ON FILE"
        # The old fields are refused, naming the new ones.
        with pytest.raises(MessageError) as info:
            nlq(conn, "AZNLETS20", ("TYP", "AM"), ("FND", "NOON"), ("MKE", "AM"))
        assert info.value.code == ErCode.FORMAT and "TYP BEG END" in info.value.detail


async def test_nfq_returns_the_message_to_sender_and_receiver_only(world: World) -> None:
    mid = str(world.ids["dq"])
    with contextlib.closing(world.ro()) as conn:
        for ori in ("AZNLETS20", "NYNLETS00"):
            text = msglog.answer_nfq(conn, ori, [("MID", mid)])
            lines = text.splitlines()
            assert lines[0].startswith(f"MID/{mid} ") and "DQ AZNLETS20 NY *DQ0001" in lines[0]
            assert "TO/NYNLETS00 ACKED" in lines
            assert text.endswith(DQ)
        assert msglog.answer_nfq(conn, "AZ0070500", [("MID", mid)]) == "NO RECORD"
        assert msglog.answer_nfq(conn, "AZNLETS20", [("MID", "999999")]) == "NO RECORD"


def test_parse_when_accepts_relative_and_iso() -> None:
    now = 1_700_000_000.0
    assert msglog.parse_when("30m", now) == now - 1800
    assert msglog.parse_when("1h", now) == now - 3600
    assert msglog.parse_when("2d", now) == now - 2 * 86400
    assert msglog.parse_when("2024-01-02", now) == 1704153600.0
    assert msglog.parse_when("2024-01-02", now, end_of_day=True) == pytest.approx(1704239999.999)
    assert msglog.parse_when("2024-01-02T12:00Z", now) == 1704196800.0
    with pytest.raises(ValueError):
        msglog.parse_when("yesterday", now)


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", *args, "--data-dir", str(data)],
                          capture_output=True, text=True, timeout=30)


async def test_log_commands_work_while_the_switch_runs(world: World) -> None:
    data = world.data

    def run_all() -> list[subprocess.CompletedProcess[str]]:
        return [
            _cli(data, "log", "search", "--key", "DQ", "--since", "1h"),
            _cli(data, "log", "search", "--ori", "NYNLETS00", "--json"),
            _cli(data, "log", "show", str(world.ids["bad"])),
            _cli(data, "log", "export", "--format", "csv", "--progress"),
            _cli(data, "log", "search", "--key", "ZZ"),
            _cli(data, "audit", "verify"),
        ]

    table, js, show, exp, none, verify = await asyncio.to_thread(run_all)
    assert table.returncode == 0, table.stderr
    assert "DQ0001" in table.stdout and "NYNLETS00 acked" in table.stdout
    assert "SMITH" not in table.stdout  # no text in a search
    assert js.returncode == 0 and all(json.loads(x) for x in js.stdout.splitlines())
    assert show.returncode == 0 and "refused: .22." in show.stdout  # was "rejected: .22."
    assert "caused     ER" in show.stdout
    assert exp.returncode == 0 and exp.stdout.startswith("id,received_at,key")
    assert "exporting [" in exp.stderr and "100%" in exp.stderr
    assert none.returncode == 1
    assert verify.returncode == 0 and "5 records verified" in verify.stdout, verify.stderr
    # Each use was audited (the switch's writer and the CLI share the chain).
    await world.sw.journal.barrier()
    with contextlib.closing(world.ro()) as conn:
        n = conn.execute("SELECT COUNT(*) FROM audit WHERE type = 'log_access' AND "
                         "component = 'cli'").fetchone()[0]
    assert n == 5
