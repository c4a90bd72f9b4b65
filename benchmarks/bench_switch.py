"""Benchmark of nlets-switch: messages routed per second, latency, peak memory.

The switch runs as its own process (``python -m nlets_switch serve`` with
``benchmarks/bench.yaml``, journal durable as in production: SQLite WAL,
``synchronous=FULL``, group commit, in the journal's writer process). A
driver, in separate process(es), signs on ``--links`` control terminals:
half are *inquirers*, half are *answerers*; each answerer answers every
``DQ`` it is delivered with a ``DR`` to the inquirer, repeating the control
field (see bench_driver.py). Latency is the inquirer's round trip, ``DQ``
sent to ``DR`` received (through the switch twice, two journal commits).
"Messages routed" counts ``DQ`` and ``DR`` delivered.

Closed loop (default): each inquirer keeps ``--inflight`` inquiries
outstanding; the rate is what the server sustains. Open loop (``--rate N``):
N ``DQ`` per second in total leave on a schedule whatever comes back, and the
round trip counts from the scheduled time.

The same driver then pushes the same traffic through ``benchmarks/relay.py``
(same framing, no journal, no validation) and the ratio of the two rates is
printed: how much of a bare relay's speed the switch keeps.

``--format xml`` makes the inquirers XML links (``format: xml``, docs/xml.md;
the answerers stay text) and measures the switch with text inquirers, then
with XML ones: the cost of XML beside text (``benchmarks/bench_xml.py``).

Run ``python benchmarks/bench_switch.py`` (table) or ``--json`` (one object).
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import platform
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Final

import psutil
import yaml
from bench_driver import Plan, driver_main

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_xml  # beside this file (benchmarks/ is not a package)

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "bench.yaml"
RELAY = HERE / "relay.py"


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------
# The orchestrator: servers as processes, drivers as processes, sampling.
# --------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30) -> None:
    """Wait until ``port`` accepts; fail with the process's log if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"server did not listen on port {port} within {timeout} s")


#: Log events that end a switch's start-up work: the LEIS data set built or opened
#: (or not to be had). Until then a worker thread builds it, which the measured
#: window must not include.
STARTED_EVENTS: Final = ('"leis_ready"', '"leis_unavailable"', '"leis_database_unavailable"')


def wait_started(proc: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> float:
    """Wait until the switch listening on its port has also finished starting: its
    LEIS data set ready, when it runs the LEIS service. A node on a new PostgreSQL
    database builds that data set (10,000 persons, once for the cluster) for
    seconds; a SQLite node copies it from the build cache. Returns the seconds waited."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        text = log.read_text(errors="replace")
        if '"adapter": "leis"' not in text or any(e in text for e in STARTED_EVENTS):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise RuntimeError(f"server did not finish starting within {timeout} s")


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of ``pid`` (Linux VmHWM), in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    i = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))
    return sorted_values[i]


def split(items: list[str], n: int) -> list[list[str]]:
    """``items`` dealt round-robin into ``n`` lists."""
    return [items[i::n] for i in range(n)]


@dataclass
class Target:
    """One server to measure: how to start it."""

    name: str
    argv: Callable[[int, Path], list[str]]
    xml: bool = False
    #: Cluster nodes to start (each with ``node_argv(i)`` added); the driver
    #: processes are spread over them, so links are split between the nodes.
    nodes: int = 1
    node_argv: Callable[[int], list[str]] | None = None


def bench_oris(n_links: int) -> list[str]:
    """The first ``n_links`` control terminals of bench.yaml."""
    raw = yaml.safe_load(CONFIG.read_text())
    oris = [e["ori"] for e in raw["links"] if e.get("role") == "control_terminal"]
    if n_links > len(oris):
        raise SystemExit(f"--links {n_links}: bench.yaml has only {len(oris)} control terminals")
    return oris[:n_links]


class Sampler:
    """CPU and memory of the server process and of its children (the journal writer)."""

    def __init__(self, pid: int) -> None:
        self.ps = psutil.Process(pid)
        self.peak = 0.0
        self.child_peak: dict[int, float] = {}
        self.children: dict[int, psutil.Process] = {}

    def sample(self) -> None:
        """One memory sample (every 50 ms)."""
        with contextlib.suppress(psutil.Error):
            self.peak = max(self.peak, self.ps.memory_info().rss / 2**20)
            for c in self.ps.children(recursive=True):
                self.children.setdefault(c.pid, c)
        for pid, c in list(self.children.items()):
            with contextlib.suppress(psutil.Error):
                self.child_peak[pid] = max(self.child_peak.get(pid, 0.0),
                                           c.memory_info().rss / 2**20)

    def cpu(self) -> tuple[float, float, float]:
        """(time, CPU seconds of the server process, of its live children)."""
        own = children = 0.0
        with contextlib.suppress(psutil.Error):
            t = self.ps.cpu_times()
            own = t.user + t.system
        for c in list(self.children.values()):
            with contextlib.suppress(psutil.Error):
                t = c.cpu_times()
                children += t.user + t.system
        return time.monotonic(), own, children

    def children_private(self) -> tuple[float, float] | None:
        """The children's USS and PSS now (MiB): memory only they use, and their share.

        RSS counts the shared libraries and Python's own pages in both
        processes; USS is what the writer adds, PSS a fair split of the rest.
        """
        uss = pss = 0.0
        try:
            for c in self.children.values():
                m = c.memory_full_info()
                uss += m.uss / 2**20
                pss += getattr(m, "pss", 0) / 2**20
        except (psutil.Error, AttributeError):
            return None
        return uss, pss

    def children_hwm(self) -> float:
        """Sum of the children's peak RSS (VmHWM when readable), MiB."""
        total = 0.0
        for pid, peak in self.child_peak.items():
            total += max(peak, vm_hwm_mb(pid) or 0.0)
        return total


def measure(target: Target, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Start one server, drive it, sample it, stop it; the figures of that run."""
    port = free_port()
    log = work / f"{target.name}.log"
    data = work / f"{target.name}-data"
    node_argv = target.node_argv or (lambda _i: [])
    with log.open("wb") as logf:
        proc = subprocess.Popen([*target.argv(port, data), *node_argv(0)], stdout=logf,
                                stderr=subprocess.STDOUT, cwd=HERE.parent)
    # Cluster mode: the other nodes (the first is ``proc``).
    others: list[tuple[subprocess.Popen[bytes], int, Path]] = []
    nodes_a: list[tuple[float, float, float]] = []
    nodes_b: list[tuple[float, float, float]] = []
    try:
        for i in range(1, target.nodes):
            p_i, log_i = free_port(), work / f"{target.name}-{i}.log"
            with log_i.open("wb") as logf:
                others.append((subprocess.Popen(
                    [*target.argv(p_i, work / f"{target.name}-data-{i}"), *node_argv(i)],
                    stdout=logf, stderr=subprocess.STDOUT, cwd=HERE.parent), p_i, log_i))
        wait_port(proc, port, log)
        for p_i, port_i, log_i in others:
            wait_port(p_i, port_i, log_i)
        started_s = 0.0
        if not args.no_start_wait:
            started_s = wait_started(proc, log)
            for p_i, _port_i, log_i in others:
                started_s += wait_started(p_i, log_i)
        ports = [port, *(o[1] for o in others)]
        node_samplers = [Sampler(o[0].pid) for o in others]
        sampler = Sampler(proc.pid)
        sampler.sample()
        oris = bench_oris(args.links)
        n_inq = max(1, len(oris) // 2)
        inquirers, answerers = oris[:n_inq], oris[n_inq:]
        if not answerers:
            raise SystemExit("--links must be at least 2")
        states = [o[:2] for o in answerers]
        procs = max(1, target.nodes, min(args.driver_procs, len(inquirers), len(answerers)))
        inq_parts, ans_parts = split(inquirers, procs), split(answerers, procs)
        msgs_each = (args.messages + procs - 1) // procs if args.messages else 0
        # fork: the driver starts at once and needs nothing re-imported.
        ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pipes: list[Connection] = []
        children = []
        for i in range(procs):
            plan = Plan("127.0.0.1", ports[i % len(ports)], inq_parts[i], states, ans_parts[i],
                        args.inflight,
                        args.warmup, args.seconds, msgs_each, args.max_seconds,
                        args.rate * len(inq_parts[i]) / len(inquirers), xml=target.xml)
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(target=driver_main, args=(plan, child_end), daemon=True)
            p.start()
            child_end.close()
            pipes.append(parent_end)
            children.append(p)
        for c in pipes:
            msg = c.recv()
            if msg[0] != "ready":
                raise RuntimeError(f"driver failed: {msg[1]}")
        t_go = time.monotonic() + 0.1
        for c in pipes:
            c.send(("go", t_go))
        cpu_a = cpu_b = None
        t_measure = t_go + args.warmup
        profiler: subprocess.Popen[bytes] | None = None
        results: dict[int, dict[str, Any]] = {}
        while len(results) < len(pipes):
            sampler.sample()
            if cpu_a is None and time.monotonic() >= t_measure:
                cpu_a = sampler.cpu()
                nodes_a = [s.cpu() for s in node_samplers]
                if args.profile and target.name in ("switch", "switch-postgresql"):
                    profiler = start_profiler(args, proc.pid)
            for i, c in enumerate(pipes):
                if i not in results and c.poll(0.05):
                    kind, payload = c.recv()
                    if kind != "result":
                        raise RuntimeError(f"driver failed: {payload}")
                    results[i] = payload
                    if cpu_b is None:
                        cpu_b = sampler.cpu()
                        nodes_b = [s.cpu() for s in node_samplers]
        for p in children:
            p.join(10)
        if profiler is not None:
            stop_profiler(profiler)
        hwm = vm_hwm_mb(proc.pid)
        children_peak = sampler.children_hwm()
        private = sampler.children_private()
    finally:
        for p_stop in [proc, *(o[0] for o in others)]:
            p_stop.send_signal(signal.SIGTERM)
        for p_stop in [proc, *(o[0] for o in others)]:
            try:
                p_stop.wait(30)
            except subprocess.TimeoutExpired:
                p_stop.kill()
                p_stop.wait()
    res = list(results.values())
    count = sum(r["count"] for r in res)
    t0 = min(r["t_start"] for r in res)
    t1 = max(r["t_end"] for r in res)
    lat: list[float] = []
    for r in res:
        a = array("d")
        a.frombytes(r["latencies"])
        lat.extend(a)
    lat.sort()
    elapsed = max(t1 - t0, 1e-9)
    server_cpu = writer_cpu = server_cpu_s = writer_cpu_s = None
    if cpu_a is not None and cpu_b is not None and cpu_b[0] > cpu_a[0]:
        span = cpu_b[0] - cpu_a[0]
        server_cpu_s, writer_cpu_s = cpu_b[1] - cpu_a[1], cpu_b[2] - cpu_a[2]
        server_cpu = 100 * server_cpu_s / span
        writer_cpu = 100 * writer_cpu_s / span
    rate_in_window = count / elapsed

    def per_10k(cpu_s: float | None) -> float | None:
        # CPU seconds per 10,000 messages routed, over the same window.
        if cpu_s is None or not rate_in_window or cpu_a is None or cpu_b is None:
            return None
        return cpu_s / (rate_in_window * (cpu_b[0] - cpu_a[0])) * 10_000

    peak = max(hwm or 0.0, sampler.peak)
    out: dict[str, Any] = {
        "msgs_per_s": rate_in_window,
        "messages": count,
        "seconds": elapsed,
        "p50_ms": quantile(lat, 0.50) * 1000,
        "p99_ms": quantile(lat, 0.99) * 1000,
        "p999_ms": quantile(lat, 0.999) * 1000,
        "round_trips": len(lat),
        "peak_rss_mb": peak,
        "writer_peak_rss_mb": children_peak or None,
        "total_peak_rss_mb": peak + children_peak,
        "writer_uss_mb": private[0] if private and children_peak else None,
        "writer_pss_mb": private[1] if private and children_peak else None,
        "server_cpu_percent": server_cpu,
        "writer_cpu_percent": writer_cpu if children_peak else None,
        "server_cpu_s_per_10k": per_10k(server_cpu_s),
        "writer_cpu_s_per_10k": per_10k(writer_cpu_s) if children_peak else None,
        "driver_cpu_percent": 100 * sum(r["cpu_s"] for r in res) / elapsed,
        "errors": sum(r["errors"] for r in res),
        "naks": sum(r["naks"] for r in res),
        "unanswered": sum(r["lost"] for r in res),
        "nak_reasons": sorted({x for r in res for x in r["nak_reasons"]}),
        "driver_procs": procs,
        "start_wait_s": round(started_s, 2),
        "inquirers": len(inquirers),
        "answerers": len(answerers),
    }
    if others and cpu_a is not None and cpu_b is not None:
        # CPU seconds per 10,000 messages of each node (the first is the one above).
        out["node_cpu_s_per_10k"] = [per_10k(server_cpu_s), *(
            per_10k(b[1] - a[1]) for a, b in zip(nodes_a, nodes_b, strict=True))]
        out["node_cpu_s"] = [server_cpu_s, *(b[1] - a[1]
                                             for a, b in zip(nodes_a, nodes_b, strict=True))]
    if args.rate:
        out["offered_dq_per_s"] = args.rate
        out["sent"] = sum(r["sent"] for r in res)
        out["answered"] = sum(r["answered"] for r in res)
    if out["errors"] or out["naks"] or out["unanswered"]:
        out["server_log_tail"] = log.read_text(errors="replace")[-2000:]
    out.update(journal_stats(log))
    journal = data / "journal.sqlite"
    if journal.exists():
        with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
            out["journal_messages"] = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    if out.get("journal_messages") and "journal_pickle_seconds" in out:
        # What handing rows to the writer process costs the loop, per message.
        out["journal_pickle_us_per_msg"] = (1e6 * out["journal_pickle_seconds"]
                                            / out["journal_messages"])
    return out


def journal_stats(log: Path) -> dict[str, Any]:
    """Group-commit figures of the whole run, from the switch's ``journal_closed`` log line."""
    for line in reversed(log.read_text(errors="replace").splitlines()):
        if '"journal_closed"' in line:
            with contextlib.suppress(ValueError):
                e = json.loads(line)
                commits = int(e["commits"])
                return {"journal_commits": commits,
                        "journal_commit_ms_mean": 1000 * e["commit_seconds"] / max(1, commits),
                        "journal_pickle_seconds": e.get("pickle_seconds", 0.0),
                        "journal_ops": int(e.get("operations", 0))}
    return {}


def start_profiler(args: argparse.Namespace, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy on the switch for the measured window (``--profile``), when installed."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("--profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return None
    fmt = "raw" if str(args.profile).endswith((".txt", ".folded")) else "flamegraph"
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--output", str(args.profile), "--format", fmt,
         "--rate", "200", "--threads", "--subprocesses", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(p: subprocess.Popen[bytes]) -> None:
    """Stop py-spy; it writes its output on SIGINT."""
    p.send_signal(signal.SIGINT)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()


def switch_argv(args: argparse.Namespace,
                config: Path | None = None) -> Callable[[int, Path], list[str]]:
    """The command line of the switch under test."""
    return lambda port, data: [
        sys.executable, "-m", "nlets_switch", "serve", "--config", str(config or args.config),
        "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--log-level", "info",
        "--http", "off"]


def relay_argv(port: int, data: Path) -> list[str]:
    """The command line of the bare relay."""
    return [sys.executable, str(RELAY), "--listen", f"127.0.0.1:{port}"]


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "uvloop": _has_uvloop(),
        "note": f"switch (or relay) and driver share the same {os.cpu_count()} cores",
    }


def fs_type(path: Path) -> str:
    """The file system holding ``path`` (the journal's fsync cost depends on it)."""
    best, kind = "", "?"
    with contextlib.suppress(OSError):
        for part in psutil.disk_partitions(all=True):
            if str(path).startswith(part.mountpoint) and len(part.mountpoint) > len(best):
                best, kind = part.mountpoint, part.fstype
    return kind


def fsync_probe(directory: Path, seconds: float = 1.0) -> dict[str, float]:
    """Commit latency of a bare SQLite WAL database (synchronous=FULL) in ``directory``.

    The switch's commits cannot be faster than this; on a shared machine it
    moves a lot, and it says whether a run's latency is the switch's or the disk's.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "fsync-probe.sqlite"
    times: list[float] = []
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS t (x TEXT)")
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            t0 = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            db.executemany("INSERT INTO t VALUES (?)", [("x" * 200,)] * 20)
            db.execute("COMMIT")
            times.append(time.perf_counter() - t0)
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(OSError):
            os.unlink(f"{path}{suffix}")
    times.sort()
    return {"commits": len(times), "p50_ms": round(quantile(times, 0.5) * 1000, 3),
            "p99_ms": round(quantile(times, 0.99) * 1000, 3)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(
        description="Benchmark the switch (own process, durable journal) against a bare "
        "relay with the same traffic.")
    ap.add_argument("--links", type=int, default=20,
                    help="control terminals signed on: half inquire, half answer (default 20)")
    ap.add_argument("--inflight", type=int, default=16,
                    help="closed loop: DQ outstanding per inquirer link (default 16)")
    ap.add_argument("--rate", type=float, default=0.0,
                    help="open loop: N DQ per second in total, sent on a schedule whatever "
                    "comes back (each answered by a DR: 2N messages routed per second)")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="measured time per server (default 10)")
    ap.add_argument("--messages", type=int, default=0,
                    help="measure until this many messages were routed, instead of --seconds")
    ap.add_argument("--max-seconds", type=float, default=120.0,
                    help="give up a --messages run after this long (default 120)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of traffic before measuring (default 2)")
    ap.add_argument("--no-start-wait", action="store_true",
                    help="drive the switch as soon as it listens, not once it has "
                         "finished starting (its LEIS data set built)")
    ap.add_argument("--driver-procs", type=int, default=1,
                    help="driver processes (default 1; the machine may have few cores)")
    ap.add_argument("--config", type=Path, default=CONFIG, help="switch configuration")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="where the switch's journal goes (default: a temporary directory)")
    ap.add_argument("--skip-relay", action="store_true", help="measure the switch only")
    ap.add_argument("--profile", type=Path, default=None,
                    help="py-spy the switch during the measured window into this file "
                    "(.svg flame graph, or .txt collapsed stacks)")
    ap.add_argument("--format", choices=("text", "xml"), default="text",
                    help="xml: measure the switch again with XML inquirers (format: xml; "
                    "answerers stay text) and print its figures beside the text run's")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                    help="postgresql: start a throwaway PostgreSQL and measure the SQLite "
                    "node and one PostgreSQL node in one run (benchmarks/bench_postgres.py)")
    args = ap.parse_args(argv)
    if args.rate < 0:
        ap.error("--rate must be positive")
    return args


def report(r: dict[str, Any]) -> str:
    """The readable table."""
    s, rl = r["switch"], r.get("relay")

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    def both(key: str, fmt: str) -> tuple[str, str]:
        return f(s.get(key), fmt), f(rl and rl.get(key), fmt)

    rows = [
        ("messages routed per s", *both("msgs_per_s", ",.0f")),
        ("latency p50 (ms, DQ->DR)", *both("p50_ms", ".2f")),
        ("latency p99 (ms, DQ->DR)", *both("p99_ms", ".2f")),
        ("latency p99.9 (ms, DQ->DR)", *both("p999_ms", ".2f")),
        ("peak RSS (MiB)", *both("peak_rss_mb", ".1f")),
        ("  + writer process (MiB)", *both("writer_peak_rss_mb", ".1f")),
        ("    of which its own (USS)", *both("writer_uss_mb", ".1f")),
        ("server CPU (%)", *both("server_cpu_percent", ".0f")),
        ("  writer process CPU (%)", *both("writer_cpu_percent", ".0f")),
        ("CPU s per 10k msgs: server", *both("server_cpu_s_per_10k", ".3f")),
        ("  writer process", *both("writer_cpu_s_per_10k", ".3f")),
        ("driver CPU (%)", *both("driver_cpu_percent", ".0f")),
        ("messages measured", *both("messages", ",")),
    ]
    if r["rate"]:
        rows.append(("DQ sent / answered", f"{s['sent']:,} / {s['answered']:,}",
                     f"{rl['sent']:,} / {rl['answered']:,}" if rl else "-"))
    rows.append(("errors / naks / unanswered",
                 f"{s['errors']}/{s['naks']}/{s['unanswered']}",
                 f"{rl['errors']}/{rl['naks']}/{rl['unanswered']}" if rl else "-"))
    m = r["machine"]
    if r["rate"]:
        mode = (f"open loop: {r['rate']:,.0f} DQ/s offered ({2 * r['rate']:,.0f} messages/s "
                "if all answered)")
    else:
        mode = f"closed loop: {r['inflight']} DQ in flight per inquirer"
    lines = [
        f"nlets-switch benchmark: {s['inquirers']} inquirer + {s['answerers']} answerer links, "
        f"{mode}, {s['seconds']:.1f} s measured after {r['warmup']:g} s warm-up",
        f"journal: SQLite WAL synchronous=FULL, group commit, on {r['journal_fs']}; "
        f"{s.get('journal_messages', '?')} messages journaled in "
        f"{s.get('journal_commits', '?')} commits of {f(s.get('journal_commit_ms_mean'), '.2f')} "
        f"ms on average; pickling for the writer {f(s.get('journal_pickle_us_per_msg'), '.2f')} "
        "us per message on the loop",
        f"disk: a bare SQLite commit takes {r['fsync_probe']['p50_ms']:.2f} ms (p50), "
        f"{r['fsync_probe']['p99_ms']:.2f} ms (p99) before the runs; "
        f"{r['fsync_probe_after']['p50_ms']:.2f} / {r['fsync_probe_after']['p99_ms']:.2f} ms "
        "after (a round trip needs two commits)",
        "",
        f"{'':30}{'switch':>14}{'bare relay':>14}",
    ]
    lines += [f"{a:30}{b:>14}{c:>14}" for a, b, c in rows]
    lines += [
        "",
        f"ratio switch/relay: {f(r['ratio'], '.3f')}",
        f"machine: {m['cores']} cores, Python {m['python']}, {m['platform']}, "
        f"uvloop {'yes' if m['uvloop'] else 'no'}, load average {m['load_average']}; "
        f"{m['note']}",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the switch, then the relay, with the same traffic; print the figures."""
    args = parse_args(argv)
    if args.links < 2:
        raise SystemExit("--links must be at least 2")
    work = Path(tempfile.mkdtemp(prefix="nlets-bench-"))
    if args.store == "postgresql":
        return _postgres(args, work)
    load_before = os.getloadavg()[0]
    probe = fsync_probe(args.data_dir if args.data_dir is not None else work)
    try:
        sw_target = Target("switch", switch_argv(args))
        if args.data_dir is not None:
            data_dir: Path = args.data_dir
            sw_target = Target("switch", lambda port, _d: switch_argv(args)(port, data_dir))
        sw = measure(sw_target, args, work)
        if args.data_dir is not None:
            with contextlib.closing(sqlite3.connect(args.data_dir / "journal.sqlite")) as db:
                sw["journal_messages"] = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        rl = None if args.skip_relay else measure(Target("relay", relay_argv), args, work)
        xml = None
        if args.format == "xml":
            oris = bench_oris(args.links)
            cfg = bench_xml.xml_config(args.config, oris[:max(1, len(oris) // 2)],
                                       work / "bench-xml.yaml")
            xml = measure(Target("switch-xml", switch_argv(args, cfg), xml=True), args, work)
        # Again after the runs: the disk of a shared machine moves, and the round
        # trips of an open-loop run are read beside its commits (two a round trip).
        probe_after = fsync_probe(args.data_dir if args.data_dir is not None else work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = sw["msgs_per_s"] / rl["msgs_per_s"] if rl and rl["msgs_per_s"] else None
    mach = machine()
    mach["load_average"] = f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
    result: dict[str, Any] = {
        "msgs_per_s": round(sw["msgs_per_s"], 1),
        "p50_ms": round(sw["p50_ms"], 3),
        "p99_ms": round(sw["p99_ms"], 3),
        "p999_ms": round(sw["p999_ms"], 3),
        "peak_rss_mb": round(sw["peak_rss_mb"], 1),
        "total_peak_rss_mb": round(sw["total_peak_rss_mb"], 1),
        "relay_msgs_per_s": round(rl["msgs_per_s"], 1) if rl else None,
        "relay_p50_ms": round(rl["p50_ms"], 3) if rl else None,
        "relay_p99_ms": round(rl["p99_ms"], 3) if rl else None,
        "relay_p999_ms": round(rl["p999_ms"], 3) if rl else None,
        "relay_peak_rss_mb": round(rl["peak_rss_mb"], 1) if rl else None,
        "ratio": round(ratio, 4) if ratio is not None else None,
        "links": args.links,
        "inflight": args.inflight,
        "rate": args.rate,
        "warmup": args.warmup,
        "journal_fs": fs_type(args.data_dir.resolve() if args.data_dir else work),
        "fsync_probe": probe,
        "fsync_probe_after": probe_after,
        "switch": sw,
        "relay": rl,
        "machine": mach,
    }
    if xml is not None:
        result["xml"] = xml
        result["xml_msgs_per_s"] = round(xml["msgs_per_s"], 1)
        # What one message costs with XML inquirers, relative to text (goal: < 2).
        result["xml_cost"] = (round(sw["msgs_per_s"] / xml["msgs_per_s"], 3)
                              if xml["msgs_per_s"] else None)
    if args.json:
        print(json.dumps(result))
    else:
        print(report(result))
        if xml is not None:
            print(bench_xml.report(sw, xml, result["xml_cost"]))
    bad = sw["errors"] or sw["naks"] or (rl is not None and (rl["errors"] or rl["naks"]))
    bad = bad or (xml is not None and (xml["errors"] or xml["naks"] or not xml["messages"]))
    return 1 if bad or not sw["messages"] else 0


def _postgres(args: argparse.Namespace, work: Path) -> int:
    """``--store postgresql``: the SQLite node, one PostgreSQL node and two cluster nodes."""
    sys.path.insert(0, str(HERE))
    import bench_postgres

    try:
        r = bench_postgres.compare(args, work, measure, Target, switch_argv(args))
    finally:
        if os.environ.get("BENCH_KEEP"):
            shutil.copytree(work, os.environ["BENCH_KEEP"], dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("*data*"))
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(r) if args.json else bench_postgres.report(r))
    bad = any(x["errors"] or x["naks"] or not x["messages"]
              for x in (r["sqlite"], r["postgresql"], r["postgresql_2"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
