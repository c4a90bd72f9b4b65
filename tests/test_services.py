"""Services end to end over real sockets: AX (LEIS), simulated states, NL fan-out, help files."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from nlets_switch.server.switch import Switch
from nlets_switch.services.settings import check_section
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import OutputMessage, parse_output
from tests.conftest_services import FAST, world

IAQ = ("IAQ.AZNLETS20.AX.*IA1.TXT\nPUR/C.ATN/DET J ROE.PHN/6025550100.NAM/GARCIA,MARIA."
       "DOB/19850312.SEX/F.POB/MM.CUS/Y.OFF/0399")
SMITH = "NAM/SMITH,JOHN.DOB/19500101.SEX/M"


async def client(sw: Switch, ori: str = "AZNLETS20") -> Client:
    host, port = sw.addresses[0]
    return await Client.connect(host, port, ori)


async def ask(c: Client, text: str, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    ans = await c.send(text)
    assert ans.ok, ans
    return parse_output(await c.receive(timeout))


def journal_rows(sw: Switch, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(f"file:{sw.journal.path}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def test_gpq_summary_then_full_record(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        c = await client(sw)
        gpr = await ask(c, "GPQ.AZNLETS20.AX.*GP1.TXT\nNAM/GARSIA,MARIA")
        assert (gpr.key, gpr.sender, gpr.receiver, gpr.control) == (
            "GPR", "VTICE0900", "AZNLETS20", "GP1")
        first = gpr.text.splitlines()[0]
        assert first.startswith("DIN/D000000001.NAM/GARCIA,MARIA.DOB/19850312")
        full = await ask(c, "GPQ.AZNLETS20.AX.*GP2.TXT\nDIN/D000000001")
        assert full.control == "GP2"
        for part in ("AKA/LOPEZ,MARIA", "KNOWN LOCATIONS", "3318 E BROADWAY BLVD",
                     "PRIOR DHS CONTACTS", "ICE", "ENCOUNTER"):
            assert part in full.text
        none = await ask(c, "GPQ.AZNLETS20.AX.TXT\nNAM/ZZYZXQWERTY,NOBODY")
        assert none.text.strip() == "NO RECORD"
        await c.close()
        await sw.journal.barrier()
        rows = journal_rows(sw, "SELECT count(*) FROM messages WHERE key = 'GPR' AND "
                                "link = 'VTICE0900' AND status = 'accepted'")
        assert rows[0][0] == 3


async def test_gpq_summary_limit_is_stated(tmp_path: Path) -> None:
    services = {**FAST, "leis": {"persons": 2000, "delay_s": 0, "limit": 2}}
    async with world(tmp_path, services) as sw:
        c = await client(sw)
        gpr = await ask(c, "GPQ.AZNLETS20.AX.TXT\nNAM/GARCIA,MARIA")
        lines = gpr.text.splitlines()
        assert len(lines) == 3 and lines[2].startswith("LIMIT OF 2 REACHED")
        await c.close()


async def test_iaq_ack_at_once_then_iar_after_delay(tmp_path: Path) -> None:
    services = {**FAST, "leis": {"persons": 500, "delay_s": 0.4}}
    async with world(tmp_path, services) as sw:
        c = await client(sw)
        t0 = time.monotonic()
        ack = await ask(c, IAQ)
        t_ack = time.monotonic() - t0
        assert (ack.key, ack.sender, ack.control) == ("AM", "VTICE0900", "IA1")
        assert ack.text.startswith("ACK")
        iar = parse_output(await c.receive(5))
        t_iar = time.monotonic() - t0
        assert (iar.key, iar.sender, iar.receiver, iar.control) == (
            "IAR", "VTICE0900", "AZNLETS20", "IA1")
        assert "RECORD FOUND DIN/D000000001" in iar.text
        assert "LAWFUL PERMANENT RESIDENT" in iar.text
        assert t_ack < 0.4 <= t_iar
        # A malformed IAQ (no DOB) is refused by the switch with ER .05.
        er = await ask(c, IAQ.replace("DOB/19850312.", ""))
        assert er.key == "ER" and er.sender == "NL0000000" and ".05." in er.text
        await c.close()


async def test_leis_default_size_builds_ten_thousand(tmp_path: Path) -> None:
    services = {"leis": {"delay_s": 0}}
    async with world(tmp_path, services) as sw:
        c = await client(sw)
        gpr = await ask(c, "GPQ.AZNLETS20.AX.TXT\nNAM/GARSIA,MARIA.DOB/19850312", 20)
        assert gpr.text.startswith("DIN/D000000001.")
        await c.close()
    conn = sqlite3.connect(tmp_path / "leis.sqlite")
    try:
        assert conn.execute("SELECT count(*) FROM person").fetchone()[0] >= 10_000
    finally:
        conn.close()


async def test_simulated_state_answers_hits_and_no_record(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        c = await client(sw)
        dr = await ask(c, f"DQ.AZNLETS20.TX.*D1.TXT\n{SMITH}")
        assert (dr.key, dr.sender, dr.receiver, dr.control) == ("DR", "TXNLETS00", "AZNLETS20",
                                                                "D1")
        assert "SMITH,JOHN" in dr.text and "D11111111" in dr.text
        for inquiry, rkey in (("RQ.AZNLETS20.CA.TXT\nLIC/123456.LIY/2027.LIT/PC", "RR"),
                              ("RQ.AZNLETS20.CA.TXT\nVIN/1FTEW1EP5KFA00001", "RR"),
                              ("KQ.AZNLETS20.FL.TXT\nOLN/D11111111", "KR"),
                              (f"IQ.AZNLETS20.WA.TXT\n{SMITH}.PUR/C.ATN/DET ROE", "IR"),
                              ("FQ.AZNLETS20.OH.TXT\nFBI/123456AA1", "FR")):
            out = await ask(c, inquiry)
            assert out.key == rkey and "NO RECORD" not in out.text, inquiry
        miss = await ask(c, "DQ.AZNLETS20.TX.TXT\nOLN/Z99999999")
        assert miss.key == "DR" and "NO RECORD" in miss.text.splitlines()
        # An ORI of a simulated state, served through its control terminal.
        am_ok = await c.send("AM.AZNLETS20.TX0000000.TXT\nHELLO")
        assert am_ok.ok
        await c.close()


async def test_states_configuration_subset_latency_no_answer(tmp_path: Path) -> None:
    services = {**FAST, "states": {"simulate": ["TX", "CA"], "latency_ms": 300,
                                   "no_answer": 1.0}}
    async with world(tmp_path, services) as sw:
        assert sw.online("TXNLETS00") and not sw.online("FLNLETS00")
        c = await client(sw)
        await c.send(f"DQ.AZNLETS20.TX.TXT\n{SMITH}")
        assert await c.drain(0.6) == []   # no_answer 1.0: silence, for time-out tests
        sm = await ask(c, f"DQ.AZNLETS20.FL.TXT\n{SMITH}")
        assert sm.key == "SM" and ".04." in sm.text  # FL not simulated, not signed on
        await c.close()
    services = {**FAST, "states": {"latency_ms": 300}}
    async with world(tmp_path / "b", services) as sw:
        c = await client(sw)
        t0 = time.monotonic()
        await ask(c, f"DQ.AZNLETS20.TX.TXT\n{SMITH}")
        assert time.monotonic() - t0 >= 0.3
        await c.close()


async def until_summary(c: Client, answer_as: str | None = None) -> list[OutputMessage]:
    """Everything delivered until the NL summary; answers NL's own inquiry NO RECORD."""
    got = []
    while True:
        m = parse_output(await c.receive(10))
        got.append(m)
        if m.sender == "NL0000000" and m.key in ("DQ", "RQ") and answer_as:
            await c.send(f"{'DR' if m.key == 'DQ' else 'RR'}.{answer_as}.NL0000000."
                         f"*{m.control}.TXT\nNO RECORD")
        if "SUMMARY" in m.text:
            return got


async def test_nl_fanout_hits_then_summary(tmp_path: Path) -> None:
    async with world(tmp_path, {**FAST, "nl": {"gather_s": 8}}) as sw:
        c = await client(sw)
        ans = await c.send(f"DQ.AZNLETS20.NL.*ALL1.TXT\n{SMITH}")
        assert ans.ok
        got = await until_summary(c, "AZNLETS20")
        # AZNLETS20 itself is a state control terminal: it is asked too.
        asked_az = [m for m in got if m.key == "DQ"]
        assert len(asked_az) == 1 and asked_az[0].sender == "NL0000000"
        hits = [m for m in got if m.key == "DR" and "HIT FROM" in m.text]
        summary = [m for m in got if m.key == "DR" and "SUMMARY" in m.text]
        assert len(hits) == 49  # every simulated state (all but AZ and NY)
        assert all(m.sender == "NL0000000" and m.control == "ALL1" for m in hits + summary)
        assert any(m.text.startswith("NL ALL-STATE DQ HIT FROM TX (TXNLETS00)") for m in hits)
        assert len(summary) == 1 and got[-1] is summary[0]
        text = summary[0].text
        assert "HIT (49)" in text and "NO RECORD IN (1): AZ" in text
        assert "OUT OF SERVICE (1): NY" in text and "NO ANSWER IN TIME (0)" in text
        # RQ with no record anywhere: no hits, only the summary.
        await c.send("RQ.AZNLETS20.NL.*ALL2.TXT\nVIN/1FTEW1EP5KFA99999")
        got = await until_summary(c, "AZNLETS20")
        rr = [m for m in got if m.key == "RR"]
        assert len(rr) == 1 and "NO RECORD IN (50)" in rr[0].text
        await c.close()
        await sw.journal.barrier()
        n = journal_rows(sw, "SELECT count(*) FROM messages WHERE link = 'NL0000000' "
                             "AND key = 'DR' AND destinations = 'AZNLETS20'")
        assert n[0][0] == 50  # every hit and the summary went through the journal


async def test_help_files_read_update_refuse(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        az = await client(sw)
        ny = await client(sw, "NYNLETS00")
        am = await ask(az, "AM.AZNLETS20.NLNLEHELP.*H1.TXT\nSEND")
        assert (am.key, am.sender, am.control) == ("AM", "NL0000000", "H1")
        assert "HELP FILE NLNLE" in am.text and "ALL-STATE" in am.text
        er = await ask(az, "AM.AZNLETS20.NYDRVHELP.TXT\nSEND")
        assert er.key == "ER" and ".19." in er.text and "NYDRVHELP" in er.text
        er = await ask(az, "AM.AZNLETS20.NYDRVUPDT.TXT\nNY DRIVER HELP")
        assert er.key == "ER" and ".02." in er.text and "ONLY ORIS OF NY" in er.text
        ok = await ask(ny, "AM.NYNLETS00.NYDRVUPDT.TXT\nNY DRIVER FILE: USE OLN/")
        assert "UPDATED" in ok.text
        got = await ask(az, "AM.AZNLETS20.NYDRVHELP.TXT\nSEND")
        assert got.text.endswith("NY DRIVER FILE: USE OLN/")
        # One AM may ask for several help files: each is answered.
        await az.send("AM.AZNLETS20.NLNLEHELP,NYDRVHELP.TXT\nSEND")
        both = [await az.receive(5), await az.receive(5)]
        assert sum("HELP FILE NLNLE" in t for t in both) == 1
        assert sum("NY DRIVER FILE" in t for t in both) == 1
        await az.close()
        await ny.close()
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute(
        "SELECT updated_by FROM help_files WHERE state = 'NY' AND file = 'DRV'").fetchall()
    assert rows == [("NYNLETS00",)]


def test_services_section_errors_name_key_paths() -> None:
    problems = check_section({"states": {"no_answer": 2, "simulate": ["ZZ"]},
                              "leis": {"persons": "many", "enabled": "yes"},
                              "nl": {"gather": 1}, "bogus": {}})
    text = "\n".join(problems)
    for path in ("services.states.no_answer", "services.states.simulate[0]",
                 "services.leis.persons", "services.leis.enabled", "services.nl.gather",
                 "services.bogus"):
        assert path in text, path


async def test_services_stop_cleanly_mid_gather(tmp_path: Path) -> None:
    services = {**FAST, "nl": {"gather_s": 30}}
    async with world(tmp_path, services) as sw:
        c = await client(sw)
        await c.send(f"DQ.AZNLETS20.NL.TXT\n{SMITH}")
        await asyncio.sleep(0.3)
        await c.close()
    # stop() returned well before the 30 s gather: the fan-out task was cancelled.
