"""``nlets-switch status``: links and queues of a running switch, from its HTTP API.

Importing this module also imports :mod:`nlets_switch.ops.monitor`, which
registers the checkers of the ``mqtt``, ``http`` and ``api`` configuration
sections; the CLI imports every command, so ``check-config`` and ``serve``
check those sections too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from typing import Any

from nlets_switch.commands._common import SubParsers, parse_hostport
from nlets_switch.commands._operator import Refused, api_request
from nlets_switch.ops.settings import DEFAULT_HTTP

EPILOG = f"""examples:
  nlets-switch status
  nlets-switch status --http 127.0.0.1:7331 --token "$NLETS_API_TOKEN"
  nlets-switch status --json

The token may also come from the environment variable NLETS_API_TOKEN. Without
api.tokens in the switch's configuration, loopback clients need none.
exit status: 0 shown, 1 the API refused the token, 2 no switch at that address.
default address: {DEFAULT_HTTP[0]}:{DEFAULT_HTTP[1]}
"""


def register(sub: SubParsers) -> None:
    """Add ``status``."""
    p = sub.add_parser(
        "status", help="print the links and queues of a running switch",
        description="Ask a running switch's HTTP API for its links (online or offline, "
        "in flight, queued) and the deliveries it owes per destination, and print them "
        "as a table.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--http", default=f"{DEFAULT_HTTP[0]}:{DEFAULT_HTTP[1]}",
                   metavar="HOST:PORT", help="the switch's HTTP address")
    p.add_argument("--token", default=None,
                   help="API bearer token (default: $NLETS_API_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the raw JSON instead")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the API")
    p.set_defaults(func=status)


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status


def fetch(base: str, path: str, token: str | None, timeout: float) -> Any:
    """GET ``base + path`` as JSON with the bearer token."""
    try:
        return api_request(base, "GET", path, None, token, timeout)
    except Refused as e:
        raise ApiError(e.status, str(e)) from None


def _since(ts: float | None) -> str:
    if not ts:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(links: list[dict[str, Any]], held: dict[str, int], stats: dict[str, Any]) -> str:
    """The status as a terminal table."""
    rows = [("ORI", "STATE", "KIND", "SIGNED ON SINCE", "IN FLIGHT", "QUEUED", "OWED")]
    seen = set()
    for ln in links:
        ori = ln["ori"]
        seen.add(ori)
        online = ln.get("state") == "online"
        rows.append((ori, ln.get("state", "?"), ln.get("kind") or "-",
                     _since(ln.get("since")) if online else "-",
                     str(ln.get("outstanding", "-")) if online else "-",
                     str(ln.get("queued", "-")) if online else "-",
                     str(held.get(ori, 0))))
    for dest in sorted(set(held) - seen):
        rows.append((dest, "-", "-", "-", "-", "-", str(held[dest])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    sid = stats.get("switch_id", "?")
    online_n = sum(1 for ln in links if ln.get("state") == "online")
    lines.append(f"switch {sid}: {online_n} of {len(links)} links online, "
                 f"{sum(held.values())} deliveries owed")
    lines.append("")
    for r in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    msgs = stats.get("messages") or {}
    if msgs:
        lines.append("")
        lines.append("messages by key: " + ", ".join(
            f"{k} {sum(v.values())}" for k, v in sorted(msgs.items())))
    if stats.get("cluster"):
        # A PostgreSQL store: its database, and every node of the cluster.
        from nlets_switch.ops.cluster_view import describe

        lines.append("")
        lines += describe(stats["cluster"])
    lat = stats.get("latency_avg_s")
    lines.append(f"delivered {stats.get('delivered', 0)}, ER {stats.get('er', 0)}, "
                 f"SM {stats.get('sm', 0)}, average latency "
                 f"{'-' if lat is None else f'{lat * 1000:.1f} ms'}")
    return "\n".join(lines)


def status(args: argparse.Namespace) -> int:
    """Print links and queues; 0 on success."""
    host, port = parse_hostport(args.http, DEFAULT_HTTP[1])
    base = f"http://{host}:{port}"
    token = args.token or os.environ.get("NLETS_API_TOKEN")
    try:
        links = fetch(base, "/api/links", token, args.timeout)["links"]
        held = fetch(base, "/api/held", token, args.timeout)["held"]
        stats = fetch(base, "/api/stats", token, args.timeout)
    except ApiError as e:
        print(f"nlets-switch status: {base}: {e}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        print(f"nlets-switch status: no switch API at {base} ({reason})", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"links": links, "held": held, "stats": stats}, indent=1))
    else:
        print(render(links, held, stats))
    return 0
