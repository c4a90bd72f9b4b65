"""Helpers for the services tests: the demo world with a ``services`` section."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from nlets_switch.config import config_from_dict, with_overrides
from nlets_switch.server.app import build_switch
from nlets_switch.server.switch import Switch
from nlets_switch.services.adapter import Loaded
from nlets_switch.services.settings import check_section
from tests.conftest import SERVICE_CREDENTIAL

#: Small and fast where the size of the DHS data does not matter.
FAST: dict[str, Any] = {
    "leis": {"persons": 500, "delay_s": 0},
    "nl": {"gather_s": 0.5},
}


@asynccontextmanager
async def world(data_dir: Path, services: dict[str, Any] | None = None,
                adapters: Sequence[Loaded] | None = None) -> AsyncIterator[Switch]:
    """The demo world on 127.0.0.1 port 0 with ``services`` (checked), started."""
    section = FAST if services is None else services
    assert check_section(section) == []
    cfg = with_overrides(config_from_dict({"services": section}), ["127.0.0.1:0"], str(data_dir))
    sw = await build_switch(cfg, adapters, service_credential=SERVICE_CREDENTIAL)
    await sw.start()
    try:
        yield sw
    finally:
        await sw.stop()
