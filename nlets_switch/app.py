"""Assembles a running switch from a configuration: the core, then what plugs into it.

Kept apart from :mod:`nlets_switch.switch` so that the core does not import
its services, monitoring or operator interfaces.
"""

from __future__ import annotations

from nlets_switch.config import Config
from nlets_switch.switch import Switch


async def build_switch(cfg: Config) -> Switch:
    """A switch for ``cfg``, with everything the configuration asks for attached."""
    return Switch(cfg)
