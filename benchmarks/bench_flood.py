"""Benchmark: does a flood from one ORI slow another ORI's traffic?

The switch runs as its own process (``python -m nlets_switch serve``, the
demo world, default limits: ``rate_per_ori`` 200/s, ``rate_burst`` 400). A
*victim* process signs on ``NYNLETS00`` and ``AZ0070500`` and measures the
round trip of one ``AM`` at a time from NY to AZ0070500 (sent -> delivered).
A *flooder* process signs on ``AZNLETS20`` and sends ``AM``s as fast as the
switch takes them (``--inflight`` outstanding), most of which the rate limit
answers with ``N .04.``.

Phases: baseline, flood, baseline again. The two baselines give the noise
of the measurement; the issue's claim is that the flood's median is within
it ("a flood from one ORI does not slow another ORI's traffic by more than
the benchmark's noise").

Run ``python benchmarks/bench_flood.py`` (``--json`` for one object).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nlets_switch.tools.client import Client


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_up(port: int) -> None:
    for _ in range(200):
        try:
            c = await Client.connect("127.0.0.1", port, "AZ0070500")
        except OSError:
            await asyncio.sleep(0.05)
            continue
        await c.close()
        return
    raise SystemExit("the switch did not start")


# -- the flooder (its own process, so it does not share the victim's CPU) ------


async def _flood(port: int, inflight: int, stop_at: float, out: Any) -> None:
    c = await Client.connect("127.0.0.1", port, "AZNLETS20")
    sent = ok = limited = 0
    pending: set[asyncio.Future[Any]] = set()
    t0 = time.monotonic()
    while time.monotonic() < stop_at:
        while len(pending) < inflight:
            pending.add(c.send_nowait(f"AM.AZNLETS20.AZNLETS20.TXT FLOOD {sent}"))
            sent += 1
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for f in done:
            if f.result().ok:
                ok += 1
            else:
                limited += 1
    elapsed = time.monotonic() - t0
    if pending:  # asyncio.wait refuses an empty set
        await asyncio.wait(pending, timeout=10)
    for f in pending:
        if f.done():
            f.exception()
    await c.close(sign_off=False)
    out.put({"sent_per_s": sent / elapsed, "accepted_per_s": ok / elapsed,
             "rate_limited_per_s": limited / elapsed})


def _flooder(port: int, inflight: int, seconds: float, out: Any) -> None:
    asyncio.run(_flood(port, inflight, time.monotonic() + seconds, out))


# -- the victim --------------------------------------------------------------


async def _round_trips(ny: Client, ag: Client, n: int) -> list[float]:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        ans = await ny.send(f"AM.NYNLETS00.AZ0070500.TXT PROBE {i}")
        assert ans.ok, ans
        await ag.receive(10)
        times.append(time.perf_counter() - t0)
    return times


def _summary(times: list[float]) -> dict[str, float]:
    qs = statistics.quantiles(times, n=20)
    return {"median_ms": statistics.median(times) * 1e3, "p95_ms": qs[18] * 1e3,
            "n": len(times)}


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bench-flood-") as tmp:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nlets_switch", "serve", "--listen", f"127.0.0.1:{port}",
            "--data-dir", os.path.join(tmp, "data"), "--http", "off",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            await _wait_up(port)
            ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
            ag = await Client.connect("127.0.0.1", port, "AZ0070500")
            await _round_trips(ny, ag, 50)  # warm up
            base1 = await _round_trips(ny, ag, args.probes)
            q: Any = mp.get_context("spawn").Queue()
            flood_s = max(3.0, args.probes * 0.02 + 2)
            fp = mp.get_context("spawn").Process(
                target=_flooder, args=(port, args.inflight, flood_s, q))
            fp.start()
            await asyncio.sleep(1.0)  # let the flood reach its steady state
            flooded = await _round_trips(ny, ag, args.probes)
            flood_stats = await asyncio.to_thread(q.get, True, flood_s + 30)
            await asyncio.to_thread(fp.join, 30)
            await asyncio.sleep(0.5)
            base2 = await _round_trips(ny, ag, args.probes)
            await ny.close()
            await ag.close()
        finally:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
    b1, fl, b2 = _summary(base1), _summary(flooded), _summary(base2)
    noise = abs(b1["median_ms"] - b2["median_ms"])
    base_med = (b1["median_ms"] + b2["median_ms"]) / 2
    return {
        "cpus": os.cpu_count(), "probes": args.probes, "flood_inflight": args.inflight,
        "baseline_1": b1, "flood": fl, "baseline_2": b2, "flood_stats": flood_stats,
        "median_difference_ms": fl["median_ms"] - base_med,
        "noise_ms": noise,
        "within_noise": fl["median_ms"] - base_med <= max(noise, 0.1 * base_med),
    }


def main() -> None:
    """Parse arguments, run the three phases, print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probes", type=int, default=300, help="round trips per phase")
    ap.add_argument("--inflight", type=int, default=64, help="flooder's messages outstanding")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    r = asyncio.run(_run(args))
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(f"another ORI's round trip (NYNLETS00 -> AZ0070500), {args.probes} probes per phase, "
          f"{r['cpus']} CPUs")
    for name in ("baseline_1", "flood", "baseline_2"):
        s = r[name]
        print(f"  {name:<11} median {s['median_ms']:7.3f} ms   p95 {s['p95_ms']:7.3f} ms")
    fs = r["flood_stats"]
    print(f"  flood from AZNLETS20: {fs['sent_per_s']:.0f} msg/s sent, "
          f"{fs['accepted_per_s']:.0f}/s accepted, {fs['rate_limited_per_s']:.0f}/s N .04.")
    print(f"  difference of medians (flood - baseline): {r['median_difference_ms']:+.3f} ms; "
          f"noise (baseline 1 vs 2): {r['noise_ms']:.3f} ms; "
          f"{'within' if r['within_noise'] else 'OUTSIDE'} the noise (or 10% of the baseline)")


if __name__ == "__main__":
    main()
