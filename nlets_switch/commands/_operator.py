"""What the operator commands (``queue``, ``remove-status``, ``broadcast``) share:
the switch's API address and token, one request, and the exit statuses.

Exit statuses: 0 done, 1 the API refused the token or its permission, 2 no
switch API at that address, 3 the switch would not do it (unknown id, nothing
held, already acted on, a bad value).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Final

from nlets_switch.commands._common import parse_hostport
from nlets_switch.ops.settings import DEFAULT_HTTP

EXIT_STATUSES: Final = """exit status: 0 done, 1 the API refused the token (or it may not do this),
2 no switch API at that address, 3 the switch would not do it (the reason is printed).
The token may also come from the environment variable NLETS_API_TOKEN; actions need
a token with the operate permission (docs/operators.md)."""


class Refused(Exception):
    """The API answered with an error status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def add_api_arguments(p: argparse.ArgumentParser) -> None:
    """``--http``, ``--token``, ``--json``, ``--timeout``."""
    p.add_argument("--http", default=f"{DEFAULT_HTTP[0]}:{DEFAULT_HTTP[1]}",
                   metavar="HOST:PORT", help="the switch's HTTP address")
    p.add_argument("--token", default=None, help="API bearer token (default: $NLETS_API_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the API's JSON answer")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the API")


def api_request(base: str, method: str, path: str, body: dict[str, Any] | None,
                token: str | None, timeout: float) -> Any:
    """One request to the switch's API at ``base`` (``http://host:port``) with the
    bearer token; its JSON answer. Raises :class:`Refused` (with the API's own
    ``error`` text) or OSError. ``status`` and ``unlock`` use it too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Accept": "application/json",
                                          "Content-Type": "application/json"})
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        text = e.read().decode("utf-8", "replace")
        try:
            text = json.loads(text).get("error", text)
        except (ValueError, AttributeError):
            pass
        raise Refused(e.code, str(text)) from None


def request(args: argparse.Namespace, method: str, path: str,
            body: dict[str, Any] | None = None) -> Any:
    """One API request with the command's ``--http``, ``--token`` (or $NLETS_API_TOKEN)
    and ``--timeout``; raises :class:`Refused` or OSError."""
    host, port = parse_hostport(args.http, DEFAULT_HTTP[1])
    return api_request(f"http://{host}:{port}", method, path, body,
                       args.token or os.environ.get("NLETS_API_TOKEN"), args.timeout)


def run(name: str, args: argparse.Namespace, action: Callable[[], Any],
        show: Callable[[Any], str]) -> int:
    """Do ``action`` and print what ``show`` makes of its answer; the exit status."""
    try:
        answer = action()
    except Refused as e:
        print(f"nlets-switch {name}: {e}", file=sys.stderr)
        return 1 if e.status in (401, 403) else 3
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        print(f"nlets-switch {name}: no switch API at {args.http} ({reason})", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=1) if args.json else show(answer))
    return 0
