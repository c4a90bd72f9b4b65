"""nlets-switch: an open emulator of the Nlets message switch.

The curated surface: the switch and its configuration, the client, and the
pure codec. Everything else lives in its own module.
"""

from nlets_switch.client import Client, SignOnError
from nlets_switch.config import Config, config_from_dict, demo_config, load_config
from nlets_switch.message import Message, OutputMessage, parse_message, parse_output
from nlets_switch.switch import Switch

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
