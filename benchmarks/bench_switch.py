"""Benchmark of nlets-switch: messages routed per second, latency, peak memory.

The switch runs as its own process (``python -m nlets_switch serve`` with
``benchmarks/bench.yaml``, journal durable as in production: SQLite WAL,
``synchronous=FULL``, group commit). A driver, in separate process(es),
signs on ``--links`` control terminals: half are *inquirers*, half are
*answerers*. Each inquirer keeps ``--inflight`` ``DQ`` inquiries outstanding,
addressed to the answerers' states in turn, each with its own control field;
each answerer answers every ``DQ`` it is delivered with a ``DR`` to the
inquirer, repeating the control field. Latency is the inquirer's round trip,
``DQ`` sent to ``DR`` received (through the switch twice, two journal
commits). "Messages routed" counts ``DQ`` and ``DR`` delivered.

The same driver then pushes the same traffic through ``benchmarks/relay.py``
(same framing, no journal, no validation) and the ratio of the two rates is
printed: how much of a bare relay's speed the switch keeps.

Run ``python benchmarks/bench_switch.py`` (table) or ``--json`` (one object).
Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
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
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, cast

import psutil
import yaml

from nlets_switch.errors import FrameError
from nlets_switch.wire import frames as fr

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "bench.yaml"
RELAY = HERE / "relay.py"

#: Text of every inquiry: the smallest valid DQ (FIELDS.md: OLN alone).
DQ_TEXT = "OLN/D11111111"
#: Text of every answer: free text, about a short real DR's size.
DR_TEXT = ("NAM/SMITH,JOHN.DOB/19500101.SEX/M.OLN/D11111111.\n"
           "LICENSE STATUS: VALID. CLASS: D. EXPIRES: 20300101")

_C_M = fr.MESSAGE
_C_A = fr.ACK
_C_N = fr.NAK
_C_H = fr.HEARTBEAT


def _runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------
# The driver (runs in child processes).
# --------------------------------------------------------------------------


@dataclass
class Plan:
    """What one driver process does."""

    host: str
    port: int
    inquirers: list[str]
    answer_states: list[str]
    answerers: list[str]
    inflight: int
    warmup: float
    seconds: float
    messages: int  # 0: run for ``seconds``; else stop once this many are counted
    max_seconds: float


@dataclass
class Run:
    """Counters of one driver process, shared by its links."""

    plan: Plan
    measuring: bool = False
    sending: bool = True
    count: int = 0
    t_start: float = 0.0
    t_end: float = 0.0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    naks: int = 0
    nak_reasons: list[str] = field(default_factory=list)
    outstanding: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def routed(self, now: float) -> None:
        """One message delivered to a driver link."""
        if self.measuring:
            self.count += 1
            if self.plan.messages and self.count >= self.plan.messages:
                self.stop(now)

    def stop(self, now: float) -> None:
        """End of the measured window: stop counting and sending."""
        if self.measuring:
            self.measuring = False
            self.t_end = now
        self.sending = False
        self.done.set()


def _sender_and_control(body: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Key, sender and control of a delivered message, from either header form.

    The switch delivers the output header of PROTOCOL part 3; the bare relay
    forwards the input header of part 2 unchanged.
    """
    first, _, rest = body.partition(b"\n")
    if first.endswith(b".TXT"):
        parts = first.split(b".")
        ctl = parts[3][1:] if len(parts) > 4 and parts[3][:1] == b"*" else None
        return parts[0], parts[1], ctl
    key, _, sender = first.partition(b".")
    lines = rest.split(b"\n", 3)
    ctl = lines[2][1:] if len(lines) > 2 and lines[2][:1] == b"*" else None
    return key, sender, ctl


class DriverLink(asyncio.Protocol):
    """One control terminal of the driver: an inquirer or an answerer."""

    def __init__(self, run: Run, ori: str, inquirer: bool, states: list[str]) -> None:
        self.run = run
        self.ori = ori
        self.ori_b = ori.encode()
        self.inquirer = inquirer
        self.states = [s.encode() for s in states]
        self.next_state = 0
        self.buf = fr.FrameBuffer()
        self.seq = 0
        self.ctl = 0
        self.sent: dict[bytes, float] = {}
        self.signed_on: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.Event()
        self.out: list[bytes] = []

    # -- frames -------------------------------------------------------------

    def _frame(self, ftype: int, body: bytes) -> None:
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.out.append(fr.encode_frame(ftype, self.seq, body))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Sign on."""
        # uvloop's transports do not subclass asyncio.Transport; same interface.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._frame(fr.SIGN_ON, self.ori_b)
        self._flush()

    def connection_lost(self, exc: Exception | None) -> None:
        """The link ended."""
        self.lost.set()
        if not self.signed_on.done():
            self.signed_on.set_exception(ConnectionError("closed during sign-on"))

    def _flush(self) -> None:
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(self.out)
        self.out = []

    def send_inquiry(self, now: float) -> None:
        """One DQ to the next answerer's state, with a fresh control field."""
        self.ctl += 1
        ctl = b"%d" % self.ctl
        st = self.states[self.next_state]
        self.next_state = (self.next_state + 1) % len(self.states)
        self.sent[ctl] = now
        self.run.outstanding += 1
        self._frame(_C_M, b"DQ.%s.%s.*%s.TXT\n%s" % (self.ori_b, st, ctl, DQ_TEXT.encode()))

    def start(self) -> None:
        """Fill the in-flight budget (inquirers)."""
        if self.inquirer:
            now = time.monotonic()
            for _ in range(self.run.plan.inflight):
                self.send_inquiry(now)
            self._flush()

    def data_received(self, data: bytes) -> None:
        """Frames in: acknowledge deliveries, answer or measure them."""
        run = self.run
        try:
            frames = self.buf.feed(data)
        except FrameError:
            run.errors += 1
            if self.transport is not None:
                self.transport.close()
            return
        now = time.monotonic()
        for f in frames:
            t = f.type
            if t == _C_M:
                # Acknowledge first: the switch's window frees as soon as possible.
                self.out.append(fr.encode_frame(_C_A, f.seq))
                key, sender, ctl = _sender_and_control(f.body)
                if key == b"DQ" and ctl is not None:
                    run.routed(now)
                    self._frame(_C_M, b"DR.%s.%s.*%s.TXT\n%s" % (
                        self.ori_b, sender, ctl, DR_TEXT.encode()))
                elif key == b"DR" and ctl is not None:
                    t0 = self.sent.pop(ctl, None)
                    if t0 is None:
                        continue  # a duplicate after a reconnect: not counted twice
                    run.outstanding -= 1
                    if run.measuring:
                        run.latencies.append(now - t0)
                    run.routed(now)
                    if run.sending:
                        self.send_inquiry(now)
                    elif run.outstanding <= 0:
                        run.drained.set()
                else:
                    run.errors += 1  # ER or SM from the switch: the traffic is wrong
            elif t == _C_A:
                if not self.signed_on.done():
                    self.signed_on.set_result(True)
            elif t == _C_N:
                run.naks += 1
                if len(run.nak_reasons) < 5:
                    run.nak_reasons.append(f.body.decode("ascii", "replace"))
                if not self.signed_on.done():
                    self.signed_on.set_exception(ConnectionError(f.body.decode("ascii", "replace")))
            elif t == _C_H:
                self.out.append(fr.encode_frame(_C_H, f.seq))
        self._flush()

    def sign_off(self) -> None:
        """``D`` and close."""
        if self.transport is not None and not self.transport.is_closing():
            self._frame(fr.SIGN_OFF, b"")
            self._flush()


async def _drive(plan: Plan, conn: Connection) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    run = Run(plan)
    links: list[DriverLink] = []
    for ori in plan.answerers:
        links.append(DriverLink(run, ori, False, []))
    for ori in plan.inquirers:
        links.append(DriverLink(run, ori, True, plan.answer_states))
    for link in links:
        await loop.create_connection(lambda link=link: link, plan.host, plan.port)  # type: ignore[misc]
    await asyncio.wait_for(asyncio.gather(*(link.signed_on for link in links)), 30)
    conn.send(("ready",))
    # Every driver process has signed on all its links before anyone sends:
    # a DQ to a state whose terminal is not yet on would be dropped (SM .03).
    _go, t_go = await asyncio.to_thread(conn.recv)
    await asyncio.sleep(max(0.0, t_go - time.monotonic()))
    cpu0 = time.process_time()
    for link in links:
        link.start()
    await asyncio.sleep(plan.warmup)
    run.measuring = True
    run.t_start = time.monotonic()
    cpu1 = time.process_time()
    limit = plan.max_seconds if plan.messages else plan.seconds
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.done.wait(), limit)
    run.stop(time.monotonic())
    cpu2 = time.process_time()
    if run.outstanding > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.drained.wait(), 10)
    for link in links:
        link.sign_off()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(link.lost.wait() for link in links)), 5)
    for link in links:
        if link.transport is not None:
            link.transport.close()
    return {
        "count": run.count, "t_start": run.t_start, "t_end": run.t_end,
        "latencies": run.latencies.tobytes(), "errors": run.errors, "naks": run.naks,
        "nak_reasons": run.nak_reasons,
        "lost": run.outstanding, "cpu_s": cpu2 - cpu1, "cpu_warm_s": cpu1 - cpu0,
    }


def _driver_main(plan: Plan, conn: Connection) -> None:
    try:
        result = _runner()(_drive(plan, conn))
        conn.send(("result", result))
    except BaseException as e:  # reported to the parent, which fails the run
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()


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


def bench_oris(n_links: int) -> list[str]:
    """The first ``n_links`` control terminals of bench.yaml."""
    raw = yaml.safe_load(CONFIG.read_text())
    oris = [e["ori"] for e in raw["links"] if e.get("role") == "control_terminal"]
    if n_links > len(oris):
        raise SystemExit(f"--links {n_links}: bench.yaml has only {len(oris)} control terminals")
    return oris[:n_links]


def measure(target: Target, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Start one server, drive it, sample it, stop it; the figures of that run."""
    port = free_port()
    log = work / f"{target.name}.log"
    data = work / f"{target.name}-data"
    with log.open("wb") as logf:
        proc = subprocess.Popen(target.argv(port, data), stdout=logf, stderr=subprocess.STDOUT,
                                cwd=HERE.parent)
    try:
        wait_port(proc, port, log)
        ps = psutil.Process(proc.pid)
        oris = bench_oris(args.links)
        n_inq = max(1, len(oris) // 2)
        inquirers, answerers = oris[:n_inq], oris[n_inq:]
        if not answerers:
            raise SystemExit("--links must be at least 2")
        states = [o[:2] for o in answerers]
        procs = max(1, min(args.driver_procs, len(inquirers), len(answerers)))
        inq_parts, ans_parts = split(inquirers, procs), split(answerers, procs)
        msgs_each = (args.messages + procs - 1) // procs if args.messages else 0
        # fork: the driver starts at once and needs nothing re-imported.
        ctx: Any = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
        pipes: list[Connection] = []
        children = []
        for i in range(procs):
            plan = Plan("127.0.0.1", port, inq_parts[i], states, ans_parts[i], args.inflight,
                        args.warmup, args.seconds, msgs_each, args.max_seconds)
            parent_end, child_end = ctx.Pipe()
            p = ctx.Process(target=_driver_main, args=(plan, child_end), daemon=True)
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
        peak_sample = 0.0
        cpu_a = cpu_b = None
        t_measure = t_go + args.warmup
        profiler: subprocess.Popen[bytes] | None = None
        results: dict[int, dict[str, Any]] = {}
        while len(results) < len(pipes):
            with contextlib.suppress(psutil.Error):
                peak_sample = max(peak_sample, ps.memory_info().rss / 2**20)
                if cpu_a is None and time.monotonic() >= t_measure:
                    cpu_a = (time.monotonic(), sum(ps.cpu_times()[:2]))
                    if args.profile and target.name == "switch":
                        profiler = start_profiler(args, proc.pid)
            for i, c in enumerate(pipes):
                if i not in results and c.poll(0.05):
                    kind, payload = c.recv()
                    if kind != "result":
                        raise RuntimeError(f"driver failed: {payload}")
                    results[i] = payload
                    if cpu_b is None:
                        with contextlib.suppress(psutil.Error):
                            cpu_b = (time.monotonic(), sum(ps.cpu_times()[:2]))
        for p in children:
            p.join(10)
        if profiler is not None:
            stop_profiler(profiler)
        hwm = vm_hwm_mb(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
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
    server_cpu = None
    if cpu_a is not None and cpu_b is not None and cpu_b[0] > cpu_a[0]:
        server_cpu = 100 * (cpu_b[1] - cpu_a[1]) / (cpu_b[0] - cpu_a[0])
    out: dict[str, Any] = {
        "msgs_per_s": count / elapsed,
        "messages": count,
        "seconds": elapsed,
        "p50_ms": quantile(lat, 0.50) * 1000,
        "p99_ms": quantile(lat, 0.99) * 1000,
        "round_trips": len(lat),
        "peak_rss_mb": max(hwm or 0.0, peak_sample),
        "server_cpu_percent": server_cpu,
        "driver_cpu_percent": 100 * sum(r["cpu_s"] for r in res) / elapsed,
        "errors": sum(r["errors"] for r in res),
        "naks": sum(r["naks"] for r in res),
        "unanswered": sum(r["lost"] for r in res),
        "nak_reasons": sorted({x for r in res for x in r["nak_reasons"]}),
        "driver_procs": procs,
        "inquirers": len(inquirers),
        "answerers": len(answerers),
    }
    if out["errors"] or out["naks"] or out["unanswered"]:
        out["server_log_tail"] = log.read_text(errors="replace")[-2000:]
    journal = data / "journal.sqlite"
    if journal.exists():
        with contextlib.closing(sqlite3.connect(f"file:{journal}?mode=ro", uri=True)) as db:
            out["journal_messages"] = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    return out


def start_profiler(args: argparse.Namespace, pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy on the switch for the measured window (``--profile``), when installed."""
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(exe).exists():
        print("--profile: py-spy is not installed (pip install py-spy)", file=sys.stderr)
        return None
    fmt = "raw" if str(args.profile).endswith((".txt", ".folded")) else "flamegraph"
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--output", str(args.profile), "--format", fmt,
         "--rate", "200", "--threads", "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_profiler(p: subprocess.Popen[bytes]) -> None:
    """Stop py-spy; it writes its output on SIGINT."""
    p.send_signal(signal.SIGINT)
    try:
        p.wait(30)
    except subprocess.TimeoutExpired:
        p.kill()


def switch_argv(args: argparse.Namespace) -> Callable[[int, Path], list[str]]:
    """The command line of the switch under test."""
    return lambda port, data: [
        sys.executable, "-m", "nlets_switch", "serve", "--config", str(args.config),
        "--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--log-level", "warning",
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


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line."""
    ap = argparse.ArgumentParser(
        description="Benchmark the switch (own process, durable journal) against a bare "
        "relay with the same traffic.")
    ap.add_argument("--links", type=int, default=20,
                    help="control terminals signed on: half inquire, half answer (default 20)")
    ap.add_argument("--inflight", type=int, default=16,
                    help="DQ outstanding per inquirer link (default 16)")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="measured time per server (default 10)")
    ap.add_argument("--messages", type=int, default=0,
                    help="measure until this many messages were routed, instead of --seconds")
    ap.add_argument("--max-seconds", type=float, default=120.0,
                    help="give up a --messages run after this long (default 120)")
    ap.add_argument("--warmup", type=float, default=2.0,
                    help="seconds of traffic before measuring (default 2)")
    ap.add_argument("--driver-procs", type=int, default=1,
                    help="driver processes (default 1; the machine may have few cores)")
    ap.add_argument("--config", type=Path, default=CONFIG, help="switch configuration")
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="where the switch's journal goes (default: a temporary directory)")
    ap.add_argument("--skip-relay", action="store_true", help="measure the switch only")
    ap.add_argument("--profile", type=Path, default=None,
                    help="py-spy the switch during the measured window into this file "
                    "(.svg flame graph, or .txt collapsed stacks)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite",
                    help="postgresql: start a throwaway PostgreSQL and measure the SQLite "
                    "node and one PostgreSQL node in one run (benchmarks/bench_postgres.py)")
    return ap.parse_args(argv)


def report(r: dict[str, Any]) -> str:
    """The readable table."""
    s, rl = r["switch"], r.get("relay")

    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    rows = [
        ("messages routed per s", f(s["msgs_per_s"], ",.0f"),
         f(rl and rl["msgs_per_s"], ",.0f")),
        ("latency p50 (ms, DQ->DR)", f(s["p50_ms"], ".2f"), f(rl and rl["p50_ms"], ".2f")),
        ("latency p99 (ms, DQ->DR)", f(s["p99_ms"], ".2f"), f(rl and rl["p99_ms"], ".2f")),
        ("peak RSS (MiB)", f(s["peak_rss_mb"], ".1f"), f(rl and rl["peak_rss_mb"], ".1f")),
        ("server CPU (%)", f(s["server_cpu_percent"], ".0f"),
         f(rl and rl["server_cpu_percent"], ".0f")),
        ("driver CPU (%)", f(s["driver_cpu_percent"], ".0f"),
         f(rl and rl["driver_cpu_percent"], ".0f")),
        ("messages measured", f(s["messages"], ","), f(rl and rl["messages"], ",")),
        ("errors / naks / unanswered",
         f"{s['errors']}/{s['naks']}/{s['unanswered']}",
         f"{rl['errors']}/{rl['naks']}/{rl['unanswered']}" if rl else "-"),
    ]
    m = r["machine"]
    lines = [
        f"nlets-switch benchmark: {s['inquirers']} inquirer + {s['answerers']} answerer links, "
        f"{r['inflight']} DQ in flight per inquirer, {s['seconds']:.1f} s measured "
        f"after {r['warmup']:g} s warm-up",
        f"journal: SQLite WAL synchronous=FULL, group commit, on {r['journal_fs']}; "
        f"{s.get('journal_messages', '?')} messages journaled",
        "",
        f"{'':28}{'switch':>14}{'bare relay':>14}",
    ]
    lines += [f"{a:28}{b:>14}{c:>14}" for a, b, c in rows]
    lines += [
        "",
        f"ratio switch/relay: {f(r['ratio'], '.2f')}",
        f"machine: {m['cores']} cores, Python {m['python']}, {m['platform']}, "
        f"uvloop {'yes' if m['uvloop'] else 'no'}; {m['note']}",
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
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ratio = sw["msgs_per_s"] / rl["msgs_per_s"] if rl and rl["msgs_per_s"] else None
    result: dict[str, Any] = {
        "msgs_per_s": round(sw["msgs_per_s"], 1),
        "p50_ms": round(sw["p50_ms"], 3),
        "p99_ms": round(sw["p99_ms"], 3),
        "peak_rss_mb": round(sw["peak_rss_mb"], 1),
        "relay_msgs_per_s": round(rl["msgs_per_s"], 1) if rl else None,
        "relay_p50_ms": round(rl["p50_ms"], 3) if rl else None,
        "relay_p99_ms": round(rl["p99_ms"], 3) if rl else None,
        "relay_peak_rss_mb": round(rl["peak_rss_mb"], 1) if rl else None,
        "ratio": round(ratio, 4) if ratio is not None else None,
        "links": args.links,
        "inflight": args.inflight,
        "warmup": args.warmup,
        "journal_fs": fs_type(args.data_dir.resolve() if args.data_dir else work),
        "switch": sw,
        "relay": rl,
        "machine": machine(),
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(report(result))
    bad = sw["errors"] or sw["naks"] or (rl is not None and (rl["errors"] or rl["naks"]))
    return 1 if bad or not sw["messages"] else 0


def _postgres(args: argparse.Namespace, work: Path) -> int:
    """``--store postgresql``: the SQLite node and one PostgreSQL node, one table."""
    sys.path.insert(0, str(HERE))
    import bench_postgres

    try:
        r = bench_postgres.compare(args, work, measure, Target, switch_argv(args))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(r) if args.json else bench_postgres.report(r))
    bad = any(x["errors"] or x["naks"] or not x["messages"]
              for x in (r["sqlite"], r["postgresql"]))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
