"""Smoke test of benchmarks/bench_switch.py: it runs, stops by itself, reports figures.

Not a timed test: the figures of a tiny run mean nothing; what matters is
that the benchmark starts the switch and the relay as processes, drives
real traffic through both, and prints the JSON object the issue asks for.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks" / "bench_switch.py"


def test_bench_json_has_positive_figures() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--json", "--messages", "200", "--warmup", "0.2",
         "--links", "4", "--inflight", "4", "--max-seconds", "30"],
        capture_output=True, text=True, timeout=90, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    for key in ("msgs_per_s", "p50_ms", "p99_ms", "peak_rss_mb", "relay_msgs_per_s",
                "relay_p50_ms", "relay_p99_ms", "ratio"):
        assert isinstance(result[key], int | float), key
        assert result[key] > 0, key
    assert result["p99_ms"] >= result["p50_ms"]
    assert result["machine"]["cores"] >= 1
    assert result["machine"]["python"].startswith("3.")
    # Every inquiry was answered and nothing was refused, through both servers.
    for side in ("switch", "relay"):
        assert result[side]["messages"] >= 200
        assert result[side]["errors"] == 0
        assert result[side]["naks"] == 0
        assert result[side]["unanswered"] == 0
    # The switch journaled every message it routed (custody before A).
    assert result["switch"]["journal_messages"] >= result["switch"]["messages"]


def test_bench_open_loop_sends_on_schedule_and_reports_the_tail() -> None:
    out = subprocess.run(
        [sys.executable, str(BENCH), "--json", "--rate", "200", "--seconds", "1",
         "--warmup", "0.2", "--links", "4"],
        capture_output=True, text=True, timeout=90, cwd=ROOT, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout)
    assert result["rate"] == 200
    for side in ("switch", "relay"):
        r = result[side]
        # 200 DQ/s for 1 s: about 200 sent in the window, every one answered.
        assert 150 <= r["sent"] <= 250, r["sent"]
        assert r["answered"] == r["sent"]
        assert r["unanswered"] == 0 and r["errors"] == 0 and r["naks"] == 0
        assert 0 < r["p50_ms"] <= r["p99_ms"] <= r["p999_ms"]
    # The journal's writer is a process of its own, and its share is reported.
    assert result["switch"]["writer_cpu_s_per_10k"] is not None
    assert result["switch"]["writer_peak_rss_mb"] > 0
    assert result["relay"]["writer_peak_rss_mb"] is None
