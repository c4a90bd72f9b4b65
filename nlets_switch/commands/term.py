"""``nlets-switch term``: an interactive terminal signed on as one ORI (docs/term.md)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys

from nlets_switch.commands._common import SubParsers, parse_hostport

EPILOG = """examples:
  nlets-switch term --ori AZNLETS20
  nlets-switch term --ori NYNLETS00 --connect 127.0.0.1:7330
  nlets-switch term --ori AZ0070500 --credential      (asks for it, not echoed)
  nlets-switch term --ori AZ0070500 --xml             (an XML link: type text, XML is sent)

then type, e.g.:  DQ.AZNLETS20.TX.TXT OLN/D11111111      or  /form DQ
"""


def register(sub: SubParsers) -> None:
    """Add ``term``."""
    p = sub.add_parser(
        "term", help="interactive terminal: sign on as an ORI, type messages, see answers",
        description="Sign on as ORI and type messages at a prompt with history, completion "
        "and forms. Inquiries get a control field; every response shows which inquiry it "
        "answers. Heartbeats are answered and a dropped link is reconnected.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ori", required=True, help="the ORI to sign on as (e.g. AZNLETS20)")
    p.add_argument("--connect", default="127.0.0.1:7330", metavar="HOST:PORT",
                   help="the switch (default 127.0.0.1:7330)")
    p.add_argument("--credential", action="store_true",
                   help="ask for the sign-on credential (not echoed)")
    p.add_argument("--config", metavar="FILE",
                   help="configuration whose ORIs are offered as destinations "
                   "(default: the demo world)")
    p.add_argument("--xml", action="store_true",
                   help="the ORI's link speaks XML (format: xml; the default when --config "
                   "says so): typed text is sent as its XML document (docs/xml.md)")
    p.set_defaults(func=term)


def term(args: argparse.Namespace) -> int:
    """Run the terminal until /quit or Ctrl-D."""
    from nlets_switch.config import demo_config, load_config
    from nlets_switch.errors import ConfigError
    from nlets_switch.log import configure
    from nlets_switch.tools.term import Terminal
    from nlets_switch.wire.schema import load_schemas

    configure("error")
    try:
        cfg = load_config(args.config) if args.config else demo_config()
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 2
    # Destinations offered for completion: states, the special addresses, known ORIs.
    dests = ["NL", "AX"] + sorted({e.state for e in cfg.entries}) + [
        e.ori for e in cfg.entries]
    credential = getpass.getpass(f"credential for {args.ori}: ") if args.credential else None
    host, port = parse_hostport(args.connect)
    ori = args.ori.upper()
    xml = args.xml or any(e.ori == ori and e.xml for e in cfg.entries)
    t = Terminal(host, port, ori, credential, load_schemas(), dests, xml=xml)
    return asyncio.run(t.run())
