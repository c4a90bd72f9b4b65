"""The ``nlets-switch`` command line.

Each sub-command lives in its own module under :mod:`nlets_switch.commands`
and exposes ``register(subparsers)``; this module finds them, so a new
command is one new file.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Callable, Sequence

from nlets_switch import commands

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The parser with every sub-command registered."""
    parser = argparse.ArgumentParser(
        prog="nlets-switch",
        description="An emulator of the Nlets message switch. "
        "Run `nlets-switch serve` to start the demo world on 127.0.0.1:7330.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "func", None)
    if handler is None:
        parser.print_help()
        return 2
    # What nlets-switch writes (the journal and its WAL, LEIS data, the pid file,
    # exports) may hold CJI: the owner's alone, whatever the umask (CJIS 5.10.1.2).
    os.umask(os.umask(0o077) | 0o077)
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`nlets-switch log search | head`): stop quietly, as
        # Unix tools do, and keep Python from complaining when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
