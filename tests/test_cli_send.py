"""`nlets-switch send` as a newcomer uses it, against a switch process (README steps):
what it prints, and its exit status (0 accepted, 1 N, 2 no link, 3 ER, 4 SM)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_durability import start_switch


@pytest.fixture
def switch_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    proc = start_switch(tmp_path / "data", port)
    yield port
    proc.send_signal(signal.SIGTERM)
    proc.wait(15)


def send(port: int, *args: str, stdin: str | None = None,
         timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nlets_switch", "send", "--connect", f"127.0.0.1:{port}", *args],
        capture_output=True, text=True, input=stdin, timeout=timeout)


def test_am_from_az_printed_by_ny_listening(switch_port: int) -> None:
    ny = subprocess.Popen(
        [sys.executable, "-m", "nlets_switch", "send", "--connect", f"127.0.0.1:{switch_port}",
         "--ori", "NYNLETS00", "--listen-only", "--count", "1", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "0.5",
             "AM.AZNLETS20.NY.TXT HELLO NEW YORK")
    assert r.returncode == 0, r.stderr
    out, _ = ny.communicate(timeout=20)
    lines = out.splitlines()
    assert lines[0] == "AM.AZNLETS20"
    assert lines[2].endswith(" 00001 NYNLETS00")
    assert lines[3:5] == ["TXT", "HELLO NEW YORK"]


def test_er_for_a_malformed_message_from_stdin(switch_port: int) -> None:
    r = send(switch_port, "--ori", "AZNLETS20", "--count", "1",
             stdin="RQ.AZNLETS20.AZ.TXT\nLIC/123456.LIT/PC\n")
    assert r.returncode == 3  # was 0: an ER is a refusal, and the exit status says so
    assert r.stdout.startswith("ER.NL0000000\n")
    assert ".22. INVALID MESSAGE FORMAT" in r.stdout


def test_sm_02_then_delivery_when_ny_signs_on(switch_port: int, tmp_path: Path) -> None:
    f = tmp_path / "am.txt"
    f.write_text("AM.AZNLETS20.NY.TXT\nHELD FOR NEW YORK\n")
    r = send(switch_port, "--ori", "AZNLETS20", "--file", str(f), "--count", "1")
    assert ".02. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL FORWARD" in r.stdout
    r = send(switch_port, "--ori", "NYNLETS00", "--listen-only", "--count", "1",
             "--timeout", "10")
    assert "HELD FOR NEW YORK" in r.stdout


def test_exit_status_on_refusals(switch_port: int) -> None:
    r = send(switch_port, "--ori", "ZZ9999999", "AM.ZZ9999999.NY.TXT HI")
    assert r.returncode == 2 and "sign-on refused" in r.stderr
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "0.3",
             stdin="AM.AZNLETS20.NY.TXT TAB\tINSIDE")
    # Wording changed on purpose: "refused: .02. ...", the frame number only with -v.
    assert r.returncode == 1 and "refused: .02." in r.stderr and "(N " not in r.stderr
    r = send(free_port(), "--ori", "AZNLETS20", "AM.AZNLETS20.NY.TXT HI")
    assert r.returncode == 2 and "cannot reach" in r.stderr


def test_accepted_says_it_waits_and_how_long(switch_port: int) -> None:
    ny = subprocess.Popen(
        [sys.executable, "-m", "nlets_switch", "send", "--connect", f"127.0.0.1:{switch_port}",
         "--ori", "NYNLETS00", "--listen-only", "--count", "1", "--timeout", "20"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "0.5",
             "AM.AZNLETS20.NY.TXT HELLO NEW YORK")
    ny.communicate(timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stderr.splitlines()[1:] == [
        "accepted; waiting for answers (ER, SM, responses) until 0.5 s pass without one"]
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "0.5", "--verbose",
             "AM.AZNLETS20.NYNLETS00.TXT AGAIN")
    assert "accepted (A 2); waiting" in r.stderr  # the frame's number only with --verbose


def test_exit_3_on_an_er_which_ends_the_wait(switch_port: int) -> None:
    started = time.monotonic()
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "20",
             "RQ.AZNLETS20.AZ.TXT LIC/123456.LIT/PC")
    assert r.returncode == 3
    assert time.monotonic() - started < 15  # nothing more comes about a refused message
    assert r.stderr.splitlines()[-1] == "refused: ER .22. INVALID MESSAGE FORMAT"
    assert r.stdout.startswith("ER.NL0000000\n")


def test_exit_3_on_a_refused_help_file_update(switch_port: int) -> None:
    r = send(switch_port, "--ori", "NYNLETS00", "--timeout", "5",
             "AM.NYNLETS00.AZNLEUPDT.TXT NEW HELP TEXT")
    assert r.returncode == 3
    assert "refused: ER .02. MESSAGE TYPE NOT ALLOWED TO DESTINATION" in r.stderr


def test_exit_4_on_an_sm(switch_port: int) -> None:
    # NY is not signed on: an AM is held for it (SM .02), an inquiry is not (SM .04).
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "1", "AM.AZNLETS20.NY.TXT HI")
    assert r.returncode == 4
    assert ("status: SM .02. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL FORWARD -- "
            "DESTINATION: NY") in r.stderr
    r = send(switch_port, "--ori", "AZNLETS20", "--timeout", "1",
             "DQ.AZNLETS20.NY.TXT OLN/D11111111")
    assert r.returncode == 4 and "status: SM .04." in r.stderr


def test_exit_0_when_a_state_answers(switch_port: int) -> None:
    r = send(switch_port, "--ori", "AZNLETS20", "--count", "1",
             "DQ.AZNLETS20.TX.TXT OLN/D11111111")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("DR.TXNLETS00\n")
    assert "refused" not in r.stderr and "status:" not in r.stderr


def test_help_gives_examples_and_exit_statuses() -> None:
    r = subprocess.run([sys.executable, "-m", "nlets_switch", "send", "--help"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    assert "nlets-switch send --ori AZNLETS20 'AM.AZNLETS20.NY.TXT HELLO NEW YORK'" in r.stdout
    for line in ("0  accepted", "1  refused at link level (N)", "3  an ER came back",
                 "4  an SM came back"):
        assert line in r.stdout


def test_only_an_er_or_sm_about_the_message_sent_counts() -> None:
    from nlets_switch.commands.send import about

    sent = "DQ.AZNLETS20.NY.TXT OLN/D11111111"
    sm = ("SM.NL0000000\n08:00 01/01/2010 00001\n08:00 01/01/2010 00001 AZNLETS20\nTXT\n"
          ".04. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD\nDESTINATION: NY\n"
          "ORIGINAL MESSAGE\nDQ.AZNLETS20.NY.TXT\nOLN/D11111111")
    assert about(sm, sent) == (
        "SM", ".04. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD -- DESTINATION: NY")
    # An SM held from an earlier message, delivered now, is not about this one.
    assert about(sm, "DQ.AZNLETS20.NY.TXT OLN/D22222222") is None
    # Nor is a state's answer, or an AM from the switch.
    assert about(sm.replace("SM.NL0000000", "DR.TXNLETS00"), sent) is None
