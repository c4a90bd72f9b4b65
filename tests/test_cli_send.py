"""`nlets-switch send` as a newcomer uses it, against a switch process (README steps)."""

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
    assert r.returncode == 0
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
    assert r.returncode == 1 and "N .02." in r.stderr
    r = send(free_port(), "--ori", "AZNLETS20", "AM.AZNLETS20.NY.TXT HI")
    assert r.returncode == 2 and "cannot reach" in r.stderr
