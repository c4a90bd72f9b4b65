"""Nothing acknowledged is ever lost: the switch as a real process, killed for real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest import free_port


def start_switch(data: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "nlets_switch", "serve", "--listen", f"127.0.0.1:{port}",
         "--data-dir", str(data), "--http", "off", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 15
    import socket

    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else "exited"
                raise AssertionError(err) from None
            time.sleep(0.05)
    proc.kill()
    raise AssertionError("switch did not start")


async def test_kill_9_after_acknowledgement_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = start_switch(data, port)
    n = 200
    sent: list[str] = []
    try:
        az = await Client.connect("127.0.0.1", port, "AZNLETS20")
        futs = []
        for i in range(n):
            text = f"AM.AZNLETS20.NY.*C{i}.TXT\nHELD MESSAGE {i:04d} " + "X" * (i % 37)
            sent.append(text)
            futs.append(az.send_nowait(text))
        answers = await asyncio.wait_for(asyncio.gather(*futs), 30)
        assert all(a.ok for a in answers)  # every one acknowledged: custody taken
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    await az.close(sign_off=False)

    proc = start_switch(data, port)
    try:
        ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
        got = [parse_output(await ny.receive(10)) for _ in range(n)]
        await ny.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    want = [s.split("TXT\n", 1)[1] for s in sent]
    assert [g.text for g in got] == want  # all N, in order, byte for byte
    assert [g.control for g in got] == [f"C{i}" for i in range(n)]
    assert [g.output_no for g in got] == list(range(1, n + 1))


async def test_sigterm_is_graceful_and_numbers_survive_restart(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    proc = start_switch(data, port)
    az = await Client.connect("127.0.0.1", port, "AZNLETS20")
    for i in range(5):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT BEFORE {i}")).ok
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert "stopped" in err
    assert "BEFORE" not in err  # the log never carries message text
    await az.close(sign_off=False)

    proc = start_switch(data, port)
    try:
        az = await Client.connect("127.0.0.1", port, "AZNLETS20")
        assert (await az.send("AM.AZNLETS20.NY.TXT AFTER")).ok
        ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
        got = [parse_output(await ny.receive(5)) for _ in range(6)]
        assert [g.input_no for g in got] == [1, 2, 3, 4, 5, 6]  # numbering continues
        await ny.close()
        await az.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)


def test_serve_logs_where_it_listens_and_journals(tmp_path: Path) -> None:
    port = free_port()
    proc = start_switch(tmp_path / "d", port)
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(15)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert f"127.0.0.1:{port}" in err
    assert str(tmp_path / "d" / "journal.sqlite") in err
