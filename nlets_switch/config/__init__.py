"""The switch's configuration: YAML in, frozen pydantic models out.

Every problem is reported with the key path it concerns (``links[3].ori:
not a 9-character ORI``), all at once, so that ``check-config`` and ``serve``
can print them together. With no file, :func:`demo_config` is the demo
world of PROTOCOL part 8.

One model per section, with its defaults written once in its fields:
:mod:`nlets_switch.config.sections` (switch, listeners, limits, security,
hold, links), :mod:`nlets_switch.ops.settings` (mqtt, http, api, audit,
retention), :mod:`nlets_switch.services.settings` (services, and through it
each adapter's own model); :mod:`nlets_switch.config.load` composes them.
:mod:`nlets_switch.config.model` has the building blocks.

Importing this package loads pydantic and YAML, never asyncio, sockets,
SQLite or the logging stack: the models are built on first use.

See docs/configuration.md for the format, every key and its default.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nlets_switch.config.load import (
        US_STATES,
        Config,
        ConfigFile,
        config_from_dict,
        demo_config,
        finish,
        load_config,
        simulated_ct_ori,
        with_overrides,
    )
    from nlets_switch.config.sections import (
        Limits,
        Listener,
        Security,
        TlsSettings,
        is_loopback,
        parse_address,
    )
    from nlets_switch.core.entries import LESC_ORI, ROLES, Entry, HoldOverride

# The names load lazily (PEP 562): the section owners import
# nlets_switch.config.model, which runs this file first; an eager import of
# config.load here, which imports them, would make a cycle.
_EXPORTS = {
    **dict.fromkeys(("US_STATES", "Config", "ConfigFile", "config_from_dict", "demo_config",
                     "finish", "load_config", "simulated_ct_ori", "with_overrides"),
                    "nlets_switch.config.load"),
    **dict.fromkeys(("Limits", "Listener", "Security", "TlsSettings", "is_loopback",
                     "parse_address"), "nlets_switch.config.sections"),
    **dict.fromkeys(("LESC_ORI", "ROLES", "Entry", "HoldOverride"),
                    "nlets_switch.core.entries"),
}

__all__ = [
    "LESC_ORI",
    "ROLES",
    "US_STATES",
    "Config",
    "ConfigFile",
    "Entry",
    "HoldOverride",
    "Limits",
    "Listener",
    "Security",
    "TlsSettings",
    "config_from_dict",
    "demo_config",
    "finish",
    "is_loopback",
    "load_config",
    "parse_address",
    "simulated_ct_ori",
    "with_overrides",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nlets_switch.config' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
