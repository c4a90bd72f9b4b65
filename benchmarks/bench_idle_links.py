"""Round trips between two active links, with 2 and then 10,000 idle links signed on.

Issue 15: with 10,000 idle links signed on, round trips between two others
showed spikes of 310-362 ms (22 ms at most with 2 links): the timers walked
every link. The engine keeps one deadline heap now; this benchmark checks
the goal: p99 with 10,000 idle links within 2x of the 2-link figure, and no
round trip over 50 ms.

    .venv/bin/python benchmarks/bench_idle_links.py               # ~1 min
    .venv/bin/python benchmarks/bench_idle_links.py --idle 2000 --seconds 5 --json

It starts the switch as its own process (``serve`` with a generated
configuration: two control terminals and ``--idle`` agencies, loopback, no
credential), then, in this process, two active links playing ping-pong: AZ
sends an ``AM`` to NY, NY acknowledges it and sends one back, AZ takes the
time from its send to the reply's arrival (two custody commits and two
deliveries). It measures for ``--seconds`` with 2 idle links signed on, then
signs on the rest from a second process (which answers the switch's
heartbeats and nothing else) and measures again. Everything runs on
127.0.0.1 and stops by itself (``--timeout`` bounds the whole run).
RLIMIT_NOFILE is raised to the hard limit for the switch and both drivers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from nlets_switch.wire import frames as fr

AZ, NY = "AZBENCH00", "NYBENCH00"


def raise_nofile(want: int) -> int:
    """Raise this process's open-file limit towards ``want`` (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(max(soft, want), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def idle_ori(i: int) -> str:
    return f"AZI{i:06d}"


def write_config(path: Path, idle: int) -> None:
    lines = ["switch:\n  id: bench-idle\n  timezone: UTC\n",
             "limits:\n  rate_per_ori: 1000000\n  rate_burst: 10000000\n",
             f"  max_connections: {idle + 100}\n  max_connections_per_peer: {idle + 100}\n",
             # Every link comes from this one address, 200 at a time: the pool for
             # connections not yet signed on (16 per peer by default) must hold them.
             "  max_unauthenticated: 1000\n  max_unauthenticated_per_peer: 1000\n",
             "services:\n  leis:\n    enabled: false\n",
             "links:\n",
             f"  - {{ori: {AZ}, state: AZ, role: control_terminal}}\n",
             f"  - {{ori: {NY}, state: NY, role: control_terminal}}\n"]
    lines += [f"  - {{ori: {idle_ori(i)}}}\n" for i in range(idle)]
    path.write_text("".join(lines))


def _runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    try:
        import uvloop

        return uvloop.run  # type: ignore[no-any-return]
    except ImportError:
        return asyncio.run


# -- a link: sign on, answer heartbeats, hand M frames to a callback -------------


class Link(asyncio.Protocol):
    """One endpoint link over a raw transport (no tools.client: nothing in the way)."""

    def __init__(self, ori: str, on_message: Callable[[Link, int, bytes], None] | None = None
                 ) -> None:
        self.ori = ori
        self.on_message = on_message
        self.buf = fr.FrameBuffer()
        self.transport: asyncio.Transport | None = None
        self.signed_on = asyncio.get_running_loop().create_future()
        self.seq = 1
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.transport.write(fr.encode_frame(fr.SIGN_ON, 1, self.ori.encode()))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.signed_on.done():
            self.signed_on.set_exception(ConnectionError(f"{self.ori}: closed"))

    def send(self, body: bytes) -> None:
        self.seq += 1
        assert self.transport is not None
        self.transport.write(fr.encode_frame(fr.MESSAGE, self.seq, body))

    def data_received(self, data: bytes) -> None:
        out: list[bytes] = []
        for f in self.buf.feed(data):
            if f.type == fr.ACK and f.seq == 1 and not self.signed_on.done():
                self.signed_on.set_result(None)
            elif f.type == fr.NAK and f.seq == 1 and not self.signed_on.done():
                self.signed_on.set_exception(ConnectionError(f"{self.ori}: {f.body!r}"))
            elif f.type == fr.HEARTBEAT:
                out.append(fr.encode_frame(fr.HEARTBEAT, f.seq))
            elif f.type == fr.MESSAGE:
                out.append(fr.encode_frame(fr.ACK, f.seq))
                if self.on_message is not None:
                    self.on_message(self, f.seq, f.body)
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def connect(port: int, ori: str,
                  on_message: Callable[[Link, int, bytes], None] | None = None) -> Link:
    loop = asyncio.get_running_loop()
    _, link = await loop.create_connection(lambda: Link(ori, on_message), "127.0.0.1", port)
    await asyncio.wait_for(link.signed_on, 30)
    return link


# -- the idle links, in a process of their own -----------------------------------


async def _hold_idle(port: int, oris: list[str], conn: Connection) -> None:
    links: list[Link] = []
    for start in range(0, len(oris), 200):  # a few hundred sign-ons at a time
        links += await asyncio.gather(*(connect(port, o) for o in oris[start:start + 200]))
    conn.send(("signed_on", len(links)))
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, conn.recv)  # until told to stop
    lost = sum(1 for link in links if link.lost)
    for link in links:
        if link.transport is not None:
            link.transport.close()
    conn.send(("lost", lost))


def _idle_main(port: int, oris: list[str], conn: Connection) -> None:
    raise_nofile(len(oris) + 100)
    _runner()(_hold_idle(port, oris, conn))


# -- the active pair ---------------------------------------------------------------


async def ping_pong(port: int, seconds: float) -> list[float]:
    """Round trips AZ -> NY -> AZ for ``seconds``; each in seconds."""
    loop = asyncio.get_running_loop()
    reply: asyncio.Future[None] | None = None

    def at_ny(link: Link, seq: int, body: bytes) -> None:
        link.send(f"AM.{NY}.AZ.TXT\nPONG".encode())

    def at_az(link: Link, seq: int, body: bytes) -> None:
        if reply is not None and not reply.done():
            reply.set_result(None)

    ny = await connect(port, NY, at_ny)
    az = await connect(port, AZ, at_az)
    out: list[float] = []
    end = loop.time() + seconds
    while loop.time() < end:
        reply = loop.create_future()
        t0 = time.perf_counter()
        az.send(f"AM.{AZ}.NY.TXT\nPING".encode())
        await asyncio.wait_for(reply, 10)
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(0.002)
    for link in (az, ny):
        assert link.transport is not None
        link.transport.write(fr.encode_frame(fr.SIGN_OFF, link.seq + 1))
        link.transport.close()
    return out


def figures(rtts: list[float]) -> dict[str, float]:
    s = sorted(rtts)

    def q(p: float) -> float:
        return round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 2)

    return {"count": len(s), "p50_ms": q(0.50), "p99_ms": q(0.99), "p999_ms": q(0.999),
            "max_ms": round(s[-1] * 1000, 2), "over_50ms": sum(1 for v in s if v > 0.050)}


def wait_port(proc: subprocess.Popen[bytes], port: int, timeout: float) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"the switch exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit("the switch did not start")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> dict[str, Any]:
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            "system": f"{platform.system()} {platform.release()}",
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    nofile = raise_nofile(args.idle + 200)
    if nofile < args.idle + 100:
        raise SystemExit(f"RLIMIT_NOFILE is {nofile}: too low for {args.idle} links")
    with tempfile.TemporaryDirectory(prefix="bench-idle-", dir=args.data_dir) as tmp:
        work = Path(tmp)
        write_config(work / "idle.yaml", args.idle)
        port = free_port()
        log = (work / "switch.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "nlets_switch", "serve", "--config", str(work / "idle.yaml"),
             "--listen", f"127.0.0.1:{port}", "--data-dir", str(work / "data"),
             "--http", "off", "--log-level", "warning", "--log-format", "json"],
            stdout=subprocess.DEVNULL, stderr=log)
        idle_proc: Any = None
        try:
            wait_port(proc, port, 60)
            result: dict[str, Any] = {"machine": machine(), "idle": args.idle,
                                      "seconds": args.seconds, "nofile": nofile,
                                      "data_dir": str(work)}
            # Phase 1: the two active links and 2 idle ones.
            parent, child = mp.Pipe()
            oris = [idle_ori(i) for i in range(args.idle)]
            idle_proc = mp.Process(target=_idle_main, args=(port, oris[:2], child), daemon=True)
            idle_proc.start()
            assert parent.poll(60) and parent.recv()[0] == "signed_on"
            result["two_idle"] = figures(_runner()(ping_pong(port, args.seconds)))
            parent.send("stop")
            parent.recv()
            idle_proc.join(10)
            # Phase 2: 10,000 idle links (the first two again, and the rest).
            parent, child = mp.Pipe()
            idle_proc = mp.Process(target=_idle_main, args=(port, oris, child), daemon=True)
            t0 = time.monotonic()
            idle_proc.start()
            if not parent.poll(args.timeout):
                raise SystemExit("the idle links did not sign on in time")
            _, n = parent.recv()
            result["sign_on_s"] = round(time.monotonic() - t0, 2)
            result["idle_signed_on"] = n
            result["many_idle"] = figures(_runner()(ping_pong(port, args.seconds)))
            parent.send("stop")
            result["idle_lost"] = parent.recv()[1] if parent.poll(30) else None
            idle_proc.join(10)
            two, many = result["two_idle"], result["many_idle"]
            result["p99_ratio"] = round(many["p99_ms"] / two["p99_ms"], 2)
            result["goal_met"] = (many["p99_ms"] <= 2 * two["p99_ms"]
                                  and many["max_ms"] <= 50.0)
            result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
            return result
        finally:
            if idle_proc is not None and idle_proc.is_alive():
                idle_proc.kill()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()


def report(r: dict[str, Any]) -> str:
    rows = [f"{'idle links':>10}  {'round trips':>11}  {'p50 ms':>7}  {'p99 ms':>7}  "
            f"{'p99.9 ms':>8}  {'max ms':>7}  {'>50 ms':>6}"]
    for name, n in (("two_idle", 2), ("many_idle", r["idle"])):
        f = r[name]
        rows.append(f"{n:>10}  {f['count']:>11}  {f['p50_ms']:>7}  {f['p99_ms']:>7}  "
                    f"{f['p999_ms']:>8}  {f['max_ms']:>7}  {f['over_50ms']:>6}")
    m = r["machine"]
    rows.append(f"p99 ratio {r['p99_ratio']} (goal <= 2), max {r['many_idle']['max_ms']} ms "
                f"(goal <= 50): {'met' if r['goal_met'] else 'NOT met'}; "
                f"{r['idle_signed_on']} idle links signed on in {r['sign_on_s']} s, "
                f"{r['idle_lost']} lost")
    rows.append(f"journal in {r['data_dir']}")
    rows.append(f"{m['cpus']} CPUs, {m['system']}, Python {m['python']}, load average "
                f"{m['load_average']} before, {r['load_average_after']} after")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--idle", type=int, default=10_000, help="idle links (default 10000)")
    p.add_argument("--seconds", type=float, default=15.0,
                   help="measuring time per phase (default 15)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="longest the idle links may take to sign on (default 300)")
    p.add_argument("--data-dir", default=None, metavar="DIR",
                   help="where the journal goes (default: the system's temporary directory); "
                   "/dev/shm takes the disk's fsync out of the figures")
    p.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    args = p.parse_args(argv)
    r = run(args)
    print(json.dumps(r) if args.json else report(r))
    return 0 if r["goal_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
