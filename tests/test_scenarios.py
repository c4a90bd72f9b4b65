"""The conformance scenario runner and the bundled suite under scenarios/."""

from __future__ import annotations

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
