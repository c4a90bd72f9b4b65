"""What `nlets-switch serve` prints as a newcomer starts it: a short banner in a terminal,
JSON lines when piped, routine per-ORI lines only at debug, and a port conflict as one
plain first line."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
import structlog

from nlets_switch.log import RoutineFilter
from tests.conftest import free_port

ROOT = Path(__file__).resolve().parent.parent


def serve_args(data: Path, port: int, http: str = "off", *extra: str) -> list[str]:
    return ["-m", "nlets_switch", "serve", "--listen", f"127.0.0.1:{port}",
            "--data-dir", str(data), "--http", http, *extra]


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError("the switch did not start") from None
            time.sleep(0.05)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else already listens on (another switch, say)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def test_banner_in_a_terminal_says_where_the_switch_listens(tmp_path: Path) -> None:
    port, http = free_port(), free_port()
    data = tmp_path / "data"
    env = dict(os.environ, TERM="xterm", COLUMNS="120", LINES="40")
    child = pexpect.spawn(sys.executable, serve_args(data, port, f"127.0.0.1:{http}"),
                          cwd=str(ROOT), env=env, encoding="utf-8", timeout=20,
                          dimensions=(40, 120))
    try:
        child.expect("nlets-switch [0-9.]* is running the demo world")
        before = child.before
        child.expect("Ctrl-C stops it")
        banner = child.before
        # Nothing before the banner but readable lines: no JSON, no per-ORI sign-on.
        assert "{" not in before and "signed_on" not in before
        assert f"links      127.0.0.1:{port}" in banner
        assert f"dashboard  http://127.0.0.1:{http}/" in banner
        assert f"data       {data.resolve()}" in banner
        assert "directory  57 ORIs, 49 of them simulated states" in banner
        assert "services   NL, leis, states" in banner
        assert f"nlets-switch term --ori AZNLETS20 --connect 127.0.0.1:{port}" in banner
        # A real link signing on is worth a line; then Ctrl-C stops it gracefully.
        with socket.create_connection(("127.0.0.1", port)) as s:
            from nlets_switch.wire import frames as fr

            s.sendall(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20"))
            child.expect(r"\[info\s*\] signed_on\s+\[switch\] ori=AZNLETS20 kind=tcp")
        child.expect(r"\[info\s*\] signed_off\s+\[switch\] ori=AZNLETS20")
        child.sendintr()
        child.expect(r"\[info\s*\] stopping")
        child.expect(pexpect.EOF)
        assert "stopped" in child.before
        assert "ori=TXNLETS00" not in child.before  # simulated states sign off quietly
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_piped_output_is_json_and_short(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, *serve_args(tmp_path / "d", port)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert out == ""  # no banner when nobody reads a terminal
    events = [json.loads(line) for line in err.splitlines()]
    names = [e["event"] for e in events]
    assert "listening" in names and "stopped" in names
    assert "signed_on" not in names and "signed_off" not in names
    assert len(events) < 15  # was 110: one sign-on and one sign-off per simulated state


def test_log_format_console_when_piped_and_debug_shows_every_ori(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, *serve_args(tmp_path / "d", port, "off", "--log-format", "console",
                                     "--log-level", "debug")],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert "is running the demo world" in out and "dashboard  off" in out
    lines = [line for line in err.splitlines() if " signed_on " in line]
    # NL0000000, VTICE0900, 49 simulated states, simulated Canada, INTERPOL, Mexico
    assert len(lines) == 54
    assert all("[debug" in line for line in lines)
    assert not any(line.lstrip().startswith("{") for line in err.splitlines())


def test_port_in_use_is_the_first_and_only_line(tmp_path: Path, taken_port: int) -> None:
    r = subprocess.run([sys.executable, *serve_args(tmp_path / "d", taken_port)], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stdout == ""
    assert r.stderr.splitlines() == [
        f"cannot start: 127.0.0.1:{taken_port} is already in use (is another nlets-switch "
        "running?); choose another with --listen HOST:PORT"]


def test_http_port_in_use_names_the_http_option(tmp_path: Path, taken_port: int) -> None:
    r = subprocess.run([sys.executable, *serve_args(tmp_path / "d", free_port(),
                                                    f"127.0.0.1:{taken_port}")],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"cannot start: 127.0.0.1:{taken_port} is already in use (is another nlets-switch "
        "running?); choose another with --http HOST:PORT (or --http off)"]


def test_routine_filter_lowers_local_endpoints_only() -> None:
    f = RoutineFilter(logging.INFO)
    with pytest.raises(structlog.DropEvent):
        f(None, "info", {"event": "signed_on", "ori": "TXNLETS00", "kind": "local"})
    with pytest.raises(structlog.DropEvent):
        f(None, "info", {"event": "signed_off", "ori": "TXNLETS00", "outstanding": 0})
    # A responder's TCP link takes TX over: its sign-on and sign-off are news.
    ev = {"event": "signed_on", "ori": "TXNLETS00", "kind": "tcp"}
    assert f(None, "info", dict(ev)) == ev
    assert f(None, "info", {"event": "signed_off", "ori": "TXNLETS00"})["event"] == "signed_off"
    # Warnings are never lowered; at debug level the lowered lines show as debug.
    assert f(None, "warning", {"event": "signed_on", "ori": "X", "kind": "local"})
    d = RoutineFilter(logging.DEBUG)
    assert d(None, "info", {"event": "signed_on", "ori": "X", "kind": "local"})["level"] == "debug"
