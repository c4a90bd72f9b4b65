"""Options shared by the commands that read the switch's configuration."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from nlets_switch.config import Config, demo_config, load_config, with_overrides
from nlets_switch.errors import ConfigError

SubParsers = Any  # argparse._SubParsersAction[argparse.ArgumentParser]


def add_config_args(p: argparse.ArgumentParser, store: bool = False) -> None:
    """``--config`` and ``--data-dir``, as ``serve`` takes them (PROTOCOL part 8); and
    ``--store`` for a tool that reads the store (a PostgreSQL store, docs/cluster.md)."""
    p.add_argument("--config", metavar="FILE",
                   help="YAML configuration (default: the demo world of PROTOCOL part 8)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="journal and other state (default: ./nlets-data or the config's "
                        "switch.data_dir)")
    if store:
        p.add_argument("--store", metavar="postgresql://USER@HOST/DB",
                       help="the switch's PostgreSQL store (default: the configuration's "
                       "store.url, else the SQLite journal in the data directory)")


def config_from_args(args: argparse.Namespace, listen: list[str] | None = None) -> Config:
    """The configuration the arguments name; raises ConfigError."""
    cfg = load_config(args.config) if args.config else demo_config()
    return with_overrides(cfg, listen or [], args.data_dir, getattr(args, "store", None),
                          getattr(args, "node_id", None))


def config_or_exit(args: argparse.Namespace, listen: list[str] | None = None) -> Config | None:
    """Like :func:`config_from_args`, printing every problem and returning None on error."""
    try:
        return config_from_args(args, listen)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return None


def parse_hostport(text: str, default_port: int = 7330) -> tuple[str, int]:
    """``HOST:PORT`` or ``HOST`` or ``:PORT``."""
    host, sep, port = text.rpartition(":")
    if not sep:
        return text or "127.0.0.1", default_port
    return host or "127.0.0.1", int(port)


def pid_file(data_dir: Path) -> Path:
    """Where ``serve`` writes its process id (for ``nlets-switch reload`` and ``journal``)."""
    return data_dir / "switch.pid"
