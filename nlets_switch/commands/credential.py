"""``nlets-switch hash-credential``: the stored form of a sign-on credential."""

from __future__ import annotations

import argparse
import getpass
import sys

from nlets_switch.commands._common import SubParsers
from nlets_switch.server.credentials import hash_credential


def register(sub: SubParsers) -> None:
    """Add ``hash-credential``."""
    p = sub.add_parser(
        "hash-credential", help="print the scrypt hash of a credential for links[].credential",
        description="Read a credential (prompted, or one line on standard input) and print the "
        "salted scrypt hash to put in a link's `credential:`. The switch never stores the "
        "credential itself.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Prompt or read, then print the hash."""
    secret = getpass.getpass("credential: ") if sys.stdin.isatty() else sys.stdin.readline()
    secret = secret.rstrip("\r\n")
    if not secret:
        print("hash-credential: empty credential", file=sys.stderr)
        return 1
    print(hash_credential(secret))
    return 0
