"""Helpers for the monitoring tests (MQTT, HTTP, dashboard): a switch with monitoring attached."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from nlets_switch.config import config_from_dict, with_overrides
from nlets_switch.core.events import MemoryAudit
from nlets_switch.ops.monitoring import Monitoring, attach_monitoring
from nlets_switch.server.switch import Switch

MOSQUITTO = "/usr/sbin/mosquitto"

Started = tuple[Switch, Monitoring]
MonitoredFactory = Callable[..., Awaitable[Started]]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def monitored(tmp_path: Path) -> AsyncIterator[MonitoredFactory]:
    """``await monitored(raw_sections)``: the demo world plus monitoring, HTTP on port 0."""
    started: list[Started] = []

    async def factory(raw: dict[str, Any] | None = None, http: str = "127.0.0.1:0") -> Started:
        cfg = with_overrides(config_from_dict(raw or {}), ["127.0.0.1:0"],
                             str(tmp_path / "data"))
        sw = Switch(cfg, audit=MemoryAudit())
        await sw.start()
        mon = await attach_monitoring(sw, cfg, http=http)
        started.append((sw, mon))
        return sw, mon

    yield factory
    for sw, mon in started:
        await sw.stop()
        await mon.stop()


class Broker:
    """A real Mosquitto on a free loopback port, which a test may kill and restart."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "persistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until it accepts connections."""
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    def kill(self) -> None:
        """Kill it for real (SIGKILL): no goodbye to anybody."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Any:
    """A running Mosquitto broker of this test only."""
    if shutil.which(MOSQUITTO) is None:
        pytest.skip(f"{MOSQUITTO} is not installed (Debian package mosquitto)")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.kill()
