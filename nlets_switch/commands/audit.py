"""``nlets-switch audit``: verify and list the tamper-evident audit trail (docs/records.md).

::

    nlets-switch audit verify [--config FILE] [--data-dir DIR]
    nlets-switch audit list [--type T] [--since T] [--limit N] [--json]
    nlets-switch audit checkpoint [--config FILE] [--data-dir DIR]

``verify`` exits 0 with ``N records verified`` or 1 naming the first broken
link (record id and reason), or the newest signed checkpoint the chain no
longer reaches (rows cut, the table emptied, the chain rewritten).
``checkpoint`` signs the head now (``serve`` does it every
``audit.checkpoint_s``). All read the journal read-only, so they work while
the switch runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit
from nlets_switch.config import Config
from nlets_switch.errors import ConfigError, StoreError
from nlets_switch.ops import audit, checkpoint, msglog
from nlets_switch.store.base import Store
from nlets_switch.store.sqlite import open_store

EPILOG = """examples:
  nlets-switch audit verify --data-dir /var/lib/nlets-switch
  nlets-switch audit list --type sign_on --since 1d
  nlets-switch audit checkpoint

exit status (verify): 0 every record verified, 1 the chain is broken, 2 cannot check
(no journal, no key).
"""


def register(sub: SubParsers) -> None:
    """Add ``audit`` with ``verify`` and ``list``."""
    p = sub.add_parser("audit", help="verify or list the audit trail",
                       description="The audit trail: CJIS 5.4.1.1 events chained with "
                       "HMAC-SHA256. Works while the switch runs.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    asub = p.add_subparsers(dest="audit_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])
    v = asub.add_parser("verify", help="check every link of the chain; name the first broken one")
    add_config_args(v, store=True)
    v.set_defaults(func=verify_cmd)
    ls = asub.add_parser("list", help="list audit records (newest first)")
    ls.add_argument("--type", help="event type (sign_on, config_load, log_access, ...)")
    ls.add_argument("--subject", help="subject (an ORI, a user, a file)")
    ls.add_argument("--since", metavar="TIME", help="at or after (1h, 2d, 2024-01-02, ...)")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_args(ls, store=True)
    ls.set_defaults(func=list_cmd)
    c = asub.add_parser("checkpoint", help="sign the chain's head now, outside the data "
                        "directory")
    add_config_args(c)
    c.set_defaults(func=checkpoint_cmd)


def _note(cfg: Config, command: str, outcome: str, **detail: Any) -> None:
    """Reading or checking the audit trail is itself audited (CJIS 5.4.1.1)."""
    kind = "audit_verify" if command == "verify" else "log_access"
    warning = audit.record_from_tool(cfg, kind, outcome, {"command": command, **detail})
    if warning:
        print(f"audit: {warning}", file=sys.stderr)


def _open(cfg: Config) -> Store | None:
    """The journal's store, read-only (printing why not and giving None)."""
    if cfg.store.url:
        from nlets_switch.commands.store import open_configured

        # The configured node's chain (one per cluster node, docs/cluster.md).
        return open_configured(cfg.store.url, "audit", cfg.store.node_id)
    path = Path(cfg.data_dir) / "journal.sqlite"
    if not path.exists():
        print(f"audit: no journal at {path}", file=sys.stderr)
        return None
    try:
        return open_store(path, readonly=True)
    except StoreError as e:
        print(f"audit: {e}", file=sys.stderr)
        return None


def _other_chains(store: Store, cfg: Config, key: bytes) -> list[tuple[str, audit.VerifyResult]]:
    """On PostgreSQL, every other node's chain verified (each has its own ids, anchor
    and high-water mark); nothing for SQLite, which has one."""
    from nlets_switch.store.postgres import PostgresStore

    if not isinstance(store, PostgresStore):
        return []
    own = cfg.store.node_id or ""
    return [(n or "(no node)", audit.verify(store.for_node(n), key))
            for n in store.audit_nodes() if n != own]


def verify_cmd(args: argparse.Namespace) -> int:
    """``audit verify``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    path = Path(cfg.data_dir) / "journal.sqlite"
    if not cfg.store.url and not path.exists():
        print(f"audit: no journal at {path}", file=sys.stderr)
        return 2
    try:
        key = audit.load_key(cfg, create=False)
    except (ConfigError, ValueError) as e:
        print(f"audit: cannot read the key: {e}", file=sys.stderr)
        return 2
    store = _open(cfg)
    if store is None:
        return 2
    with contextlib.closing(store):
        if key is None:
            empty = audit.verify(store, b"\0" * audit.MIN_KEY_BYTES).checked == 0
            if empty:
                print("0 records verified (the audit trail is empty)")
                return 0
            print(f"audit: no key configured and no {audit.key_path(cfg)}", file=sys.stderr)
            return 2
        res = audit.verify(store, key)
        last = store.last_audit_record() if res.checked else None
        try:
            anchored, found = checkpoint.check(cfg, store)
        except (OSError, ValueError) as e:
            anchored, found = False, f"the checkpoint cannot be read: {e}"
        others = _other_chains(store, cfg, key)
    if res.ok and others:
        # On PostgreSQL every node's chain is verified, each on its own.
        bad = [(n, r) for n, r in others if not r.ok]
        for n, r in others:
            print(f"node {n}: " + (f"{r.checked} records verified" if r.ok else
                                   f"BROKEN at record {r.first_bad_id}: {r.reason}"))
        if bad:
            n, r = bad[0]
            res = audit.VerifyResult(False, res.checked, r.first_bad_id,
                                     f"node {n}'s chain: {r.reason}")
    if res.ok and not anchored:
        res = audit.VerifyResult(False, res.checked, None, found)
    _note(cfg, "verify", "success" if res.ok else "failure", checked=res.checked,
          first_bad_id=res.first_bad_id)
    if not res.ok:
        if res.first_bad_id is None:
            print(f"audit trail BROKEN: {res.reason} ({res.checked} records verified)")
        else:
            print(f"audit trail BROKEN at record {res.first_bad_id}: {res.reason} "
                  f"({res.checked} records before it verified)")
        return 1
    print(f"{res.checked} records verified")
    if last is not None:
        print(f"last record {last.id} mac {last.mac}")
    print(found)
    return 0


def checkpoint_cmd(args: argparse.Namespace) -> int:
    """``audit checkpoint``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    try:
        cp = checkpoint.write_checkpoint(cfg)
    except (OSError, ValueError, StoreError) as e:
        print(f"audit: cannot write a checkpoint: {e}", file=sys.stderr)
        return 2
    if cp is None:
        print("nothing new to sign (the head is already signed, or the trail is empty)")
    else:
        print(f"signed record {cp.id} mac {cp.mac} into {checkpoint.checkpoint_file(cfg)}")
    return 0


def list_cmd(args: argparse.Namespace) -> int:
    """``audit list``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    store = _open(cfg)
    if store is None:
        return 2
    with contextlib.closing(store):
        since: str | None = None
        if args.since:
            try:
                since = audit.iso_utc(msglog.parse_when(args.since, time.time(), cfg.tz))
            except ValueError as e:
                print(f"audit: {e}", file=sys.stderr)
                return 2
        rows = store.list_audit_records(type=args.type, subject=args.subject, since=since,
                                        limit=args.limit)
    _note(cfg, "audit list", "success", type=args.type, subject=args.subject, found=len(rows))
    for r in rows:
        if args.json:
            print(json.dumps({"id": r.id, "ts": r.ts, "component": r.component, "type": r.type,
                              "subject": r.subject, "outcome": r.outcome,
                              "detail": json.loads(r.detail)}))
        else:
            print(f"{r.id:>6}  {r.ts}  {r.component:<10} {r.type:<16} {r.subject:<12} "
                  f"{r.outcome:<9} {r.detail}")
    return 0 if rows else 1
