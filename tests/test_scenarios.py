"""The conformance scenario runner and the bundled suite under scenarios/."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from nlets_switch.config import demo_config, with_overrides
from nlets_switch.core.events import MemoryAudit
from nlets_switch.server.switch import Switch
from nlets_switch.tools.scenario import (
    ScenarioError,
    Template,
    parse_scenario,
    run_scenario,
)
from nlets_switch.wire import frames as fr

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "scenarios"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", "scenario", "run", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_bundled_suite_passes_and_writes_junit(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    proc = run_cli(str(SUITE), "--junit", str(report))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert " FAIL" not in proc.stdout
    suite = ET.parse(report).getroot()
    cases = suite.findall("testcase")
    assert len(cases) == len(list(SUITE.glob("*.scn"))) >= 25
    assert suite.get("failures") == "0"
    assert {c.get("name") for c in cases} >= {"am_output_header", "sm02_held_then_delivered",
                                              "redelivery_after_reconnect"}


def test_one_character_broken_fails_with_a_diff_pointing_at_it(tmp_path: Path) -> None:
    good = (SUITE / "am_output_header.scn").read_text()
    assert "HELLO NEW YORK\n.\n" in good
    broken = tmp_path / "broken.scn"
    broken.write_text(good.replace("HELLO NEW YORK\n.\n", "HELLO NEW YORX\n.\n"))
    report = tmp_path / "r.xml"
    proc = run_cli(str(broken), "--junit", str(report))
    assert proc.returncode == 1
    out = proc.stdout
    assert "FAIL" in out
    assert "first difference at message line 5, column 14: expected 'X', got 'K'" in out
    lines = out.splitlines()
    exp = next(i for i, ln in enumerate(lines) if ln.strip().startswith("expected: HELLO"))
    # The caret sits under the differing character of both lines shown.
    got_line, caret_line = lines[exp + 1], lines[exp + 2]
    col = caret_line.index("^")
    assert got_line[col] == "K" and lines[exp][col] == "X"
    assert "- HELLO NEW YORX" in out and "+ HELLO NEW YORK" in out
    failure = ET.parse(report).getroot().find("testcase/failure")
    assert failure is not None and "column 14" in (failure.text or "")


def test_unexpected_message_and_silence_fail(tmp_path: Path) -> None:
    scn = tmp_path / "noisy.scn"
    scn.write_text("connect az AZNLETS20\nconnect ny NYNLETS00\n"
                   "send az AM.AZNLETS20.NY.TXT HI\nexpect-nothing ny 0.5\n")
    proc = run_cli(str(scn))
    assert proc.returncode == 1
    assert "expected silence, got a message" in proc.stdout
    assert "HI" in proc.stdout


def test_xfail_scenario_does_not_fail_the_run(tmp_path: Path) -> None:
    scn = tmp_path / "xf.scn"
    scn.write_text("xfail demonstrating xfail\nconnect az AZNLETS20\n"
                   "send az AM.AZNLETS20.NY.TXT HI\nexpect az <<\nNOT THIS\n.\n")
    proc = run_cli(str(scn))
    assert proc.returncode == 0, proc.stdout
    assert "XFAIL" in proc.stdout


def test_parse_errors_name_the_line() -> None:
    with pytest.raises(ScenarioError, match=r"x.scn:2: unknown step 'sned'"):
        parse_scenario("connect az AZNLETS20\nsned az AM\n", "x.scn")
    with pytest.raises(ScenarioError, match=r"x.scn:1: connection 'az' is not opened"):
        parse_scenario("send az AM.AZNLETS20.NY.TXT HI\n", "x.scn")
    with pytest.raises(ScenarioError, match="not closed"):
        parse_scenario("connect az AZNLETS20\nexpect az <<\nAM.X\n", "x.scn")
    with pytest.raises(ScenarioError, match="unknown macro"):
        parse_scenario("connect az AZNLETS20\nexpect az <<\n{NOPE:1}\n.\n", "x.scn")


def test_template_macros_captures_and_references() -> None:
    tpl = Template(["GPR.VTICE0900", "{...}", "DIN/{DIN=re:[A-Z0-9]+}.NAM/{ANY}", "{...}"])
    caps = tpl.match("GPR.VTICE0900\nA\nB\nDIN/D0042.NAM/GARCIA,MARIA\nEND", {})
    assert caps == {"DIN": "D0042"}
    again = Template(["DIN/{DIN}"])
    assert again.match("DIN/D0042", caps) is not None
    assert again.match("DIN/D0043", caps) is None
    assert Template(["{TIME} {NUM}"]).match("08:00 01/01/2010 01239", {}) is not None
    assert Template(["{TIME} {NUM}"]).match("08:00 01/01/2010 1239", {}) is None


async def test_runner_against_a_running_switch(tmp_path: Path) -> None:
    """What --connect does: the same scenario against a switch somebody else started."""
    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(tmp_path))
    sw = Switch(cfg, audit=MemoryAudit())
    await sw.start()
    try:
        host, port = sw.addresses[0][:2]
        scn = parse_scenario((SUITE / "control_field_echo.scn").read_text(), "cfe.scn")
        res = await run_scenario(scn, host, port)
        assert res.ok, res.failure + "\n" + res.detail
    finally:
        await sw.stop()


def test_every_step_of_the_format_has_a_runner() -> None:
    """The parser (scenario_parse) and the runner (scenario) know the same steps."""
    from nlets_switch.tools import scenario, scenario_parse

    assert set(scenario._STEPS) == set(scenario_parse._OPS)


async def test_a_raw_link_sends_bytes_as_written_and_a_broken_answer_fails_the_step() -> None:
    """On a raw link the script plays the protocol: nothing is answered for it; a switch
    that breaks the byte stream fails the step that reads it (after the good frames)."""
    sent = fr.encode_frame(fr.MESSAGE, 1, b"AM\xc3\x07")
    got: list[bytes] = []

    async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        got.append(await r.readexactly(len(sent)))
        w.write(fr.encode_frame(fr.HEARTBEAT, 7) + b"\x00\x00\x00\x02")
        await w.drain()
        got.append(await r.read(100))  # until the runner hangs up
        w.close()

    served: list[asyncio.Task[None]] = []

    async def serve(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        served.append(asyncio.ensure_future(handle(r, w)))

    srv = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        port = srv.sockets[0].getsockname()[1]
        scn = parse_scenario("raw x\nframe x M AM{xC3}{x07}\nexpect-frame x H\n"
                             "expect-frame x A\n", "raw.scn")
        res = await run_scenario(scn, "127.0.0.1", port)
        await asyncio.wait_for(served[0], 3)
    finally:
        srv.close()
    assert got[0] == sent  # {xNN} is the byte NN, numbered by the link
    assert got[1] == b""  # the H was not answered: that is the script's to do
    assert not res.ok
    assert res.failure == "line 4: expect-frame x: the switch sent a broken frame " \
                          "(.01. INVALID FRAME)"
