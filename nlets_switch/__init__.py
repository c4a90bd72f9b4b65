"""nlets-switch: an open emulator of the Nlets message switch.

The curated surface: the switch and its configuration, the client, and the
pure codec. The names load lazily (PEP 562), so that importing one layer
(``nlets_switch.wire``, ``nlets_switch.core``) does not drag in asyncio,
sockets or the store through this package.

Layers, bottom up: ``wire`` (codec) and ``core`` (engine) are pure;
``store`` owns the tables; ``server`` is the asyncio layer; ``services``,
``ops`` and ``tools`` sit on top.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nlets_switch.config import Config, config_from_dict, demo_config, load_config
    from nlets_switch.server.switch import Switch
    from nlets_switch.tools.client import Client, SignOnError
    from nlets_switch.wire.message import Message, OutputMessage, parse_message, parse_output

_EXPORTS = {
    "Client": "nlets_switch.tools.client",
    "SignOnError": "nlets_switch.tools.client",
    "Config": "nlets_switch.config",
    "config_from_dict": "nlets_switch.config",
    "demo_config": "nlets_switch.config",
    "load_config": "nlets_switch.config",
    "Message": "nlets_switch.wire.message",
    "OutputMessage": "nlets_switch.wire.message",
    "parse_message": "nlets_switch.wire.message",
    "parse_output": "nlets_switch.wire.message",
    "Switch": "nlets_switch.server.switch",
}

__all__ = [
    "Client",
    "Config",
    "Message",
    "OutputMessage",
    "SignOnError",
    "Switch",
    "config_from_dict",
    "demo_config",
    "load_config",
    "parse_message",
    "parse_output",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'nlets_switch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
