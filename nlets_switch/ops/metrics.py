"""Prometheus metrics, read from the switch's plain counters at scrape time.

The hot path only bumps integers in :class:`nlets_switch.core.ledger.Stats` and
the journal; a custom collector turns them into metric families when
Prometheus scrapes. The one metric fed per event is the delivery latency
histogram (an observer: a bisect and an add, no I/O). Each switch gets its
own registry so that several switches in one process (tests) never collide.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from nlets_switch.core.events import Delivered, SwitchEvent

if TYPE_CHECKING:
    from nlets_switch.ops.cluster_view import ClusterView
    from nlets_switch.ops.monitor import Monitor
    from nlets_switch.server.switch import Switch

#: Content type of the text exposition format.
CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                           2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class SwitchCollector(Collector):
    """Metric families built from ``switch.stats``, the links, the journal and the fan-out."""

    def __init__(self, switch: Switch, monitor: Monitor) -> None:
        self.switch = switch
        self.monitor = monitor
        #: Deliveries owed per destination, set by :meth:`Metrics.render` before a scrape.
        self.held: Mapping[str, int] = {}
        #: The node registry and the database's state (a PostgreSQL store), else None.
        self.cluster: ClusterView | None = None

    def collect(self) -> Iterable[Metric]:
        """Called by the registry at scrape time (on the event loop)."""
        from nlets_switch.ops.monitor import link_states

        sw = self.switch
        st = sw.stats
        m = CounterMetricFamily("nlets_messages", "Input messages by key and outcome",
                                labels=["key", "outcome"])
        for (key, outcome), n in sorted(st.messages.items()):
            m.add_metric([key, outcome], n)
        yield m
        yield CounterMetricFamily("nlets_deliveries", "Deliveries acknowledged by receivers",
                                  value=st.delivered)
        yield CounterMetricFamily("nlets_link_naks", "N answers the switch sent on links",
                                  value=st.naks)
        yield CounterMetricFamily("nlets_switch_er", "ER messages the switch made",
                                  value=self.monitor.er)
        yield CounterMetricFamily("nlets_switch_sm", "SM messages the switch made",
                                  value=self.monitor.sm)
        links = link_states(sw)
        up = GaugeMetricFamily("nlets_link_online", "1 when the ORI is signed on",
                               labels=["ori"])
        for ori, v in links.items():
            up.add_metric([ori], 1 if v["state"] == "online" else 0)
        yield up
        yield GaugeMetricFamily("nlets_links_online", "Links signed on",
                                value=sum(1 for v in links.values() if v["state"] == "online"))
        held = GaugeMetricFamily("nlets_held_messages",
                                 "Deliveries owed (queued, held or sent, not acknowledged) "
                                 "per destination", labels=["destination"])
        for dest, n in sorted(self.held.items()):
            held.add_metric([dest], n)
        yield held
        j = sw.journal
        yield SummaryMetricFamily("nlets_journal_commit_seconds",
                                  "Journal group commits (one transaction and fsync each)",
                                  count_value=j.batches, sum_value=j.commit_seconds)
        yield GaugeMetricFamily("nlets_journal_last_commit_seconds",
                                "Duration of the latest journal commit",
                                value=j.last_commit_seconds)
        yield CounterMetricFamily("nlets_journal_operations", "Operations committed",
                                  value=j.ops)
        yield GaugeMetricFamily("nlets_journal_backlog", "Operations waiting for the writer",
                                value=j.backlog)
        eng = sw.engine
        jf = CounterMetricFamily("nlets_journal_failures",
                                 "Journal operations that failed, by operation",
                                 labels=["op"])
        for op, n in sorted(st.journal_failures.items()):
            jf.add_metric([op], n)
        yield jf
        fault = GaugeMetricFamily("nlets_journal_fault",
                                  "1 while a journal operation keeps failing (an alert)",
                                  labels=["op", "destination"])
        for key in sorted(eng.faults):
            op, _, dest = key.partition(":")
            fault.add_metric([op, dest], 1)
        yield fault
        yield GaugeMetricFamily("nlets_custody_stopped",
                                "1 while messages are answered N .05. (journal failing "
                                "or stopping)",
                                value=1 if eng.custody_stopped or not eng.accepting else 0)
        rate = sw.bounded_log.rate
        le = CounterMetricFamily("nlets_log_events",
                                 "Warnings and errors the switch had, logged or only counted",
                                 labels=["event"])
        for name, n in sorted(rate.totals.items()):
            le.add_metric([name], n)
        yield le
        ls = CounterMetricFamily("nlets_log_suppressed",
                                 "Repeats counted in a summary line instead of logged",
                                 labels=["event"])
        for name, n in sorted(rate.suppressed.items()):
            ls.add_metric([name], n)
        yield ls
        d = CounterMetricFamily("nlets_monitor_events_dropped",
                                "Monitoring events dropped because a subscriber was slow",
                                labels=["subscriber"])
        for name, n in sorted(self.monitor.dropped.items()):
            d.add_metric([name], n)
        yield d
        if self.cluster is not None:
            yield from _cluster_metrics(self.cluster)


def _cluster_metrics(view: ClusterView) -> Iterable[Metric]:
    """Every node of the cluster, and whether this node reaches its database."""
    yield GaugeMetricFamily("nlets_database_up",
                            "1 while this node reaches its PostgreSQL database, else 0",
                            value=1 if view.database_up else 0)
    alive = GaugeMetricFamily("nlets_cluster_node_alive",
                              "1 while the node holds its lock in the database (as last read)",
                              labels=["node"])
    links = GaugeMetricFamily("nlets_cluster_node_links",
                              "ORIs (links and services) the node holds (as last read)",
                              labels=["node"])
    for node, up, n in view.metric_rows():
        alive.add_metric([node], 1 if up else 0)
        links.add_metric([node], n)
    yield alive
    yield links


class LatencyHistogram(Collector):
    """The delivery latency histogram, fed on the event loop only.

    prometheus_client's ``Histogram`` takes a lock per observation (it may be
    fed from threads); this one is fed by the switch's observer alone, on the
    loop, as is the scrape: a bisect and two adds (issue 9: the lock was 2 %
    of the loop's time).
    """

    def __init__(self, name: str, documentation: str, buckets: tuple[float, ...]) -> None:
        self.name = name
        self.documentation = documentation
        self.buckets = buckets
        #: Observations per bucket (not cumulative), the last one +Inf.
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Count one observation (seconds)."""
        self.counts[bisect_left(self.buckets, value)] += 1
        self.sum += value

    def collect(self) -> Iterable[Metric]:
        """The histogram family, buckets cumulative as the exposition wants them."""
        total = 0
        buckets: list[tuple[str, float]] = []
        for le, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            total += n
            buckets.append((floatToGoString(le), total))  # type: ignore[no-untyped-call]
        yield HistogramMetricFamily(self.name, self.documentation, buckets=buckets,
                                    sum_value=self.sum)


class Metrics:
    """The registry of one switch: the collector and the latency histogram."""

    def __init__(self, switch: Switch, monitor: Monitor) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.collector = SwitchCollector(switch, monitor)
        self.registry.register(self.collector)
        self.latency = LatencyHistogram(
            "nlets_delivery_latency_seconds",
            "From the switch taking custody of a message to the receiver's acknowledgement",
            _LATENCY_BUCKETS)
        self.registry.register(self.latency)

    def observe(self, event: SwitchEvent) -> None:
        """Switch observer: feed the latency histogram from ``delivered`` events."""
        if isinstance(event, Delivered):
            self.latency.observe(event.latency_s)

    def render(self, held: Mapping[str, int]) -> bytes:
        """The text exposition, with ``held`` as the per-destination queue sizes."""
        self.collector.held = held
        return generate_latest(self.registry)
