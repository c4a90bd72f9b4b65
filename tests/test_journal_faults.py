"""A damaged or read-only journal under a real ``serve`` process (issue 15).

A journal is filled with held messages through a real switch, the switch is
stopped, and 16 bytes are overwritten in a page of each table and index and
in the file header. ``serve`` must then refuse in one line (exit 2, no
traceback), ``journal check`` must say so, and ``journal recover`` must give
a journal from which a restarted switch delivers every readable held message.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nlets_switch.cli import main
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest import free_port
from tests.damage import damage, immutable, middle_leaf, read_only_dir, root_of
from tests.test_durability import start_switch

N = 2000
INDEXES = ["messages_time", "deliveries_owed", "deliveries_msg", "deliveries_expires"]


def body(i: int) -> str:
    tail = "L" * 5000 if i % 97 == 0 else "X" * (i % 53)  # some need overflow pages
    return f"HELD MESSAGE {i:05d} {tail}"


async def _send_held(port: int) -> None:
    az = await Client.connect("127.0.0.1", port, "AZNLETS20")
    futs = [az.send_nowait(f"AM.AZNLETS20.NY.*C{i}.TXT\n{body(i)}") for i in range(1, N + 1)]
    answers = await asyncio.wait_for(asyncio.gather(*futs), 60)
    assert all(a.ok for a in answers)  # in custody: durable in the journal
    await az.close()


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory whose journal holds N messages held for NYNLETS00 (not signed on)."""
    data = tmp_path_factory.mktemp("filled") / "data"
    conf = data.with_name("fast.yaml")
    # The demo world, with the per-ORI rate limit out of the way of a fast fill.
    conf.write_text("limits:\n  rate_per_ori: 1000000\n  rate_burst: 1000000\n")
    port = free_port()
    proc = start_switch(data, port, "--config", str(conf))
    try:
        asyncio.run(_send_held(port))
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    assert not Path(f"{data / 'journal.sqlite'}-wal").exists()  # checkpointed at the stop
    return data


@pytest.fixture
def data(filled: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    shutil.copytree(filled, d)
    return d


def serve_refuses(data: Path) -> str:
    """Run ``serve``; it must exit 2 with one line on stderr and no traceback. The line."""
    proc = subprocess.run(
        [sys.executable, "-m", "nlets_switch", "serve", "--data-dir", str(data),
         "--listen", f"127.0.0.1:{free_port()}", "--http", "off"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"nlets-switch: journal {data / 'journal.sqlite'} ")
    return lines[0]


def target(journal: Path, name: str) -> tuple[int, int]:
    """(page, offset) to damage for ``name``: a root page, a middle leaf, or the header."""
    if name == "header":
        return 1, 0
    if name.endswith(":leaf"):
        return middle_leaf(journal, name.split(":")[0]), 0
    return root_of(journal, name), 0


@pytest.mark.parametrize("name", ["header", "messages", "messages:leaf", "deliveries",
                                  "deliveries:leaf", *INDEXES, "meta", "counters"])
def test_serve_refuses_a_damaged_journal_in_one_line(data: Path, name: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    journal = data / "journal.sqlite"
    damage(journal, *target(journal, name))
    line = serve_refuses(data)
    assert " is damaged (" in line
    assert line.endswith(f"run 'nlets-switch journal recover --data-dir {data}' and start again")
    if name == "header":
        assert "file is not a database" in line
    assert main(["journal", "check", "--data-dir", str(data)]) == 2
    assert "DAMAGED" in capsys.readouterr().out


async def _receive_all(port: int, expected: int) -> list[str]:
    ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
    got = [await ny.receive(20) for _ in range(expected)]
    got += await ny.drain(0.5)  # and nothing more
    await ny.close()
    return got


def test_recover_gives_a_journal_that_delivers_every_readable_message(data: Path) -> None:
    journal = data / "journal.sqlite"
    # A page of every table and index, a leaf of each data table, and the header.
    spots = {target(journal, n) for n in ["messages", "messages:leaf", "deliveries:leaf",
                                          *INDEXES, "meta", "counters", "header"]}
    for page, offset in spots:
        damage(journal, page, offset)
    damaged_digest = hashlib.sha256(journal.read_bytes()).hexdigest()
    assert " is damaged (" in serve_refuses(data)
    check = subprocess.run([sys.executable, "-m", "nlets_switch", "journal", "check",
                            "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 2

    rec = subprocess.run([sys.executable, "-m", "nlets_switch", "journal", "recover",
                          "--data-dir", str(data)], capture_output=True, text=True, timeout=120)
    assert rec.returncode == 1, rec.stdout + rec.stderr  # written, with what was lost listed
    assert "not recovered:" in rec.stdout
    assert re.search(r"\d+ deliveries owed in the new journal", rec.stdout)
    # Do what it says, word for word (up to starting the switch).
    steps = rec.stdout.split("with the switch stopped:\n", 1)[1].splitlines()[:3]
    subprocess.run(["bash", "-ec", " && ".join(s.strip() for s in steps)], check=True)
    kept = [p for p in data.glob("damaged-*/journal.sqlite")]
    assert len(kept) == 1
    assert hashlib.sha256(kept[0].read_bytes()).hexdigest() == damaged_digest

    conn = sqlite3.connect(journal)
    ids = [int(r[0][1:]) for r in conn.execute(
        "SELECT m.control FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        "WHERE d.link = 'NYNLETS00' AND d.state = 'held' ORDER BY d.id")]
    conn.close()
    # Lost: what a leaf of messages and a leaf of deliveries held, no more.
    assert N - 120 <= len(ids) < N
    port = free_port()
    proc = start_switch(data, port)
    try:
        got = [parse_output(t) for t in asyncio.run(_receive_all(port, len(ids)))]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
    # Every readable held message, once, byte for byte, in order.
    assert [g.text for g in got] == [body(i) for i in ids]
    assert [g.control for g in got] == [f"C{i}" for i in ids]


def test_serve_refuses_a_read_only_data_directory(data: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with read_only_dir(data):
        line = serve_refuses(data)
        assert " is read-only (" in line
        assert f"remount {data} read-write or fix its permissions" in line
        assert main(["journal", "check", "--data-dir", str(data)]) == 2
        assert "READ-ONLY" in capsys.readouterr().out


def test_serve_refuses_a_read_only_data_directory_without_a_journal(tmp_path: Path) -> None:
    data = tmp_path / "empty"
    data.mkdir()
    with read_only_dir(data):
        line = serve_refuses(data)
        assert f"cannot create files in {data}" in line


def test_serve_refuses_a_read_only_journal_file(data: Path) -> None:
    with immutable(data / "journal.sqlite"):
        line = serve_refuses(data)
        assert " is read-only (cannot write journal.sqlite" in line

