"""``nlets-switch remove-status``: take an ORI out of service (SM .04.), or lift it."""

from __future__ import annotations

import argparse
from typing import Any

from nlets_switch.commands._common import SubParsers
from nlets_switch.commands._operator import EXIT_STATUSES, add_api_arguments, request, run

EPILOG = f"""examples:
  nlets-switch remove-status NYNLETS00 --reason "state asked"
  nlets-switch remove-status NYNLETS00 --keys AM DQ
  nlets-switch remove-status NYNLETS00 --lift
  nlets-switch remove-status --list

While an ORI is on remove status, a message for it (for the keys named, or
any key) is not forwarded: its sender gets SM .04. USER OUT OF SERVICE FOR
MSG TYPE, NLETS WILL NOT FORWARD. The status is kept across restarts.
{EXIT_STATUSES}
"""


def register(sub: SubParsers) -> None:
    """Add ``remove-status``."""
    p = sub.add_parser(
        "remove-status", help="put an ORI on remove status (senders get SM .04.), or lift it",
        description="Ask a running switch to stop forwarding to an ORI (some keys or all) "
        "until the status is lifted.", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ori", nargs="?", help="the ORI")
    p.add_argument("--keys", nargs="+", metavar="KEY", help="only these message keys")
    p.add_argument("--lift", action="store_true", help="lift the ORI's remove status")
    p.add_argument("--list", action="store_true", help="show the ORIs on remove status")
    p.add_argument("--reason", default="", help="why (kept in the audit trail)")
    add_api_arguments(p)
    p.set_defaults(func=remove_status)


def _table(answer: dict[str, Any]) -> str:
    rows = answer.get("remove_status") or []
    if not rows:
        return "no ORI is on remove status"
    return "\n".join(f"{r['ori']}  {','.join(r['keys']) if r['keys'] else 'all keys'}  "
                     f"by {r['operator']}" + (f": {r['reason']}" if r["reason"] else "")
                     for r in rows)


def remove_status(args: argparse.Namespace) -> int:
    """Change (or list) remove status; the exit status."""
    if args.list or not args.ori:
        return run("remove-status", args,
                   lambda: request(args, "GET", "/api/remove-status"), _table)
    body = {"ori": args.ori, "keys": args.keys, "lift": args.lift, "reason": args.reason}

    def show(answer: dict[str, Any]) -> str:
        if args.lift:
            return f"{answer['ori']}: remove status lifted"
        keys = ", ".join(answer["keys"]) if answer.get("keys") else "every key"
        return f"{answer['ori']}: on remove status for {keys} (senders get SM .04.)"

    return run("remove-status", args,
               lambda: request(args, "POST", "/api/remove-status", body), show)
