"""docs/records.md's `audit verify` example, run as written: the trail verifies, the
documented UPDATE really changes a record, and `audit verify` then fails at it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.test_console import wait_port

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "records.md"


def documented_commands() -> list[str]:
    """The ``$ `` lines of the code block under "### `nlets-switch audit verify`"."""
    text = DOC.read_text()
    section = text[text.index("### `nlets-switch audit verify`"):]
    block = section.split("```", 2)[1]
    return [line[2:] for line in block.splitlines() if line.startswith("$ ")]


def test_the_documented_tamper_breaks_the_chain(tmp_path: Path) -> None:
    if shutil.which("sqlite3") is None:
        pytest.skip("the sqlite3 command-line program is not installed (make system-deps)")
    commands = documented_commands()
    assert [c.split()[0] for c in commands] == ["nlets-switch", "sqlite3", "nlets-switch"]
    # The demo world as `nlets-switch serve` starts it, in the default ./nlets-data.
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nlets_switch", "serve", "--listen",
                             f"127.0.0.1:{port}", "--http", "off"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    # `nlets-switch` as the reader types it: the one installed beside this Python.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    results = [subprocess.run(c, shell=True, cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=60) for c in commands]
    before, update, after = results
    assert before.returncode == 0 and re.match(r"\d+ records verified\n", before.stdout)
    assert update.returncode == 0, update.stderr
    assert after.returncode == 1
    assert after.stdout.startswith("audit trail BROKEN at record 3: MAC does not match")
