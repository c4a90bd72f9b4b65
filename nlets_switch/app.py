"""Assembles a running switch from a configuration: the core, then what plugs into it.

Kept apart from :mod:`nlets_switch.switch` so that the core does not import
its services, monitoring or operator interfaces.
"""

from __future__ import annotations

from collections.abc import Sequence

from nlets_switch import adapter as ad
from nlets_switch import services as svc  # registers the ``services`` config checker
from nlets_switch.config import Config
from nlets_switch.schema import load_schemas
from nlets_switch.switch import Switch


async def build_switch(cfg: Config, adapters: Sequence[ad.Loaded] | None = None) -> Switch:
    """A switch for ``cfg``, with everything the configuration asks for attached.

    ``adapters`` defaults to every adapter installed in the entry-point group
    ``nlets_switch.adapters`` that the configuration does not disable. Raises
    :class:`~nlets_switch.errors.AdapterError` for an adapter of the wrong API
    version, a key without a schema or a key claimed twice.
    """
    loaded = svc.load_adapters(cfg.raw) if adapters is None else list(adapters)
    extra = ad.schema_dirs(loaded)
    schemas = load_schemas(extra) if extra else None
    switch = Switch(cfg, schemas)
    ad.check_adapters(loaded, switch.schemas)
    svc.Services(switch, loaded).install()
    return switch
