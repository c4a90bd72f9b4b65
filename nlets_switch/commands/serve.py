"""``nlets-switch serve`` and ``nlets-switch check-config``."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit
from nlets_switch.config import load_config
from nlets_switch.errors import ConfigError
from nlets_switch.log import configure, get_logger


def register(sub: SubParsers) -> None:
    """Add ``serve`` and ``check-config``."""
    p = sub.add_parser(
        "serve", help="run the switch (the demo world when no --config is given)",
        description="Run the switch. Without --config it starts the demo world of PROTOCOL "
        "part 8 on 127.0.0.1:7330: AZNLETS20, NYNLETS00 and AZ0070500 sign on without a "
        "credential from loopback. SIGTERM or Ctrl-C stops it gracefully.")
    add_config_args(p)
    p.add_argument("--listen", action="append", default=[], metavar="HOST:PORT",
                   help="address to accept links on (repeatable; overrides the config)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    p.add_argument("--log-json", action="store_true", default=None,
                   help="JSON log lines even on a terminal")
    p.set_defaults(func=serve)

    c = sub.add_parser("check-config", help="validate a configuration file",
                       description="Check a configuration and name the key path of every "
                       "error (links[3].ori: ...). Exit 0 when it is valid.")
    c.add_argument("file", help="YAML configuration")
    c.set_defaults(func=check_config)


def check_config(args: argparse.Namespace) -> int:
    """Print every problem of a configuration; 0 when there is none."""
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 1
    n = sum(1 for e in cfg.entries if not e.simulated)
    print(f"{args.file}: OK ({n} ORIs configured, "
          f"{len(cfg.entries) - n} states simulated, "
          f"listening on {', '.join(lst.address for lst in cfg.listeners)})")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the switch until SIGTERM/SIGINT."""
    configure(args.log_level, args.log_json)
    cfg = config_or_exit(args, args.listen)
    if cfg is None:
        return 1
    try:
        import uvloop  # optional extra: faster event loop

        return uvloop.run(_serve(cfg))
    except ImportError:
        return asyncio.run(_serve(cfg))


async def _serve(cfg: object) -> int:
    from nlets_switch.app import build_switch

    log = get_logger("serve")
    try:
        switch = await build_switch(cfg)  # type: ignore[arg-type]
        await switch.start()
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 1
    except OSError as e:
        log.error("cannot_listen", error=str(e))
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    await switch.stop()
    return 0
