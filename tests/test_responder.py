"""The LEIS responder out of process: a real subprocess signs on as VTICE0900."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import yaml

from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest import SERVICE_CREDENTIAL
from tests.conftest_services import FAST, world

IAQ = ("IAQ.AZNLETS20.AX.*OOP1.TXT\nPUR/C.ATN/DET J ROE.PHN/6025550100.NAM/HERNANDEZ,ANA."
       "DOB/19920920.SEX/F.POB/MM.CUS/N.OFF/0399")


async def test_leis_responder_subprocess_answers_iaq(tmp_path: Path) -> None:
    services = {**FAST, "leis": {"persons": 500, "delay_s": 0}}
    cfg = tmp_path / "responder.yaml"
    cfg.write_text(yaml.safe_dump({"services": services}))
    async with world(tmp_path / "switch", services) as sw:
        assert sw.links["VTICE0900"].kind == "local"
        host, port = sw.addresses[0]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nlets_switch", "responder", "leis",
            "--connect", f"{host}:{port}", "--config", str(cfg),
            "--data-dir", str(tmp_path / "responder"), "--log-level", "warning",
            "--credential", SERVICE_CREDENTIAL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"signed on as 1 ORI(s): VTICE0900" in line
            # The TCP link replaced the in-process endpoint (PROTOCOL part 1).
            assert sw.links["VTICE0900"].kind == "tcp"
            c = await Client.connect(host, port, "AZNLETS20")
            assert (await c.send(IAQ)).ok
            ack = parse_output(await c.receive(10))
            iar = parse_output(await c.receive(10))
            assert (ack.key, ack.sender, ack.control) == ("AM", "VTICE0900", "OOP1")
            assert ack.text.startswith("ACK")
            assert (iar.key, iar.sender, iar.receiver, iar.control) == (
                "IAR", "VTICE0900", "AZNLETS20", "OOP1")
            assert "RECORD FOUND DIN/D000000005" in iar.text
            await c.close()
            # The switch drops the responder's link: it signs on again by itself.
            # (Once the responder has acknowledged the IAQ: a link dropped
            # before that gets the IAQ again, at least once, and answers twice.)
            first = sw.links["VTICE0900"]
            for _ in range(100):
                if not first.outstanding:
                    break
                await asyncio.sleep(0.02)
            sw.drop("VTICE0900")
            for _ in range(100):
                now = sw.links.get("VTICE0900")
                if now is not None and now is not first and now.kind == "tcp":
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the responder did not sign on again")
            c = await Client.connect(host, port, "AZNLETS20")
            assert (await c.send(IAQ)).ok
            assert parse_output(await c.receive(10)).text.startswith("ACK")
            assert parse_output(await c.receive(10)).key == "IAR"
            await c.close()
        finally:
            proc.terminate()
            rc = await asyncio.wait_for(proc.wait(), 10)
        assert rc == 0
        # The answers came over the responder's link and went through the journal.
        await sw.journal.barrier()
        conn = sqlite3.connect(f"file:{sw.journal.path}?mode=ro", uri=True)
        rows = conn.execute("SELECT key FROM messages WHERE link = 'VTICE0900' "
                            "AND status = 'accepted' ORDER BY id").fetchall()
        conn.close()
        assert rows == [("AM",), ("IAR",)] * 2
        # With the responder gone, the in-process service answers for AX again.
        for _ in range(50):
            if sw.online("VTICE0900"):
                break
            await asyncio.sleep(0.05)
        assert sw.links["VTICE0900"].kind == "local"
        c = await Client.connect(host, port, "AZNLETS20")
        assert (await c.send(IAQ)).ok
        assert parse_output(await c.receive(10)).text.startswith("ACK")
        assert parse_output(await c.receive(10)).key == "IAR"
        await c.close()
    assert (tmp_path / "responder" / "leis.sqlite").exists()
