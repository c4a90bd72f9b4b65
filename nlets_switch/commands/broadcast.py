"""``nlets-switch broadcast``: the switch's SM to every signed-on terminal."""

from __future__ import annotations

import argparse
from typing import Any

from nlets_switch.commands._common import SubParsers
from nlets_switch.commands._operator import EXIT_STATUSES, add_api_arguments, request, run

EPILOG = f"""examples:
  nlets-switch broadcast out-of-service --until 0300 --reason "journal move"
  nlets-switch broadcast in-service

Every terminal signed on gets an SM from NL0000000: "NLETS TEMPORARILY OUT OF
SERVICE UNTIL 0300 UTC" (the switch's time zone), or "NLETS IN SERVICE".
{EXIT_STATUSES}
"""


def register(sub: SubParsers) -> None:
    """Add ``broadcast``."""
    p = sub.add_parser(
        "broadcast", help="send the switch's out-of-service or in-service SM to every terminal",
        description="Ask a running switch to send its SM broadcast to every signed-on "
        "terminal.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=("out-of-service", "in-service"))
    p.add_argument("--until", metavar="HHMM", help="out-of-service: back at (0000-2359)")
    p.add_argument("--reason", default="", help="why (kept in the audit trail)")
    add_api_arguments(p)
    p.set_defaults(func=broadcast)


def _show(answer: dict[str, Any]) -> str:
    to = answer.get("to") or []
    return f"sent to {len(to)} terminal(s): {' '.join(to) or '-'}"


def broadcast(args: argparse.Namespace) -> int:
    """Send the broadcast; the exit status."""
    if args.kind == "out-of-service" and not args.until:
        print("nlets-switch broadcast: out-of-service needs --until HHMM")
        return 3
    body = {"kind": args.kind, "until": args.until, "reason": args.reason}
    return run("broadcast", args, lambda: request(args, "POST", "/api/broadcast", body), _show)
