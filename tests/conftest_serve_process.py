"""A real ``nlets-switch serve`` process for the attack replays of issue 11.

``serve_process(tmp_path, config)`` starts it on free ports (links and HTTP),
with ``XDG_CONFIG_HOME`` inside ``tmp_path`` (so keys made at first start stay
in the test's directory), waits until the link port answers, and stops it on
leaving the ``with``. Its log (stdout and stderr) goes to ``tmp_path/serve.log``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import free_port


@dataclass
class Served:
    """A running ``serve``: its process, ports, data directory and log file."""

    proc: subprocess.Popen[bytes]
    port: int
    http_port: int
    data_dir: Path
    log: Path
    env: dict[str, str]

    @property
    def base(self) -> str:
        """The operator HTTP server's base URL."""
        return f"http://127.0.0.1:{self.http_port}"

    def log_text(self) -> str:
        """What the process has logged so far."""
        return self.log.read_text(errors="replace")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise AssertionError(f"serve did not listen on {port}: {log.read_text()[-2000:]}")


@contextlib.contextmanager
def serve_process(tmp_path: Path, config: dict[str, Any] | None = None,
                  umask: int | None = None, extra_env: dict[str, str] | None = None,
                  ) -> Iterator[Served]:
    """Start ``nlets-switch serve`` with ``config``; stop it afterwards."""
    port, http_port = free_port(), free_port()
    cfg = tmp_path / "switch.yaml"
    cfg.write_text(yaml.safe_dump(config or {}))
    data = tmp_path / "data"
    log = tmp_path / "serve.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **(extra_env or {})}
    old = os.umask(umask) if umask is not None else None
    try:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "nlets_switch", "serve", "--config", str(cfg),
                 "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
                 "--http", f"127.0.0.1:{http_port}", "--log-format", "json"],
                stdout=out, stderr=subprocess.STDOUT, env=env)
    finally:
        if old is not None:
            os.umask(old)
    try:
        _wait_port(port, proc, log, 20)
        _wait_port(http_port, proc, log, 5)
        yield Served(proc, port, http_port, data, log, env)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
