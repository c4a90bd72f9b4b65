"""The loop's own latency histogram reads exactly as prometheus_client's would."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from nlets_switch.ops.metrics import _LATENCY_BUCKETS, LatencyHistogram


def test_same_exposition_as_a_prometheus_histogram() -> None:
    theirs = CollectorRegistry()
    h1 = Histogram("nlets_delivery_latency_seconds", "doc", buckets=_LATENCY_BUCKETS,
                   registry=theirs)
    ours = CollectorRegistry()
    h2 = LatencyHistogram("nlets_delivery_latency_seconds", "doc", _LATENCY_BUCKETS)
    ours.register(h2)
    # On a bucket's bound, between bounds, below the first, past the last.
    for v in (0.0, 0.0005, 0.001, 0.0011, 0.05, 0.3, 2.5, 1000.0):
        h1.observe(v)
        h2.observe(v)
    want = [ln for ln in generate_latest(theirs).decode().splitlines() if "_created" not in ln]
    assert generate_latest(ours).decode().splitlines() == want
    assert 'nlets_delivery_latency_seconds_bucket{le="0.001"} 3.0' in want
