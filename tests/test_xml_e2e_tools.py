"""`term` on an XML link (XML.md), as a person drives it through a pseudo-terminal,
and how it shows documents; scenarios that send and expect XML."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from nlets_switch.tools.scenario import ScenarioError, parse_scenario
from nlets_switch.tools.scenario_parse import xml_form
from nlets_switch.tools.term import Transcript, describe
from nlets_switch.wire.message import OutputMessage
from tests.test_term import quit_term, type_line
from tests.test_xml_e2e import CODEC, XML_ORI, Serve

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    s = Serve(tmp_path)
    yield s
    s.stop()


def test_describe_shows_a_document_as_the_text_it_stands_for() -> None:
    tr = Transcript()
    tr.add(">>", "DQ.AZ0070500.TX.*T0001.TXT OLN/D1", control="T0001")
    doc = CODEC.output_to_xml(OutputMessage(
        "DR", "TXNLETS00", "08:00 01/01/2030", 1, "08:00 01/01/2030", 2, XML_ORI, "T0001",
        "OLN/D1 & MORE")).decode()
    style, head, text = describe(doc, tr, CODEC)
    assert style == "class:in"
    assert head == ("DR (XML) from TXNLETS00 to AZ0070500  answers #1 "
                    "DQ.AZ0070500.TX.*T0001.TXT OLN/D1")
    assert text.endswith("*T0001\nTXT\nOLN/D1 & MORE")
    # Without a codec that knows it: pretty-printed, not one long line.
    style, head, text = describe(doc, tr, None)
    assert head == "XML document"
    assert "\n  <n2:NLETSMessageHeader>\n" in text


def test_term_on_an_xml_link_types_text_and_reads_answers(serve: Serve) -> None:
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120",
               LINES="40")
    # --config names the directory, where AZ0070500 has format: xml.
    child = pexpect.spawn(sys.executable, ["-m", "nlets_switch", "term", "--ori", XML_ORI,
                                           "--connect", f"127.0.0.1:{serve.port}",
                                           "--config", str(serve.config)],
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=15,
                          dimensions=(40, 120))
    try:
        child.expect(f"signed on as {XML_ORI}")
        child.expect(f"{XML_ORI}>")
        type_line(child, "DQ.AZ0070500.TX.TXT OLN/D11111111")
        child.expect(r"accepted, control \*T0001")
        child.expect(r"DR \(XML\) from TXNLETS00 to AZ0070500  answers #1")
        child.expect("OLN/D11111111")
        type_line(child, "DQ.AZ0070500.TX.TXT DOB/19500230.NAM/SMITH,JOHN.SEX/M")
        child.expect(r"ER \(XML\) ERROR \.05\. DOB INVALID OR MISSING")
        type_line(child, "NOT A MESSAGE")
        child.expect("cannot write it as XML")
    finally:
        quit_term(child)


# -- scenarios: XML sent and expected, compared in canonical form ------------------

SUITE = ROOT / "scenarios"


def run_scenarios(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", "scenario", "run", *args],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_xml_expectations_ignore_prefixes_and_layout_but_not_data(tmp_path: Path) -> None:
    good = (SUITE / "xml_text_terminal_exchange.scn").read_text()
    # Other prefixes, attributes reordered, everything on one line: still a match.
    relaid = tmp_path / "relaid.scn"
    relaid.write_text(good.replace("n2:", "x:").replace("xmlns:n2=", "xmlns:x=")
                      .replace("    <nh2:Message", "<nh2:Message"))
    proc = run_scenarios(str(relaid))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # One character of data changed: a failure whose diff points at it.
    broken = tmp_path / "broken.scn"
    broken.write_text(good.replace("LICENSE VALID</n2:ResponseText>",
                                   "LICENSE VALIX</n2:ResponseText>"))
    proc = run_scenarios(str(broken))
    assert proc.returncode == 1
    assert "expected 'X', got 'D'" in proc.stdout
    assert "- LICENSE VALIX</n2:ResponseText>" in proc.stdout


def test_an_expected_document_that_is_not_well_formed_names_its_line() -> None:
    with pytest.raises(ScenarioError, match=r"x.scn:2: .*not well-formed"):
        parse_scenario("connect ag AZ0070500\nexpect ag <<\n<n2:NLETS><a>\n.\n", "x.scn")
    assert xml_form("AM.AZNLETS20.NY.TXT HI") is None
