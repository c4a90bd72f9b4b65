"""``nlets-switch send``: sign on as an ORI, send a message, print what comes back."""

from __future__ import annotations

import argparse
import asyncio
import sys

from nlets_switch.commands._common import SubParsers, parse_hostport
from nlets_switch.tools.client import Client, SignOnError

EPILOG = """examples:
  nlets-switch send --ori NYNLETS00 --listen-only
  nlets-switch send --ori AZNLETS20 'AM.AZNLETS20.NY.TXT HELLO NEW YORK'
  nlets-switch send --ori AZNLETS20 --file dq.txt --count 1
  printf 'DQ.AZNLETS20.TX.TXT\\nOLN/D11111111' | nlets-switch send --ori AZNLETS20

exit status: 0 sent (and acknowledged), 1 refused with N, 2 sign-on refused or no switch.
"""


def register(sub: SubParsers) -> None:
    """Add ``send``."""
    p = sub.add_parser(
        "send", help="sign on as an ORI, send a message, print what comes back",
        description="Sign on to the switch as ORI, send one message (argument, --file or "
        "standard input), and print every message that comes back (ER, SM, responses) until "
        "--timeout seconds pass without one or --count messages arrived.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("message", nargs="?", help="the message text ('-' for standard input)")
    p.add_argument("--ori", required=True, help="the ORI to sign on as (e.g. AZNLETS20)")
    p.add_argument("--connect", default="127.0.0.1:7330", metavar="HOST:PORT",
                   help="the switch (default 127.0.0.1:7330)")
    p.add_argument("--credential", help="sign-on credential, when the ORI has one")
    p.add_argument("--ca", metavar="PEM", help="TLS: the CA to trust (turns TLS on); "
                   "see docs/tls.md")
    p.add_argument("--cert", metavar="PEM", help="TLS: client certificate for --ori")
    p.add_argument("--key", metavar="PEM", help="TLS: the certificate's key")
    p.add_argument("--file", "-f", help="read the message from this file")
    p.add_argument("--listen-only", action="store_true",
                   help="send nothing; print incoming traffic (until Ctrl-C, --count or "
                   "--timeout)")
    p.add_argument("--timeout", type=float, default=None,
                   help="stop after this many seconds without a message (default 3, "
                   "or none with --listen-only)")
    p.add_argument("--count", type=int, default=None, help="stop after this many messages")
    p.set_defaults(func=send)


def _message_text(args: argparse.Namespace) -> str | None:
    if args.listen_only:
        return None
    if args.file:
        with open(args.file, encoding="ascii", errors="replace", newline="") as f:
            text = f.read()
    elif args.message and args.message != "-":
        # A shell argument cannot hold a real line break easily: accept '\n'.
        text = args.message.replace("\\n", "\n")
    elif not sys.stdin.isatty() or args.message == "-":
        text = sys.stdin.read()
    else:
        return ""
    return text.rstrip("\r\n")


def send(args: argparse.Namespace) -> int:
    """Run the command; returns the exit status."""
    text = _message_text(args)
    if text == "":
        print("send: no message (give it as an argument, --file or on standard input)",
              file=sys.stderr)
        return 2
    return asyncio.run(_send(args, text))


async def _send(args: argparse.Namespace, text: str | None) -> int:
    host, port = parse_hostport(args.connect)
    ctx = None
    if args.ca:
        from nlets_switch.server.pki import client_ssl_context

        ctx = client_ssl_context(args.ca, args.cert, args.key or None)
    try:
        client = await Client.connect(host, port, args.ori, args.credential, ssl_context=ctx)
    except SignOnError as e:
        print(f"sign-on refused: {e}", file=sys.stderr)
        return 2
    except (OSError, TimeoutError) as e:
        if ctx is not None:
            # The switch closes a refused TLS handshake without an alert.
            print(f"TLS connection to {host}:{port} refused or failed: "
                  f"{e or type(e).__name__} (certificate unknown, revoked or missing?)",
                  file=sys.stderr)
        else:
            print(f"cannot reach the switch at {host}:{port}: {e or type(e).__name__}",
                  file=sys.stderr)
        return 2
    print(f"signed on as {args.ori} to {host}:{port}", file=sys.stderr)
    status = 0
    try:
        if text is not None:
            answer = await client.send(text)
            if answer.ok:
                print(f"accepted (A {answer.seq})", file=sys.stderr)
            else:
                print(f"refused: N {answer.text}", file=sys.stderr)
                status = 1
        timeout = args.timeout if args.timeout is not None else (
            None if text is None else 3.0)
        got = 0
        while args.count is None or got < args.count:
            try:
                msg = await client.receive(timeout)
            except TimeoutError:
                break
            except ConnectionError as e:
                print(f"link closed: {e}", file=sys.stderr)
                status = status or 2
                break
            got += 1
            print(msg)
            print(flush=True)
    finally:
        await client.close()
    return status
