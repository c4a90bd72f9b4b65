"""Shared fixtures: an in-process switch on 127.0.0.1 port 0, and clients of it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from nlets_switch.config import config_from_dict, demo_config, with_overrides
from nlets_switch.core.events import MemoryAudit
from nlets_switch.server.switch import Switch
from nlets_switch.tools.client import Client

SwitchFactory = Callable[..., Awaitable[Switch]]

#: What service ORIs (VTICE0900, simulated state terminals) sign on with in tests:
#: never by the loopback exemption (issue 11).
SERVICE_CREDENTIAL = "test-service-credential"
ClientFactory = Callable[..., Awaitable[Client]]


def free_port() -> int:
    """A TCP port nobody listens on right now (for subprocesses that need one)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def make_switch(tmp_path: Path) -> AsyncIterator[SwitchFactory]:
    """Start switches in-process; each is stopped at the end of the test.

    ``await make_switch()`` is the demo world; ``await make_switch(raw={...})``
    a configuration given as the YAML mapping.
    """
    started: list[Switch] = []

    async def factory(raw: dict[str, Any] | None = None, data_dir: Path | None = None,
                      build: bool = False) -> Switch:
        cfg = config_from_dict(raw) if raw is not None else demo_config()
        cfg = with_overrides(cfg, ["127.0.0.1:0"], str(data_dir or tmp_path / "data"))
        if build:
            from nlets_switch.server.app import build_switch

            sw = await build_switch(cfg, service_credential=SERVICE_CREDENTIAL)
        else:
            sw = Switch(cfg, audit=MemoryAudit(), service_credential=SERVICE_CREDENTIAL)
        await sw.start()
        started.append(sw)
        return sw

    yield factory
    for sw in started:
        await sw.stop()


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """Clients signed on to a switch; each is closed at the end of the test."""
    clients: list[Client] = []

    async def factory(sw: Switch, ori: str, **kw: Any) -> Client:
        host, port = sw.addresses[0]
        c = await Client.connect(host, port, ori, **kw)
        clients.append(c)
        return c

    yield factory
    for c in clients:
        await c.close(sign_off=False)
