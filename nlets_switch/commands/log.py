"""``nlets-switch log``: search, show and export the message log (see docs/records.md).

::

    nlets-switch log search [--ori ORI] [--key MKE] [--control CTL] [--since T] [--until T]
                            [--text TEXT] [--limit N] [--json]
    nlets-switch log show ID [--text] [--as text|xml] [--json]
    nlets-switch log export [--format jsonl|csv] [--out FILE] [--text] [--progress] [filters]

They read the journal through a read-only store, so they work while the
switch runs, and each use is recorded in the audit trail as ``log_access``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit
from nlets_switch.config import Config
from nlets_switch.errors import MessageError, NletsError, StoreError
from nlets_switch.ops import audit, msglog
from nlets_switch.store import textcrypt
from nlets_switch.store.base import Store
from nlets_switch.store.sqlite import open_store
from nlets_switch.wire.schema import load_schemas
from nlets_switch.wire.xml import XmlCodec

EPILOG = """times (--since, --until): 30m, 1h, 2d, 1w (that long ago), 2024-01-02 (a day:
--since takes its start, --until its end), or 2024-01-02T12:00[:SS][+HH:MM|Z]
(without an offset: the switch's time zone).

examples:
  nlets-switch log search --ori AZNLETS20 --since 1h
  nlets-switch log search --key DQ --control DQ0001 --json
  nlets-switch log search --text SMITH --since 2024-01-01 --until 2024-01-31
  nlets-switch log show 1042 --text
  nlets-switch log show 1042 --as xml          (the text as an XML document, or as sent)
  nlets-switch log export --format csv --since 2d --out last-two-days.csv

exit status: 0 found (or exported), 1 nothing found / no such message, 2 error.
"""

_PROGRESS_MIN = 1000  # rows: smaller exports finish before a bar would be useful


def _filters(p: argparse.ArgumentParser, default_limit: int | None) -> None:
    p.add_argument("--ori", help="messages sent by, or delivered to, this ORI")
    p.add_argument("--key", help="message key (DQ, RQ, AM, ...)")
    p.add_argument("--control", help="control field (the *CONTROL of the header)")
    p.add_argument("--since", metavar="TIME", help="received at or after (e.g. 1h, 2024-01-02)")
    p.add_argument("--until", metavar="TIME", help="received at or before")
    p.add_argument("--text", dest="search_text", metavar="TEXT",
                   help="words the message holds, all of them, in any case and order "
                   "(whole words: SMITH does not find SMITHSON)")
    p.add_argument("--limit", type=int, default=default_limit,
                   help=f"most messages (default {default_limit or 'all'})")


def register(sub: SubParsers) -> None:
    """Add ``log`` with ``search``, ``show`` and ``export``."""
    p = sub.add_parser("log", help="search, show and export the message log",
                       description="The message log (Nlets' RAND): every message the switch "
                       "took, with its deliveries. Works while the switch runs.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    lsub = p.add_subparsers(dest="log_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    s = lsub.add_parser("search", help="list messages matching criteria (newest first)",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _filters(s, msglog.DEFAULT_LIMIT)
    s.add_argument("--json", action="store_true", help="one JSON object per line")
    add_config_args(s, store=True)
    s.set_defaults(func=search_cmd)

    sh = lsub.add_parser("show", help="one message and what became of it")
    sh.add_argument("id", type=int, help="message id (as log search lists it)")
    sh.add_argument("--text", action="store_true",
                    help="include the message text, as the sender sent it")
    sh.add_argument("--as", dest="form", choices=msglog.FORMS,
                    help="include the message text as legacy text or as an XML document "
                    "(translated when it was sent in the other form)")
    sh.add_argument("--json", action="store_true", help="as JSON")
    add_config_args(sh, store=True)
    sh.set_defaults(func=show_cmd)

    e = lsub.add_parser("export", help="write messages as JSON lines or CSV (oldest first)",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    _filters(e, None)
    e.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    e.add_argument("--out", "-o", metavar="FILE", help="write here (default: standard output)")
    e.add_argument("--with-text", action="store_true",
                   help="include each message's text (criminal-justice information)")
    e.add_argument("--progress", action="store_true",
                   help="show a progress bar on standard error even when it is not a terminal")
    add_config_args(e, store=True)
    e.set_defaults(func=export_cmd)


# --------------------------------------------------------------------------


def _open(cfg: Config) -> Store | None:
    try:
        # The keyring that opens sealed text and makes the word index's tokens
        # (store/textcrypt.py), for either store; never made here.
        textcrypt.configure_for(cfg.security.text_key_file, cfg.security.encrypt_text,
                                create=False)
    except (OSError, ValueError) as e:
        print(f"log: {e}", file=sys.stderr)
        return None
    if cfg.store.url:
        from nlets_switch.commands.store import open_configured

        return open_configured(cfg.store.url, "log")
    path = Path(cfg.data_dir) / "journal.sqlite"
    if not path.exists():
        print(f"log: no journal at {path} (has the switch run with this --data-dir?)",
              file=sys.stderr)
        return None
    try:
        return open_store(path, readonly=True)
    except StoreError as e:
        print(f"log: {e}", file=sys.stderr)
        return None


def _query(args: argparse.Namespace, cfg: Config) -> msglog.Query:
    now = time.time()
    return msglog.Query(
        ori=args.ori.upper() if args.ori else None,
        key=args.key.upper() if args.key else None,
        control=args.control,
        since=msglog.parse_when(args.since, now, cfg.tz) if args.since else None,
        until=msglog.parse_when(args.until, now, cfg.tz, end_of_day=True) if args.until else None,
        text=args.search_text, limit=args.limit)


def _record_access(cfg: Config, command: str, outcome: str, **detail: Any) -> None:
    """Audit the use of the log (CJIS 5.4.1.1: log access); a failure only warns."""
    warning = audit.record_from_tool(cfg, "log_access", outcome, {"command": command, **detail})
    if warning:
        print(f"log: {warning}", file=sys.stderr)


def _criteria(q: msglog.Query) -> dict[str, Any]:
    # What was searched is recorded, but not the searched-for text: that can be CJI.
    return {"ori": q.ori, "key": q.key, "control": q.control, "since": msglog.iso(q.since),
            "until": msglog.iso(q.until), "text_search": q.text is not None, "limit": q.limit}


def _prepare(args: argparse.Namespace
             ) -> tuple[Config, msglog.Query, Store] | int:
    """The configuration, the query and the journal's store (read-only), or an exit status."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    try:
        q = _query(args, cfg)
    except ValueError as e:
        print(f"log: {e}", file=sys.stderr)
        return 2
    store = _open(cfg)
    if store is None:
        return 2
    return cfg, q, store


def _local(iso_text: str | None, cfg: Config) -> str:
    if not iso_text:
        return ""
    from datetime import datetime

    dt = datetime.fromisoformat(iso_text.replace("Z", "+00:00")).astimezone(cfg.tz)
    return dt.strftime("%Y-%m-%d %H:%M:%S")


def outcome(msg: dict[str, Any]) -> str:
    """What became of a message, as ``log search`` and ``log show`` print it.

    A message the switch refused shows as refused with the ER it caused,
    whether the switch refused it on receipt (status ``rejected``, the ER's
    reason) or a service of the switch did later (an ER among ``caused``,
    which ``log show`` has): ``refused: .22. INVALID MESSAGE FORMAT (ER 4)``.
    """
    ers = [c for c in msg.get("caused") or () if c.get("key") == "ER"]
    if msg["status"] != "rejected" and not ers:
        return str(msg["status"]) + (f": {msg['reason']}" if msg["reason"] else "")
    reason = msg["reason"] or (ers[0].get("code") or "" if ers else "")
    return f"refused: {reason}" + (f" (ER {ers[0]['id']})" if ers else "")


def _table(rows: list[dict[str, Any]], cfg: Config, out: TextIO) -> None:
    head = ("ID", f"RECEIVED ({cfg.timezone})", "KEY", "FROM", "TO", "CTL", "STATUS",
            "DELIVERIES")
    lines = [head]
    # The ERs among the rows, by the message they answer: "refused: ... (ER 4)".
    ers: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        if r["key"] == "ER" and r["reply_to"]:
            ers.setdefault(r["reply_to"], []).append({"key": "ER", "id": r["id"]})
    for r in rows:
        r = {**r, "caused": ers.get(r["id"], [])}
        dl = ", ".join(f"{d['receiver']} {d['state']}" for d in r["deliveries"]) or "-"
        lines.append((str(r["id"]), _local(r["received_at"], cfg), r["key"] or "?",
                      r["origin"] or r["link"], ",".join(r["destinations"]) or "-",
                      r["control"] or "-",
                      outcome(r), dl))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head) - 1)]
    for line in lines:
        out.write("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=False)) +
                  "  " + line[-1] + "\n")


def search_cmd(args: argparse.Namespace) -> int:
    """``log search``."""
    prep = _prepare(args)
    if isinstance(prep, int):
        return prep
    cfg, q, store = prep
    with contextlib.closing(store):
        rows = msglog.search(store, q)
    _record_access(cfg, "search", "success", found=len(rows), **_criteria(q))
    if args.json:
        for r in rows:
            print(json.dumps(r))
    elif rows:
        _table(rows, cfg, sys.stdout)
        print(f"{len(rows)} message(s)" + (" (limit reached; use --limit)"
                                           if q.limit is not None and len(rows) >= q.limit
                                           else ""), file=sys.stderr)
    else:
        print("no messages found", file=sys.stderr)
    return 0 if rows else 1


def show_cmd(args: argparse.Namespace) -> int:
    """``log show ID``."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 2
    store = _open(cfg)
    if store is None:
        return 2
    with_text = bool(args.text or args.form)
    with contextlib.closing(store):
        msg = msglog.get(store, args.id, with_text=with_text)
    _record_access(cfg, "show", "success" if msg else "not_found", msg_id=args.id,
                   with_text=with_text)
    if msg is None:
        print(f"log: no message {args.id}", file=sys.stderr)
        return 1
    if args.form:
        try:
            msg["text"] = msglog.in_form(msg, args.form, _codec(cfg))
        except MessageError as e:
            print(f"log: message {args.id} has no {args.form} form ({e.code.wire} "
                  f"{e.detail}); --text shows it as sent".rstrip(), file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(msg, indent=2))
        return 0
    out = sys.stdout
    out.write(f"message {msg['id']}: {msg['key'] or '?'} from {msg['origin'] or msg['link']} "
              f"(link {msg['link']}, input {msg['input_no']:05d})\n")
    out.write(f"  received   {_local(msg['received_at'], cfg)} {cfg.timezone}\n")
    out.write(f"  to         {','.join(msg['destinations']) or '-'}\n")
    if msg["control"]:
        out.write(f"  control    *{msg['control']}\n")
    out.write(f"  status     {outcome(msg)}\n")
    if msg["reply_to"]:
        out.write(f"  about      message {msg['reply_to']}\n")
    for d in msg["deliveries"]:
        times = ", ".join(f"{k.removesuffix('_at')} {_local(d[k], cfg)}"
                          for k in ("created_at", "sent_at", "done_at", "expires_at")
                          if d[k] and (k != "expires_at" or d["open"]))
        held = "held, then " if d.get("held") and d["state"] != "held" else ""
        out.write(f"  delivery   {d['receiver']} via {d['link']} #{d['output_no']:05d}: "
                  f"{held}{d['state']} ({times})\n")
    for c in msg["caused"]:
        states = ", ".join(f"{x['receiver']} {x['state']}" for x in c["deliveries"])
        out.write(f"  caused     {c['key']} {c['id']} to {c['receiver']}: {c['code']} "
                  f"[{states}]\n")
    if with_text:
        out.write("  text\n" if not args.form else f"  text ({args.form})\n")
        for line in msg["text"].splitlines():
            out.write(f"    {line}\n")
    return 0


def _codec(cfg: Config) -> XmlCodec:
    """The XML codec of the switch's schemas (the bundled ones and its adapters')."""
    from nlets_switch.services import adapter as ad
    from nlets_switch.services.local import load_adapters

    try:
        extra = ad.schema_dirs(load_adapters(cfg))
    except NletsError:
        extra = []
    return XmlCodec(load_schemas(extra), max_bytes=None)


class ProgressBar:
    """``progress(done, total)`` drawing ``[#####.....]  45%  4500/10000`` on a stream."""

    def __init__(self, stream: TextIO, width: int = 30) -> None:
        self.stream = stream
        self.width = width
        self.drawn = False

    def __call__(self, done: int, total: int) -> None:
        """Redraw the bar."""
        frac = done / total if total else 1.0
        n = int(frac * self.width)
        self.stream.write(f"\rexporting [{'#' * n}{'.' * (self.width - n)}] {frac:4.0%}  "
                          f"{done}/{total}")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        """End the bar's line."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def export_cmd(args: argparse.Namespace) -> int:
    """``log export``."""
    prep = _prepare(args)
    if isinstance(prep, int):
        return prep
    cfg, q, store = prep
    with contextlib.closing(store):
        total = msglog.count(store, q)
        bar: ProgressBar | None = None
        if args.progress or (sys.stderr.isatty() and total >= _PROGRESS_MIN):
            bar = ProgressBar(sys.stderr)
        try:
            out_cm: Any = (open(args.out, "w", encoding="utf-8", newline="") if args.out
                           else contextlib.nullcontext(sys.stdout))
        except OSError as e:
            print(f"log: cannot write {args.out}: {e.strerror}", file=sys.stderr)
            return 2
        with out_cm as out:
            n = msglog.export(store, q, args.format, out, bar, with_text=args.with_text)
        if bar is not None:
            bar.finish()
    _record_access(cfg, "export", "success", exported=n, format=args.format,
                   with_text=bool(args.with_text), **_criteria(q))
    print(f"exported {n} message(s)" + (f" to {args.out}" if args.out else ""), file=sys.stderr)
    return 0
