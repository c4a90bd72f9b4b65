"""``nlets-switch unlock ORI|ADDRESS``: lift sign-on lock-outs of a running switch.

Failed sign-ons lock out the source address they came from (for that ORI)
and, past a higher threshold, the ORI itself (issue 11; CJIS Security
Policy 5.5.3). An operator lifts either through the switch's HTTP API, as
``status`` reads it; the switch audits who did (the token's name).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from nlets_switch.commands._common import SubParsers, parse_hostport
from nlets_switch.commands._operator import Refused, api_request
from nlets_switch.commands.status import ApiError
from nlets_switch.ops.settings import DEFAULT_HTTP

EPILOG = f"""examples:
  nlets-switch unlock AZNLETS20          the ORI, and every address locked out for it
  nlets-switch unlock 203.0.113.9        every lock-out of that source address
  nlets-switch unlock AZNLETS20 --http 127.0.0.1:7331 --token "$NLETS_API_TOKEN"

The token (or $NLETS_API_TOKEN) must have admin: true in api.tokens; without
api.tokens in the switch's configuration, a loopback client needs none.
exit status: 0 done (even when nothing was locked), 1 refused by the API,
2 no switch at that address.
default address: {DEFAULT_HTTP[0]}:{DEFAULT_HTTP[1]}
"""


def register(sub: SubParsers) -> None:
    """Add ``unlock``."""
    p = sub.add_parser(
        "unlock", help="lift the sign-on lock-outs of an ORI or a source address",
        description="Ask a running switch to lift the lock-outs of an ORI (and of every "
        "address locked out for it) or of a source address. Audited.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("target", metavar="ORI|ADDRESS", help="an ORI or an IP address")
    p.add_argument("--http", default=f"{DEFAULT_HTTP[0]}:{DEFAULT_HTTP[1]}",
                   metavar="HOST:PORT", help="the switch's HTTP address")
    p.add_argument("--token", default=None,
                   help="API bearer token with admin: true (default: $NLETS_API_TOKEN)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the API")
    p.set_defaults(func=unlock)


def post(base: str, path: str, data: dict[str, Any], token: str | None,
         timeout: float) -> Any:
    """POST ``data`` as JSON to ``base + path`` with the bearer token; the JSON answer."""
    try:
        return api_request(base, "POST", path, data, token, timeout)
    except Refused as e:
        raise ApiError(e.status, str(e)) from None


def unlock(args: argparse.Namespace) -> int:
    """Lift lock-outs; 0 on success."""
    host, port = parse_hostport(args.http, DEFAULT_HTTP[1])
    base = f"http://{host}:{port}"
    token = args.token or os.environ.get("NLETS_API_TOKEN")
    try:
        got = post(base, "/api/unlock", {"target": args.target}, token, args.timeout)
    except ApiError as e:
        print(f"nlets-switch unlock: {base}: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        print(f"nlets-switch unlock: no switch API at {base} ({reason})", file=sys.stderr)
        return 2
    lifted = int(got.get("lifted", 0))
    print(f"{args.target}: {lifted} lock-out(s) lifted" if lifted
          else f"{args.target}: nothing was locked out")
    for row in got.get("locked", []):
        src = row.get("source") or "every address"
        print(f"  still locked: {row.get('ori')} from {src} "
              f"({row.get('remaining_s')} s left)")
    return 0
