"""Attack: reading CJI from the disk as another user (issue 11, hole 3), against a real ``serve``.

The data directory was 0755 and the journal, its WAL, the LEIS data and the
pid file 0644, with message text in clear, so ``grep`` as ``nobody`` found
it. Now the directory is 0700 and every file in it 0600 whatever the umask,
and message text is sealed with AES-256-GCM under a key outside the data
directory, made at the first start: no file of the data directory, WAL
included, holds a message's text; ``log show --text`` and ``log search
--text`` still read it with the key.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from nlets_switch.tools.client import Client
from tests.conftest_serve_process import Served, serve_process

SECRET = "ZQXJWORTHINGTON"


def _cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", *args, "--data-dir",
                           str(served.data_dir)], capture_output=True, text=True,
                          env=served.env, timeout=60)


def _files(d: Path) -> list[Path]:
    return [p for p in d.rglob("*")]


async def test_data_directory_is_private_and_holds_no_clear_text(tmp_path: Path) -> None:
    # A careless umask: everything would be world-readable.
    with serve_process(tmp_path, umask=0o022) as served:
        az = await Client.connect("127.0.0.1", served.port, "AZNLETS20")
        ny = await Client.connect("127.0.0.1", served.port, "NYNLETS00")
        for i in range(50):
            assert (await az.send(f"AM.AZNLETS20.NY.*C{i:04d}.TXT NAM/{SECRET},JOHN "
                                  f"NUMBER {i}")).ok
        for _ in range(50):
            assert SECRET in await ny.receive(5)
        await az.close()
        await ny.close()
        log = served.log_text()
        assert "text_key_created" in log
        key = tmp_path / "xdg" / "nlets-switch" / "text.keys"
        assert str(key) in log
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600

        # While it runs (WAL and -shm present) and after it stops.
        data = served.data_dir
        names = {p.name for p in _files(data)}
        assert {"journal.sqlite", "journal.sqlite-wal", "switch.pid"} <= names, names
        for when in ("running", "stopped"):
            assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
            for p in _files(data):
                mode = stat.S_IMODE(os.lstat(p).st_mode)
                want = 0o700 if p.is_dir() else 0o600
                assert mode == want, f"{when}: {p} is {oct(mode)}"
                if p.is_file():
                    assert SECRET.encode() not in p.read_bytes(), f"{when}: {p} holds text"
            if when == "running":
                served.proc.terminate()
                served.proc.wait(10)

    # With the key, the operator still reads and searches the text.
    found = _cli(served, "log", "search", "--text", SECRET.lower(), "--limit", "100")
    assert found.returncode == 0, found.stderr
    assert "50 message(s)" in found.stderr
    shown = _cli(served, "log", "show", "1", "--text")
    assert f"NAM/{SECRET},JOHN NUMBER 0" in shown.stdout, shown.stdout + shown.stderr
    # And the key file is nowhere in the data directory.
    assert not any(p.name.endswith(".keys") for p in _files(data))
