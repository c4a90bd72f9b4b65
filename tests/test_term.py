"""The interactive terminal, driven through a real pseudo-terminal as a person would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from nlets_switch.tools.term import Transcript, controls, describe, prepare
from nlets_switch.wire.schema import load_schemas

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def switch(tmp_path: Path) -> Iterator[str]:
    """``nlets-switch serve`` on a free port, as an operator would start it."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "nlets_switch", "serve", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(tmp_path / "data"), "--log-level", "error", "--http", "off"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("the switch did not start") from None
            time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def spawn_term(ori: str, where: str) -> pexpect.spawn:
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", COLUMNS="120",
               LINES="40")
    child = pexpect.spawn(sys.executable, ["-m", "nlets_switch", "term", "--ori", ori,
                                           "--connect", where],
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=10,
                          dimensions=(40, 120))
    child.expect(f"signed on as {ori}")
    child.expect(f"{ori}>")
    return child


def type_line(child: pexpect.spawn, text: str) -> None:
    child.send(text)
    child.send("\r")


def quit_term(c: pexpect.spawn) -> None:
    """Ctrl-D, as a person would; again if it landed while the screen was redrawn."""
    for _ in range(5):
        if not c.isalive():
            return
        c.sendcontrol("d")
        if c.expect([pexpect.EOF, pexpect.TIMEOUT], timeout=3) == 0:
            return
    raise AssertionError("the terminal did not quit on Ctrl-D")


def test_dq_answered_and_matched_on_screen(switch: str, tmp_path: Path) -> None:
    az = spawn_term("AZNLETS20", switch)
    ny = spawn_term("NYNLETS00", switch)
    try:
        # The newcomer types the example driver's DQ on one line; a control field is added.
        type_line(az, "DQ.AZNLETS20.NY.TXT OLN/D11111111")
        az.expect(r">> #1 accepted, control \*T0001")
        # New York's operator sees it arrive, with the control field, and answers.
        ny.expect(r"<< #1 DQ from AZNLETS20 to NYNLETS00  control \*T0001")
        ny.expect("OLN/D11111111")
        type_line(ny, "DR.NYNLETS00.AZNLETS20.*T0001.TXT NAM/DOE,JOHN.OLN/D11111111 VALID")
        ny.expect(r">> #2 accepted, control \*T0001")
        # Arizona sees the response beside the inquiry it answers.
        az.expect(r"<< #2 DR from NYNLETS00 to AZNLETS20  answers #1 "
                  r"DQ\.AZNLETS20\.NY\.\*T0001\.TXT OLN/D11111111")
        az.expect(r"NAM/DOE,JOHN\.OLN/D11111111 VALID")
        # An error is shown plainly, with its reason and the inquiry it answers.
        type_line(az, "DQ.AZNLETS20.NY.TXT NAM/SMITH,JOHN.SEX/M")
        az.expect(r"ER ERROR \.22\. INVALID MESSAGE FORMAT -- FIELD OPTIONS: OLN OR NAM, "
                  r"DOB, SEX  answers #3")
        # The operator's commands: last, save, resend, quit.
        type_line(az, "/last 2")
        az.expect("#4 ")
        save = tmp_path / "session.txt"
        type_line(az, f"/save {save}")
        az.expect(r"saved 4 message\(s\)")
        type_line(az, "/resend 1")
        az.expect(r">> #5 accepted, control \*T0001")
        ny.expect(r"<< #3 DQ from AZNLETS20")
        type_line(az, "/quit")
        az.expect("signed off AZNLETS20")
        az.expect(pexpect.EOF)
        text = save.read_text()
        assert "DQ.AZNLETS20.NY.*T0001.TXT OLN/D11111111" in text
        assert "DR.NYNLETS00" in text and "ER.NL0000000" in text
        # NY's terminal sees SM .02 for AZ? No: AZ signed off, so an AM to it is held.
        type_line(ny, "AM.NYNLETS00.AZ.TXT ARE YOU THERE")
        ny.expect(r"SM STATUS \.02\. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL FORWARD "
                  r"-- DESTINATION: AZ  answers #4")
    finally:
        for c in (az, ny):
            quit_term(c)


def test_dq_to_a_simulated_state_for_the_example_driver(switch: str) -> None:
    """The newcomer's first DQ: Nlets' example driver, answered by simulated Texas."""
    az = spawn_term("AZNLETS20", switch)
    try:
        type_line(az, "DQ.AZNLETS20.TX.TXT OLN/D11111111")
        az.expect(r">> #1 accepted, control \*T0001")
        az.expect(r"<< #2 DR from TXNLETS00 to AZNLETS20  answers #1 "
                  r"DQ\.AZNLETS20\.TX\.\*T0001\.TXT OLN/D11111111")
        az.expect("OLN: D11111111")
        type_line(az, "/quit")
        az.expect(pexpect.EOF)
    finally:
        if az.isalive():
            az.terminate(force=True)


def test_form_checks_each_field_before_sending(switch: str) -> None:
    az = spawn_term("AZNLETS20", switch)
    try:
        type_line(az, "/form DQ")
        az.expect("DQ destinations:")
        type_line(az, "NY")
        az.expect(r"OLN [^\r\n]*:")
        type_line(az, "")
        az.expect(r"NAM [^\r\n]*:")
        type_line(az, "SMITH,JOHN")
        az.expect(r"DOB [^\r\n]*:")
        type_line(az, "19501301")          # no 13th month: asked again
        az.expect("DOB/19501301 is not valid")
        az.expect(r"DOB [^\r\n]*:")
        type_line(az, "19500101")
        az.expect(r"SEX [^\r\n]*:")
        type_line(az, "M")
        for _ in ("RSN", "IMQ"):
            az.expect(r"(RSN|IMQ) [^\r\n]*:")
            type_line(az, "")
        # The finished message is shown, and sent only when the operator says so.
        az.expect(r"DQ\.AZNLETS20\.NY\.TXT NAM/SMITH,JOHN\.DOB/19500101\.SEX/M")
        az.expect(r"send it\? \[y/N\]")
        type_line(az, "y")
        # NY is not signed on: the inquiry goes through the switch and SM .04 comes back.
        az.expect(r">> #1 accepted, control \*T0001")
        az.expect(r"SM STATUS \.04\. .* answers #1")
        type_line(az, "/quit")
        az.expect(pexpect.EOF)
    finally:
        if az.isalive():
            az.terminate(force=True)


def test_prepare_adds_control_to_inquiries_only() -> None:
    schemas = load_schemas()
    ctl = controls()
    text, c = prepare("DQ.AZNLETS20.TX.TXT OLN/D11111111", schemas, ctl)
    assert (text, c) == ("DQ.AZNLETS20.TX.*T0001.TXT OLN/D11111111", "T0001")
    assert prepare("DQ.AZNLETS20.TX.*MINE.TXT OLN/X", schemas, ctl)[1] == "MINE"
    assert prepare("AM.AZNLETS20.NY.TXT HI", schemas, ctl) == ("AM.AZNLETS20.NY.TXT HI", None)
    assert prepare("RQ.AZNLETS20.AZ.TXT\\nLIC/1.LIY/2020.LIT/PC", schemas, ctl)[0] == (
        "RQ.AZNLETS20.AZ.*T0002.TXT\nLIC/1.LIY/2020.LIT/PC")


def test_describe_matches_by_quote_when_there_is_no_control() -> None:
    tr = Transcript()
    tr.add(">>", "AM.AZNLETS20.Q1.TXT HI")
    er = ("ER.NL0000000\n08:00 01/01/2010 00001\n08:00 01/01/2010 00001 AZNLETS20\nTXT\n"
          ".19. INVALID DESTINATION ORIS\nINVALID: Q1\nORIGINAL MESSAGE\nAM.AZNLETS20.Q1.TXT HI")
    style, head, _ = describe(er, tr)
    assert style == "class:er"
    assert head == ("ER ERROR .19. INVALID DESTINATION ORIS -- INVALID: Q1  answers #1 "
                    "AM.AZNLETS20.Q1.TXT HI")


def test_form_not_confirmed_is_not_sent_and_comes_back_with_the_up_arrow(switch: str) -> None:
    az = spawn_term("AZNLETS20", switch)
    try:
        type_line(az, "/form AM")
        az.expect("AM destinations:")
        type_line(az, "NY")
        az.expect("AM text:")
        type_line(az, "MEET AT NOON")
        az.expect(r"send it\? \[y/N\]")
        type_line(az, "n")
        az.expect(r"-- not sent \(the up arrow brings it back to edit\)")
        az.send("\x1b[A")  # up arrow: the form's message, ready to edit or send
        az.expect(r"AM\.AZNLETS20\.NY\.TXT MEET AT NOON")
        az.send("\r")
        az.expect(r">> #1 accepted")  # #1: nothing had been sent before
        type_line(az, "/quit")
        az.expect(pexpect.EOF)
    finally:
        if az.isalive():
            az.terminate(force=True)


@pytest.mark.parametrize("word", ["quit", "EXIT"])
def test_quit_or_exit_typed_alone_signs_off_and_is_never_sent(switch: str, tmp_path: Path,
                                                               word: str) -> None:
    az = spawn_term("AZNLETS20", switch)
    try:
        type_line(az, word)
        az.expect("signed off AZNLETS20")
        az.expect(pexpect.EOF)
    finally:
        if az.isalive():
            az.terminate(force=True)
    r = subprocess.run([sys.executable, "-m", "nlets_switch", "log", "search",
                        "--data-dir", str(tmp_path / "data")],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "no messages found" in r.stderr  # nothing was sent
