"""An inquiry an adapter cannot answer is not dropped in silence: it is logged, and the
sender is owed SM .01. (PROTOCOL part 4) -- through the adapter API's dispatch, the
out-of-process responder, and (once services/local.py uses dispatch) the switch itself."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import structlog
import yaml
from structlog.testing import capture_logs

from nlets_switch.config import demo_config
from nlets_switch.core.directory import Directory
from nlets_switch.services import adapter as ad
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_message, parse_output
from nlets_switch.wire.schema import load_schemas
from tests.conftest import SERVICE_CREDENTIAL, free_port
from tests.conftest_services import FAST, world
from tests.test_durability import start_switch

SCHEMAS = load_schemas()
LQ = ad.Inquiry("LQ", "AZNLETS20", "TXNLETS00", "Q7", "PLS ADVISE STATUS OF WARRANT", {})


class Picky:
    """An adapter that answers DQ only when it has an OLN."""

    API_VERSION = ad.API_VERSION
    name = "picky"
    version = "1"
    keys = frozenset({"DQ"})
    schema_dirs: tuple[Path, ...] = ()

    def __init__(self) -> None:
        self.answered: list[str] = []

    def check_config(self, section: Any) -> list[str]:
        return []

    def oris(self, directory: Directory, section: Any) -> tuple[str, ...]:
        return ("TXNLETS00",)

    async def start(self, ctx: ad.Context) -> None:
        pass

    async def handle(self, ctx: ad.Context, inquiry: ad.Inquiry) -> None:
        if "OLN" not in inquiry.fields:
            raise ad.NotTaken("picky answers DQ by OLN only")
        self.answered.append(inquiry.fields["OLN"])

    async def stop(self) -> None:
        pass


def _ctx(adapter: Picky) -> ad.Context:
    async def send(link: str, text: str) -> None:
        raise AssertionError("not expected")

    return ad.Context(adapter.name, None, {}, Path("."), ("TXNLETS00",),
                      Directory(demo_config().entries), SCHEMAS, send)


async def test_no_adapter_for_an_inquiry_gives_sm_01_and_a_warning() -> None:
    with capture_logs() as logs:
        sm = await ad.dispatch(None, None, LQ, schemas=SCHEMAS,
                               log=structlog.get_logger(), addressed="TX")
    assert sm is not None
    msg = parse_message(sm)
    assert (msg.key, msg.origin, msg.destinations, msg.control) == (
        "SM", "NL0000000", ("AZNLETS20",), "Q7")
    assert msg.body.splitlines() == [
        ".01. USER DOES NOT RESPOND TO MSG TYPE, NLETS WILL NOT FORWARD",
        "DESTINATION: TX",
        "ORIGINAL MESSAGE",
        "LQ.AZNLETS20.TX.*Q7.TXT",
        "PLS ADVISE STATUS OF WARRANT",
    ]
    [entry] = logs
    assert entry["event"] == "inquiry_not_taken" and entry["log_level"] == "warning"
    assert (entry["mke"], entry["ori"], entry["sender"]) == ("LQ", "TXNLETS00", "AZNLETS20")
    assert "WARRANT" not in repr(entry)  # never the message text


async def test_adapter_that_declines_gives_sm_01_one_that_answers_gives_nothing() -> None:
    picky = Picky()
    ctx = _ctx(picky)
    by_name = ad.Inquiry("DQ", "AZNLETS20", "TXNLETS00", None, "NAM/DOE,JOHN",
                         {"NAM": "DOE,JOHN"})
    by_oln = ad.Inquiry("DQ", "AZNLETS20", "TXNLETS00", None, "OLN/D1", {"OLN": "D1"})
    with capture_logs() as logs:
        sm = await ad.dispatch(picky, ctx, by_name, schemas=SCHEMAS, log=structlog.get_logger())
        assert await ad.dispatch(picky, ctx, by_oln, schemas=SCHEMAS,
                                 log=structlog.get_logger()) is None
    assert sm is not None and "DESTINATION: TXNLETS00" in sm
    assert [e["reason"] for e in logs] == ["picky answers DQ by OLN only"]
    assert picky.answered == ["D1"]


async def test_what_is_not_an_inquiry_gets_no_sm() -> None:
    for key in ("AM", "SM", "ER", "DR"):
        inq = ad.Inquiry(key, "AZNLETS20", "TXNLETS00", None, "HELLO", {})
        with capture_logs() as logs:
            assert await ad.dispatch(None, None, inq, schemas=SCHEMAS,
                                     log=structlog.get_logger()) is None
        assert [e["log_level"] for e in logs] == ["debug"]


async def test_responder_refuses_an_inquiry_it_cannot_answer(tmp_path: Path) -> None:
    """Out of process only the switch may send SM: the responder refuses the delivery
    with SM .01.'s reason, logs it, and the journal records the delivery as refused."""
    services = {**FAST, "states": {"simulate": ["TX"]}}
    cfg = tmp_path / "responder.yaml"
    cfg.write_text(yaml.safe_dump({"services": services}))
    async with world(tmp_path / "switch", services) as sw:
        host, port = sw.addresses[0]
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nlets_switch", "responder", "states",
            "--connect", f"{host}:{port}", "--config", str(cfg),
            "--data-dir", str(tmp_path / "responder"), "--log-level", "warning",
            "--credential", SERVICE_CREDENTIAL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"signed on as 1 ORI(s): TXNLETS00" in line
            c = await Client.connect(host, port, "AZNLETS20")
            # The states adapter does not answer LQ (free text, for a person).
            assert (await c.send("LQ.AZNLETS20.TX.*L1.TXT\nPLS ADVISE")).ok
            # ...but it does answer a DQ, on the same link, right after.
            assert (await c.send("DQ.AZNLETS20.TX.*D1.TXT\nOLN/D11111111")).ok
            dr = parse_output(await c.receive(10))
            assert (dr.key, dr.control) == ("DR", "D1")
            await c.close()
        finally:
            proc.terminate()
            _out, err = await asyncio.wait_for(proc.communicate(), 10)
        assert b"inquiry_not_taken" in err and b"PLS ADVISE" not in err
        await sw.journal.barrier()
        conn = sqlite3.connect(f"file:{sw.journal.path}?mode=ro", uri=True)
        states = conn.execute("SELECT m.key, d.state FROM deliveries d JOIN messages m "
                              "ON m.id = d.msg_id WHERE d.link = 'TXNLETS00' "
                              "ORDER BY d.id").fetchall()
        conn.close()
        assert states == [("LQ", "refused"), ("DQ", "acked")]


def test_send_gets_sm_01_for_an_inquiry_no_adapter_answers(tmp_path: Path) -> None:
    port = free_port()
    proc = start_switch(tmp_path / "data", port)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "nlets_switch", "send", "--connect", f"127.0.0.1:{port}",
             "--ori", "AZNLETS20", "--timeout", "3", "LQ.AZNLETS20.TX.TXT PLS ADVISE"],
            capture_output=True, text=True, timeout=30)
    finally:
        proc.terminate()
        proc.wait(15)
    assert r.returncode == 4, r.stderr
    assert ("status: SM .01. USER DOES NOT RESPOND TO MSG TYPE, NLETS WILL NOT FORWARD -- "
            "DESTINATION: TX") in r.stderr
