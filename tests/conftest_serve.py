"""A real ``nlets-switch serve`` process, for attacks replayed as an attacker would (issue 11)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from nlets_switch.wire import frames as fr
from tests.conftest import free_port


@dataclass
class Served:
    """A running ``serve``: its link port, HTTP port (0: off), data directory."""

    proc: subprocess.Popen[bytes]
    port: int
    http: int
    data: Path

    def audits(self, type_: str | None = None) -> list[dict[str, Any]]:
        """The audit trail as ``audit list --json`` shows it (oldest first)."""
        args = [sys.executable, "-m", "nlets_switch", "audit", "list", "--json",
                "--limit", "100000", "--data-dir", str(self.data)]
        if type_:
            args += ["--type", type_]
        out = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.strip()]
        return list(reversed(rows))

    async def wait_audit(self, pred: Any, timeout: float = 10.0,
                         type_: str | None = None) -> list[dict[str, Any]]:
        """Poll the trail until ``pred(rows)`` holds; the rows."""
        async with asyncio.timeout(timeout):
            while True:
                rows = await asyncio.to_thread(self.audits, type_)
                if pred(rows):
                    return rows
                await asyncio.sleep(0.3)

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``nlets-switch ARGS`` (e.g. ``unlock``) against this switch."""
        return subprocess.run([sys.executable, "-m", "nlets_switch", *args],
                              capture_output=True, text=True, timeout=timeout)


@asynccontextmanager
async def serving(tmp_path: Path, raw: dict[str, Any] | None = None, *, http: bool = False,
                  extra: tuple[str, ...] = (), port: int | None = None) -> AsyncIterator[Served]:
    """``serve`` with the configuration ``raw`` (the demo world if None), stopped after.

    ``port``: the configuration's own listeners are used, and this is one of them.
    """
    listen = ["--listen", f"127.0.0.1:{free_port()}"] if port is None else []
    port = port if port is not None else int(listen[1].rsplit(":", 1)[1])
    hport = free_port() if http else 0
    data = tmp_path / "data"
    args = [sys.executable, "-m", "nlets_switch", "serve", *listen,
            "--data-dir", str(data), "--http", f"127.0.0.1:{hport}" if http else "off",
            "--log-level", "warning", *extra]
    if raw is not None:
        cfg = tmp_path / "switch.yaml"
        cfg.write_text(yaml.safe_dump(raw))
        args += ["--config", str(cfg)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for in a thread
        args, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        async with asyncio.timeout(20):
            while True:
                assert proc.poll() is None, (tmp_path / "serve.log").read_text()
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", port)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
            while http:
                try:
                    _, w = await asyncio.open_connection("127.0.0.1", hport)
                    w.close()
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        yield Served(proc, port, hport, data)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(proc.wait, 20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


async def sign_on(port: int, body: bytes, host: str = "127.0.0.1",
                  timeout: float = 10.0) -> tuple[fr.Frame | None, asyncio.StreamWriter]:
    """Connect (from ``host``), send a ``C``; the first frame answered (None: closed)."""
    r, w = await asyncio.open_connection("127.0.0.1", port, local_addr=(host, 0))
    w.write(fr.encode_frame(fr.SIGN_ON, 1, body))
    buf = fr.FrameBuffer()
    async with asyncio.timeout(timeout):
        while True:
            data = await r.read(4096)
            if not data:
                return None, w
            frames = buf.feed(data)
            if frames:
                return frames[0], w
