"""``nlets-switch send``: sign on as an ORI, send a message, print what comes back."""

from __future__ import annotations

import argparse
import asyncio
import sys

from nlets_switch.commands._common import SubParsers, parse_hostport
from nlets_switch.errors import LinkError, MessageError
from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.wire.message import SWITCH_ORI, parse_output
from nlets_switch.wire.schema import load_schemas
from nlets_switch.wire.xml import XmlCodec, is_xml, pretty

EPILOG = """examples:
  nlets-switch send --ori AZNLETS20 'AM.AZNLETS20.NY.TXT HELLO NEW YORK'
  nlets-switch send --ori AZNLETS20 'DQ.AZNLETS20.TX.TXT\\nOLN/D11111111'   (\\n: a line break)
  nlets-switch send --ori AZNLETS20 --file dq.txt --count 1     (stop at the first answer)
  printf 'DQ.AZNLETS20.TX.TXT\\nOLN/D11111111' | nlets-switch send --ori AZNLETS20
  nlets-switch send --ori NYNLETS00 --listen-only                (print what comes, Ctrl-C)
  nlets-switch send --ori AZ0070500 --file dq.xml     (an ORI with format: xml; docs/xml.md)

After the switch accepts the message, send waits for what comes back (ER, SM,
responses) until --timeout seconds (default 3) pass without a message, or
--count messages arrived, or an ER refuses it. Messages go to standard output
(XML documents pretty-printed); what happened goes to standard error:
"accepted", "refused: ..." or "status: SM ...".

exit status:
  0  accepted (and no ER or SM came back about it)
  1  refused at link level (N), or no answer from the switch
  2  sign-on refused, or no switch to talk to
  3  an ER came back: the switch refused the message
  4  an SM came back: a destination does not take it now (held or dropped)
"""

#: Exit statuses (EPILOG).
EXIT_OK, EXIT_N, EXIT_NO_LINK, EXIT_ER, EXIT_SM = 0, 1, 2, 3, 4


def register(sub: SubParsers) -> None:
    """Add ``send``."""
    p = sub.add_parser(
        "send", help="sign on as an ORI, send a message, print what comes back",
        description="Sign on to the switch as ORI, send one message (argument, --file or "
        "standard input), and print every message that comes back (ER, SM, responses) until "
        "--timeout seconds pass without one, --count messages arrived, or an ER refused it. "
        "The exit status says how it went (see below).",
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
    p.add_argument("--verbose", "-v", action="store_true",
                   help="also show the link frames' numbers (A 2, N 2)")
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
        return EXIT_NO_LINK
    return asyncio.run(_send(args, text))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _words(text: str) -> str:
    return " ".join(text.split())


class _Xml:
    """The XML codec, built when the first document arrives (XML links, XML.md)."""

    codec: XmlCodec | None = None

    @classmethod
    def get(cls) -> XmlCodec:
        if cls.codec is None:
            cls.codec = XmlCodec(load_schemas(), max_bytes=None)
        return cls.codec


def shown(raw: str) -> str:
    """A delivered message as printed: an XML document pretty-printed, text as it is."""
    if not is_xml(raw.encode("ascii", "replace")):
        return raw
    try:
        return pretty(raw.encode("ascii"))
    except (MessageError, LinkError, UnicodeError):
        return raw


def about(raw: str, sent: str) -> tuple[str, str] | None:
    """``(key, reason)`` when ``raw`` is an ER or SM from the switch about ``sent``.

    PROTOCOL part 4: the switch's ER or SM quotes the first 100 characters of
    the input it answers, after ``ORIGINAL MESSAGE``; the reason is its first
    line (an SM's second names the destination). Spacing and line breaks are
    not compared: services quote the message as they read it. On an XML link
    (XML.md) both are documents, and the ER or SM quotes the document sent.
    """
    try:
        if is_xml(raw.encode("ascii", "replace")):
            out = _Xml.get().read_output(raw.encode("ascii"))
        else:
            out = parse_output(raw)
    except (MessageError, LinkError, UnicodeError):
        return None
    if out.sender != SWITCH_ORI or out.key not in ("ER", "SM"):
        return None
    head, marker, quoted = out.text.partition("ORIGINAL MESSAGE")
    if not marker or not _words(quoted) or not _words(sent).startswith(_words(quoted)):
        return None
    lines = [line.strip() for line in head.strip().splitlines()]
    reason = " -- ".join(lines[:2] if out.key == "SM" else lines[:1])
    return out.key, reason


async def _send(args: argparse.Namespace, text: str | None) -> int:
    host, port = parse_hostport(args.connect)
    ctx = None
    if args.ca:
        from nlets_switch.server.pki import client_ssl_context

        ctx = client_ssl_context(args.ca, args.cert, args.key or None)
    try:
        client = await Client.connect(host, port, args.ori, args.credential, ssl_context=ctx)
    except SignOnError as e:
        _say(f"sign-on refused: {e}")
        return EXIT_NO_LINK
    except (OSError, TimeoutError) as e:
        if ctx is not None:
            # The switch closes a refused TLS handshake without an alert.
            _say(f"TLS connection to {host}:{port} refused or failed: "
                 f"{e or type(e).__name__} (certificate unknown, revoked or missing?)")
        else:
            _say(f"cannot reach the switch at {host}:{port}: {e or type(e).__name__}")
        return EXIT_NO_LINK
    _say(f"signed on as {args.ori} to {host}:{port}")
    try:
        return await _exchange(args, client, text)
    finally:
        await client.close()


async def _exchange(args: argparse.Namespace, client: Client, text: str | None) -> int:
    timeout = args.timeout if args.timeout is not None else (None if text is None else 3.0)
    status = EXIT_OK
    if text is not None:
        try:
            answer = await client.send(text)
        except (TimeoutError, ConnectionError) as e:
            _say(f"no answer from the switch ({e or type(e).__name__}): not sent")
            return EXIT_N
        frame = f" ({'A' if answer.ok else 'N'} {answer.seq})" if args.verbose else ""
        if not answer.ok:
            _say(f"refused{frame}: {answer.text}")
            return EXIT_N
        until = (f"until {timeout:g} s pass without one" if timeout is not None
                 else "until Ctrl-C")
        count = f", at most {args.count}" if args.count is not None else ""
        _say(f"accepted{frame}; waiting for answers (ER, SM, responses{count}) {until}")
    elif timeout is None:
        _say("listening; Ctrl-C stops")
    got = 0
    while args.count is None or got < args.count:
        try:
            msg = await client.receive(timeout)
        except TimeoutError:
            break
        except ConnectionError as e:
            _say(f"link closed: {e}")
            status = status or EXIT_NO_LINK
            break
        got += 1
        print(shown(msg))
        print(flush=True)
        verdict = about(msg, text) if text is not None else None
        if verdict is not None and verdict[0] == "ER":
            _say(f"refused: ER {verdict[1]}")
            if is_xml(msg.encode("ascii", "replace")) and not is_xml(
                    (text or "").encode("ascii", "replace")):
                _say(f"(the link of {args.ori} speaks XML: send a document, e.g. "
                     "nlets-switch xml to-xml FILE; docs/xml.md)")
            return EXIT_ER  # nothing more comes about a refused message
        if verdict is not None:
            _say(f"status: SM {verdict[1]}")
            status = status or EXIT_SM
    return status
