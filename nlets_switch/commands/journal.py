"""``nlets-switch journal check`` and ``nlets-switch journal recover`` (docs/operations.md).

::

    nlets-switch journal check   [--config FILE] [--data-dir DIR]
    nlets-switch journal recover [--config FILE] [--data-dir DIR] [--out FILE]

``serve`` runs the same check before it starts (:func:`refuse_unfit_journal`)
and refuses a damaged, unreadable or read-only journal in one line.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit, pid_file
from nlets_switch.config import Config
from nlets_switch.store.integrity import (
    IntegrityReport,
    Problem,
    RecoveryError,
    RecoveryReport,
    check,
    journal_path,
    recover,
    wal_files,
)

EPILOG = """examples:
  nlets-switch journal check --data-dir /var/lib/nlets
  nlets-switch journal check --config /etc/nlets/switch.yaml
  nlets-switch journal recover --data-dir /var/lib/nlets
  nlets-switch journal recover --data-dir /var/lib/nlets --out /srv/spare/journal.sqlite

`serve` runs the same check at start and refuses a damaged, unreadable or
read-only journal with one line saying what to do.

exit status (check):   0 the switch can run on the journal (or will make a new one),
                       2 damaged, unreadable, read-only, in use or of a newer version.
exit status (recover): 0 every row recovered, 1 new journal written but some rows
                       could not be read (listed), 2 nothing written.
A configuration with errors exits 1, as for every command.
"""

_MAX_LINES = 20  # quick_check lines and id ranges printed before "... N more"


def register(sub: SubParsers) -> None:
    """Add ``journal`` with ``check`` and ``recover``."""
    p = sub.add_parser("journal", help="check or recover the switch's journal",
                       description="The journal holds every message the switch took custody "
                       "of.\n`check` tells whether the switch can run on it; `recover` copies "
                       "every readable\nmessage and delivery of a damaged one into a new file.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    jsub = p.add_subparsers(dest="journal_command", metavar="COMMAND")
    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])

    c = jsub.add_parser("check", help="quick integrity and access check (as serve does at start)",
                        description="Check the journal without changing it: SQLite's "
                        "quick_check of every page,\nthe file header, the schema version, and "
                        "that the journal, its -wal/-shm files\nand its directory can be "
                        "written. Safe while the switch runs.",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(c)
    c.set_defaults(func=check_cmd)

    r = jsub.add_parser("recover", help="copy every readable row of a damaged journal into a "
                        "new one", description="Read a damaged journal page by page and write "
                        "every readable message and\ndelivery (and the counters, the audit "
                        "trail and the help files) into a NEW journal;\nsay what could not be "
                        "read. The damaged file is never changed. Run it with the\nswitch "
                        "stopped; it needs free space for a copy of the journal.",
                        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_args(r)
    r.add_argument("--out", metavar="FILE",
                   help="the new journal (default: DIR/journal.recovered-<time>.sqlite); "
                        "must not exist")
    r.set_defaults(func=recover_cmd)


# --------------------------------------------------------------------------
# serve's hook
# --------------------------------------------------------------------------


def refuse_unfit_journal(cfg: Config) -> bool:
    """Check ``cfg``'s journal; on a problem print the one line and return True."""
    report = check(journal_path(Path(cfg.data_dir).absolute()))
    problem = report.first
    if problem is None:
        return False
    print(f"nlets-switch: {refusal(report.path, problem)}", file=sys.stderr)
    return True


def refusal(path: Path, problem: Problem) -> str:
    """One line: what is wrong with the journal at ``path`` and what to do."""
    what, todo = _verdict(path, problem)
    return f"{what}; {todo}"


def _verdict(path: Path, problem: Problem) -> tuple[str, str]:
    d = shlex.quote(str(path.parent))
    if problem.kind == "damaged":
        return (f"journal {path} is damaged ({problem.detail})",
                f"run 'nlets-switch journal recover --data-dir {d}' and start again")
    if problem.kind == "newer":
        return (f"journal {path} was written by a newer nlets-switch ({problem.detail})",
                "run that version, or start with another --data-dir")
    if problem.kind == "busy":
        return (f"journal {path} is in use by another process ({problem.detail})",
                f"stop the switch that runs on {d} (its pid is in {d}/switch.pid), or start "
                f"with another --data-dir")
    if problem.kind == "unreadable":
        return (f"journal {path} cannot be read ({problem.detail})",
                "give the switch's user read and write access to it and start again")
    return (f"journal {path} is read-only ({problem.detail})",
            f"the switch writes the journal, its -wal and -shm files and their directory: "
            f"remount {d} read-write or fix its permissions, and start again")


# --------------------------------------------------------------------------
# journal check
# --------------------------------------------------------------------------


def check_cmd(args: argparse.Namespace) -> int:
    """Print what :func:`check` finds; 0 when the switch can run on the journal."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 1
    report = check(journal_path(Path(cfg.data_dir).absolute()))
    print(describe(report))
    return 0 if report.ok else 2


def describe(report: IntegrityReport) -> str:
    """A few lines for an operator: the verdict, every problem, what to do."""
    path = report.path
    if report.ok and report.new:
        return (f"journal {path}: none yet; serve will create it "
                f"({path.parent} can be written)")
    if report.ok:
        return (f"journal {path}: OK ({report.size / 1e6:.1f} MB, schema version "
                f"{report.schema_version or '?'}, checked in {report.seconds:.2f} s)")
    first = report.first
    assert first is not None
    lines = [f"journal {path}: {first.kind.upper()}"]
    lines += [f"  {p.kind}: {p.detail}" for p in report.problems]
    if len(report.quick_check) > 1:
        lines.append("  quick_check says:")
        lines += [f"    {q}" for q in report.quick_check[:_MAX_LINES]]
        if len(report.quick_check) > _MAX_LINES:
            lines.append(f"    ... {len(report.quick_check) - _MAX_LINES} more")
    lines.append(f"what to do: {_verdict(path, first)[1]}")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# journal recover
# --------------------------------------------------------------------------


def recover_cmd(args: argparse.Namespace) -> int:
    """Recover into a new journal; print what was saved and how to put it in place."""
    cfg = config_or_exit(args)
    if cfg is None:
        return 1
    damaged = journal_path(Path(cfg.data_dir).absolute())
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    default = damaged.with_name(f"journal.recovered-{stamp}.sqlite")
    out = Path(args.out).absolute() if args.out else default
    if not damaged.is_file():
        print(f"nlets-switch: no journal at {damaged}; nothing to recover", file=sys.stderr)
        return 2
    running = _running_switch(Path(cfg.data_dir))
    if running is not None:
        print(f"nlets-switch: a switch runs on {damaged} (pid {running}); stop it, then "
              f"recover", file=sys.stderr)
        return 2
    print(f"recovering {damaged} into {out} ...", flush=True)
    try:
        report = recover(damaged, out)
    except FileExistsError:
        print(f"nlets-switch: {out} exists; recover writes a new file (choose --out)",
              file=sys.stderr)
        return 2
    except RecoveryError as e:
        print(f"nlets-switch: nothing could be recovered: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"nlets-switch: cannot write {out}: {e.strerror or e}; choose --out on a "
              f"writable file system with room for a copy of the journal", file=sys.stderr)
        return 2
    print(summary(report))
    print()
    print(install_steps(report, stamp))
    return 0 if report.complete else 1


def _running_switch(data_dir: Path) -> int | None:

    try:
        pid = int(pid_file(data_dir).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def _ranges(spans: list[tuple[int, int]]) -> str:
    shown = [f"{a}" if a == b else f"{a}-{b}" for a, b in spans[:_MAX_LINES]]
    more = f", ... {len(spans) - _MAX_LINES} more ranges" if len(spans) > _MAX_LINES else ""
    return ", ".join(shown) + more


def summary(report: RecoveryReport) -> str:
    """What was recovered, table by table, and everything that could not be read."""
    lines: list[str] = []
    if report.wal_frames:
        lines.append(f"write-ahead log: {report.wal_frames} committed pages taken in")
    if report.header_repairs:
        lines.append(f"file header repaired (in the copy): {', '.join(report.header_repairs)}")
    if report.schema_lost:
        lines.append("schema page unreadable: the journal's tables were found by their rows "
                     "(tables other than the journal's own are lost)")
    first = {"messages": 0, "deliveries": 1}
    for t in sorted(report.tables, key=lambda t: (first.get(t.name, 2), t.name)):
        found = f" ({t.from_scan} found by scanning)" if t.from_scan else ""
        bad = f", {t.bad_cells} unreadable cells" if t.bad_cells else ""
        lines.append(f"{t.name}: {t.rows} row{'' if t.rows == 1 else 's'} recovered{found}{bad}")
        if report.refused.get(t.name):
            lines.append(f"  refused by the new journal (constraints): {report.refused[t.name]}")
        if report.missing.get(t.name):
            n = sum(b - a + 1 for a, b in report.missing[t.name])
            lines.append(f"  not recovered: {n} ids ({_ranges(report.missing[t.name])}); "
                         f"lost with a damaged page, or removed earlier by retention")
        for lp in t.lost_pages[:_MAX_LINES]:
            lines.append(f"  damaged page {lp.page}: {lp.reason}")
        if len(t.lost_pages) > _MAX_LINES:
            lines.append(f"  ... {len(t.lost_pages) - _MAX_LINES} more damaged pages")
    if report.orphans:
        per = ", ".join(f"{link} {n}" for link, n in report.orphans.items())
        lines.append(f"left out: {sum(report.orphans.values())} deliveries whose message was "
                     f"lost ({per}); tell those destinations")
    if report.counters_rebuilt:
        lines.append(f"numbering counters rebuilt from the newest rows: "
                     f"{len(report.counters_rebuilt)}")
    verdict = "every row recovered" if report.complete else "some rows could not be read"
    lines.append(f"{verdict}; {report.owed} deliveries owed in the new journal "
                 f"({report.seconds:.1f} s)")
    return "\n".join(lines)


def install_steps(report: RecoveryReport, stamp: str) -> str:
    """How to put the new journal in place, keeping the damaged one beside it."""
    damaged, new = report.damaged, report.new
    d = shlex.quote(str(damaged.parent))
    keep = f"damaged-{stamp}"
    files = " ".join(shlex.quote(p.name) for p in (damaged, *wal_files(damaged)) if p.exists())
    return "\n".join([
        "The damaged journal was not changed. To put the new one in place, with the "
        "switch stopped:",
        f"  cd {d}",
        f"  mkdir {keep} && mv {files} {keep}/",
        f"  mv {shlex.quote(str(new))} {damaged.name}",
        f"  nlets-switch journal check --data-dir {d}",
        f"  nlets-switch serve --data-dir {d}    (or with your usual --config)",
    ])
