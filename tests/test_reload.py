"""Live reload (SIGHUP, `nlets-switch reload`, Switch.reload) without dropping unaffected links."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from nlets_switch.config import config_from_dict
from nlets_switch.core.events import Audit
from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory, free_port
from tests.test_durability import start_switch

BASE = [{"ori": "AZNLETS20", "role": "control_terminal"},
        {"ori": "NYNLETS00", "role": "control_terminal"},
        {"ori": "AZ0070500"}]


async def test_reload_adds_and_removes_oris(make_switch: SwitchFactory,
                                            connect: ClientFactory) -> None:
    sw = await make_switch({"links": BASE})
    az = await connect(sw, "AZNLETS20")
    ag = await connect(sw, "AZ0070500")
    host, port = sw.addresses[0]
    with pytest.raises(SignOnError):
        await Client.connect(host, port, "AZ0090000")
    await ag.send("AM.AZ0070500.NY.TXT HELD FOR NY")  # NY not signed on: held
    audits: list[dict[str, object]] = []
    sw.observers.append(
        lambda e: audits.append(e.to_dict()) if isinstance(e, Audit) and e.type == "config_reload"
        else None)
    sw.reload(config_from_dict({"links": [*BASE[:1], {"ori": "AZ0090000"},
                                          {"ori": "NYNLETS00", "role": "control_terminal"}]}))
    await asyncio.wait_for(ag.closed.wait(), 3)  # removed ORI: signed off
    assert not az.closed.is_set()  # unaffected link kept
    new = await Client.connect(host, port, "AZ0090000")  # a new ORI signs on at once
    await new.close()
    assert (await az.send("AM.AZNLETS20.AZ0090000.TXT HI")).ok
    ny = await connect(sw, "NYNLETS00")
    assert parse_output(await ny.receive()).text == "HELD FOR NY"  # held messages stay
    assert audits and audits[0]["outcome"] == "success"


def test_sighup_reload_and_refusal_of_a_bad_config(tmp_path: Path) -> None:
    conf = tmp_path / "c.yaml"
    conf.write_text("links:\n  - {ori: AZNLETS20, role: control_terminal}\n")
    port = free_port()
    data = tmp_path / "data"
    proc = start_switch(data, port, "--config", str(conf))
    try:
        async def signon(ori: str) -> bool:
            try:
                c = await Client.connect("127.0.0.1", port, ori)
            except SignOnError:
                return False
            await c.close()
            return True

        assert not asyncio.run(signon("AZ0070500"))
        conf.write_text("links:\n  - {ori: AZNLETS20, role: control_terminal}\n"
                        "  - {ori: AZ0070500}\n")
        r = subprocess.run([sys.executable, "-m", "nlets_switch", "reload", "--config",
                            str(conf), "--data-dir", str(data)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 0, r.stderr
        import time

        for _ in range(50):
            if asyncio.run(signon("AZ0070500")):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("reload did not take effect")
        conf.write_text("links:\n  - {ori: BROKEN}\n")
        r = subprocess.run([sys.executable, "-m", "nlets_switch", "reload", "--config",
                            str(conf), "--data-dir", str(data)], capture_output=True, text=True,
                           timeout=30)
        assert r.returncode == 1 and "links[0].ori" in r.stderr
        proc.send_signal(signal.SIGHUP)  # the switch itself refuses it too, keeping the old one
        time.sleep(0.5)
        assert asyncio.run(signon("AZ0070500"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=15)[1].decode()
    assert "reload_refused" in out and "links[0].ori" in out
