"""``nlets-switch adapters``: the adapters this installation would load.

Lists, for every entry point of the group ``nlets_switch.adapters``: name,
version, the keys it answers, and the distribution it comes from; then runs
the start-up checks (API version, a schema for every key, no key claimed
twice) and says whether the switch would start with them.
"""

from __future__ import annotations

import argparse
import sys

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit
from nlets_switch.errors import AdapterError, ConfigError
from nlets_switch.services import adapter as ad
from nlets_switch.services import local as svc
from nlets_switch.wire.schema import load_schemas


def register(sub: SubParsers) -> None:
    """Add ``adapters``."""
    p = sub.add_parser(
        "adapters", help="list the installed adapters (name, version, keys, distribution)",
        description="List every adapter of the entry-point group nlets_switch.adapters and "
        "check them as `serve` would: the API version, a schema for every key, no key "
        "claimed twice. Exit 1 when the switch would refuse to start.")
    add_config_args(p)
    p.set_defaults(func=list_adapters)


def list_adapters(args: argparse.Namespace) -> int:
    """Print the adapters; 0 when they pass the start-up checks."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 1
    loaded: list[ad.Loaded] = []
    problems: list[str] = []
    for ep in ad.entry_points():
        try:
            loaded.append(ad.load_entry_point(ep))
        except AdapterError as e:
            problems.append(str(e))
    enabled = {a.name for a in svc.enabled_adapters(loaded, cfg)}
    rows = [("NAME", "VERSION", "KEYS", "DISTRIBUTION", "")]
    for a in loaded:
        rows.append((a.name, a.version, " ".join(sorted(a.keys)), a.source,
                     "" if a.name in enabled else "(disabled)"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)).rstrip()
              + (f"  {r[4]}" if r[4] else ""))
    active = [a for a in loaded if a.name in enabled]
    try:
        ad.check_adapters(active, load_schemas(ad.schema_dirs(active)))
    except (AdapterError, ConfigError) as e:
        problems.append(str(e))
    for p in problems:
        print(f"error: {p}", file=sys.stderr)
    return 1 if problems else 0
