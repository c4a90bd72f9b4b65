"""``nlets-switch keys``: the keyring that seals message text at rest (docs/records.md).

::

    nlets-switch keys init   [--config FILE]   make the keyring (if missing); say where
    nlets-switch keys rotate [--config FILE]   add a key; new rows are sealed with it
    nlets-switch keys show   [--config FILE]   where it is, its key ids (never the keys)

The keyring is ``security.text_key_file``, else
``$XDG_CONFIG_HOME/nlets-switch/text.keys``: outside the data directory, 0600.
Rotation adds a line and rewrites no row: rows sealed under older ids keep
opening with them, so never remove a line while rows sealed under it are kept.
A running switch takes the new key at its next start.
"""

from __future__ import annotations

import argparse
import sys

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit
from nlets_switch.config import Config
from nlets_switch.ops import audit
from nlets_switch.store import keys, textcrypt

EPILOG = """examples:
  nlets-switch keys init
  nlets-switch keys rotate --config /etc/nlets-switch/switch.yaml

Back the keyring up apart from the data directory: without it the message text
in the journal cannot be read.
"""


def register(sub: SubParsers) -> None:
    """Add ``keys`` with ``init``, ``rotate`` and ``show``."""
    p = sub.add_parser("keys", help="the keyring of message text at rest (init, rotate)",
                       description="Message text is sealed with AES-256-GCM under a keyring "
                       "kept outside the data directory (CJIS 5.10.1.2).",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ksub = p.add_subparsers(dest="keys_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    for name, fn, text in (("init", init_cmd, "make the keyring if it is missing"),
                           ("rotate", rotate_cmd, "add a key that seals new rows from now on"),
                           ("show", show_cmd, "where the keyring is and its key ids")):
        c = ksub.add_parser(name, help=text)
        add_config_args(c)
        c.set_defaults(func=fn)


def _note(cfg: Config, action: str, outcome: str, **detail: object) -> None:
    """Key management is an administrative action: audited (CJIS 5.4.1.1)."""
    warning = audit.record_from_tool(cfg, "admin", outcome, {"action": action, **detail})
    if warning:
        print(f"keys: {warning}", file=sys.stderr)


def init_cmd(args: argparse.Namespace) -> int:
    """``keys init``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    path = textcrypt.keyring_path(cfg.security.text_key_file)
    try:
        ring, made = keys.load_keyring(path, create=True)
    except (OSError, ValueError) as e:
        print(f"keys: {e}", file=sys.stderr)
        return 2
    print(f"{'made' if made else 'already there:'} {path} (key {ring.current} seals new rows)")
    if made:
        print("back it up apart from the data directory: without it the message text "
              "cannot be read")
    return 0


def rotate_cmd(args: argparse.Namespace) -> int:
    """``keys rotate``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    path = textcrypt.keyring_path(cfg.security.text_key_file)
    try:
        ring = keys.rotate_keyring(path)
    except FileNotFoundError:
        print(f"keys: no keyring at {path} (nlets-switch keys init makes one)",
              file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"keys: {e}", file=sys.stderr)
        return 2
    print(f"{path}: key {ring.current} seals new rows from the next start; keys "
          f"{', '.join(map(str, sorted(ring.keys)))} open them")
    _note(cfg, "text_key_rotate", "success", key_id=ring.current)
    return 0


def show_cmd(args: argparse.Namespace) -> int:
    """``keys show``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    path = textcrypt.keyring_path(cfg.security.text_key_file)
    try:
        ring, _ = keys.load_keyring(path, create=False)
    except FileNotFoundError:
        print(f"no keyring at {path} (the first start, or keys init, makes one)")
        return 1
    except (OSError, ValueError) as e:
        print(f"keys: {e}", file=sys.stderr)
        return 2
    state = "on" if cfg.security.encrypt_text else "OFF (security.encrypt_text: false)"
    print(f"keyring   {path}\nkey ids   {', '.join(map(str, sorted(ring.keys)))}\n"
          f"sealing   {ring.current}\nencrypt   {state}")
    return 0
