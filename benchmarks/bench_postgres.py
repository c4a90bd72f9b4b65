"""``bench_switch.py --store postgresql``: the SQLite node, one PostgreSQL node and two
PostgreSQL cluster nodes, one run.

Starts its own PostgreSQL (the tests' throwaway server: Debian's binaries, a
temporary directory, a free port; see tests/conftest_postgres.py), then drives
the same traffic through a switch on the SQLite journal, a switch on that
database, and two cluster nodes (``--node-id n1``/``n2``) on a fresh database
with the links split between them: the driver processes alternate between the
nodes and each inquirer asks every answerer's state in turn, so half the
traffic crosses nodes. It prints messages routed per second, round-trip
p50/p99 and CPU seconds per 10,000 messages of each process (the database's
processes summed).

The PostgreSQL server runs with its defaults (fsync on) and the switch commits
each batch with ``synchronous_commit`` on: the same durability as the SQLite
journal's ``synchronous=FULL``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent

Measure = Callable[[Any, argparse.Namespace, Path], dict[str, Any]]
Argv = Callable[[int, Path], list[str]]


def _server() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.conftest_postgres import PgServer, _bin_dir

    bin_dir = _bin_dir()
    if bin_dir is None:
        raise SystemExit("--store postgresql: PostgreSQL's binaries are not installed "
                         "(Debian package postgresql; make system-deps)")
    return PgServer(bin_dir)


def _db_cpu(data: Path) -> float:
    """CPU seconds used so far by the postmaster of ``data`` and its children, the
    backends that ended included (the postmaster reaps them: its children_* times)."""
    try:
        pid = int((data / "postmaster.pid").read_text().split()[0])
        main = psutil.Process(pid)
        t0 = main.cpu_times()
        total = t0.children_user + t0.children_system
        for p in [main, *main.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total
    except (OSError, ValueError, psutil.Error):
        return 0.0


def _per_10k(cpu_s: float, messages: int) -> float | None:
    return round(cpu_s * 10_000 / messages, 2) if messages else None


def _switch_cpu_s(r: dict[str, Any]) -> float:
    return float(r.get("server_cpu_percent") or 0) / 100 * float(r.get("seconds") or 0)


def compare(args: argparse.Namespace, work: Path, measure: Measure,
            target: Callable[..., Any], switch_argv: Argv) -> dict[str, Any]:
    """Measure the SQLite node, then one node on a fresh PostgreSQL; both results."""
    sqlite = measure(target("switch-sqlite", switch_argv), args, work)
    server = _server()
    try:
        server.start()
        url = server.create_database()
        before = _db_cpu(server.data)
        pg = measure(target("switch-postgresql",
                            lambda port, data: [*switch_argv(port, data), "--store", url]),
                     args, work)
        pg["database_cpu_s"] = round(_db_cpu(server.data) - before, 2)
        url2 = server.create_database()
        before = _db_cpu(server.data)
        two = measure(target("switch-postgresql-2",
                             lambda port, data: [*switch_argv(port, data), "--store", url2],
                             nodes=2, node_argv=lambda i: ["--node-id", f"n{i + 1}"]),
                      args, work)
        two["database_cpu_s"] = round(_db_cpu(server.data) - before, 2)
    finally:
        server.remove()
    for r in (sqlite, pg):
        r["switch_cpu_s_per_10k"] = _per_10k(_switch_cpu_s(r), int(r.get("messages") or 0))
    two["switch_cpu_s_per_10k"] = _round(two.get("node_cpu_s_per_10k", [None])[0])
    two["node2_cpu_s_per_10k"] = _round((two.get("node_cpu_s_per_10k") or [None, None])[1])
    # The database's CPU covers the whole run (start and warm-up too): an upper bound.
    for r in (pg, two):
        r["database_cpu_s_per_10k_upper"] = _per_10k(r["database_cpu_s"],
                                                     int(r.get("messages") or 0))
    return {"sqlite": sqlite, "postgresql": pg, "postgresql_2": two,
            "ratio": (round(pg["msgs_per_s"] / sqlite["msgs_per_s"], 3)
                      if sqlite.get("msgs_per_s") else None),
            "ratio_2": (round(two["msgs_per_s"] / sqlite["msgs_per_s"], 3)
                        if sqlite.get("msgs_per_s") else None)}


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def report(r: dict[str, Any]) -> str:
    """The readable table of :func:`compare`'s result."""
    s, p, t = r["sqlite"], r["postgresql"], r["postgresql_2"]

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def errs(x: dict[str, Any]) -> str:
        return f"{x['errors']}/{x['naks']}/{x['unanswered']}"

    rows = [
        ("messages routed per s", f(s["msgs_per_s"], ",.0f"), f(p["msgs_per_s"], ",.0f"),
         f(t["msgs_per_s"], ",.0f")),
        ("latency p50 (ms, DQ->DR)", f(s["p50_ms"], ".2f"), f(p["p50_ms"], ".2f"),
         f(t["p50_ms"], ".2f")),
        ("latency p99 (ms, DQ->DR)", f(s["p99_ms"], ".2f"), f(p["p99_ms"], ".2f"),
         f(t["p99_ms"], ".2f")),
        ("switch CPU s / 10k msgs", f(s["switch_cpu_s_per_10k"], ".2f"),
         f(p["switch_cpu_s_per_10k"], ".2f"),
         f"{f(t['switch_cpu_s_per_10k'], '.2f')} + {f(t['node2_cpu_s_per_10k'], '.2f')}"),
        # The journal's writer process (both stores since pgproc; a thread before, and
        # counted in the switch's CPU then). Two nodes: not measured per node.
        ("writer process CPU s / 10k", f(s.get("writer_cpu_s_per_10k"), ".2f"),
         f(p.get("writer_cpu_s_per_10k"), ".2f"), "-"),
        ("database CPU s / 10k (max)", "-", f(p["database_cpu_s_per_10k_upper"], ".2f"),
         f(t["database_cpu_s_per_10k_upper"], ".2f")),
        ("messages measured", f(s["messages"], ","), f(p["messages"], ","),
         f(t["messages"], ",")),
        ("errors / naks / unanswered", errs(s), errs(p), errs(t)),
    ]
    lines = ["nlets-switch on SQLite, on one PostgreSQL node and on two PostgreSQL cluster "
             "nodes (same traffic, same machine; the database shares its cores; with two "
             "nodes half the traffic crosses nodes, CPU per node)", "",
             f"{'':28}{'SQLite':>14}{'PostgreSQL':>14}{'2 PG nodes':>16}"]
    lines += [f"{a:28}{b:>14}{c:>14}{d:>16}" for a, b, c, d in rows]
    lines += ["", f"ratio PostgreSQL/SQLite: {f(r['ratio'], '.2f')}; "
              f"two nodes/SQLite: {f(r['ratio_2'], '.2f')}"]
    return "\n".join(lines)
