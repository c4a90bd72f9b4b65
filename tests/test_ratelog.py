"""Bounded logging: a repeated error is logged once, then counted, one summary per interval."""

from __future__ import annotations

from typing import Any

import pytest

from nlets_switch.ops.ratelog import OVERFLOW, BoundedLogger, RateLog, Summary


def test_first_occurrence_logged_then_repeats_counted_into_one_summary() -> None:
    r = RateLog(interval=1.0)
    assert r.hit("journal_write_failed", "NY", 100.0) == (True, None)
    for i in range(1, 14_000):
        assert r.hit("journal_write_failed", "NY", 100.0 + i / 14_000) == (False, None)
    full, summary = r.hit("journal_write_failed", "NY", 101.0)
    assert not full
    assert summary == Summary("journal_write_failed", "NY", 13_999, 1.0)
    assert r.totals["journal_write_failed"] == 14_001
    assert r.suppressed["journal_write_failed"] == 14_000


def test_at_most_one_summary_per_interval_under_a_steady_flood() -> None:
    r = RateLog(interval=1.0)
    summaries = []
    full_lines = 0
    for i in range(100_000):  # 10 s at 10,000 a second
        full, s = r.hit("journal_write_failed", None, i / 10_000)
        full_lines += full
        if s is not None:
            summaries.append(s)
    assert full_lines == 1
    assert len(summaries) == 9  # one a second, never more
    assert all(s.repeated == 10_000 for s in summaries[1:])
    last = r.flush(10.0)
    # Every occurrence is either the one full line or in exactly one summary.
    assert 1 + sum(s.repeated for s in summaries + last) == 100_000


def test_keys_are_counted_apart_and_events_apart() -> None:
    r = RateLog(interval=1.0)
    assert r.hit("e", "NY", 0.0)[0]
    assert r.hit("e", "AZ", 0.0)[0]
    assert r.hit("other", "NY", 0.0)[0]
    assert not r.hit("e", "NY", 0.5)[0]
    assert r.totals == {"e": 3, "other": 1}


def test_flush_reports_a_burst_that_ended_and_forgets_a_quiet_key() -> None:
    r = RateLog(interval=1.0)
    r.hit("e", "k", 0.0)
    r.hit("e", "k", 0.1)
    r.hit("e", "k", 0.2)
    assert r.next_deadline() == 1.0
    assert r.flush(0.9) == []
    assert r.flush(1.0) == [Summary("e", "k", 2, 1.0)]
    # Quiet for the next whole interval: forgotten, so the next one is news again.
    assert r.flush(2.0) == []
    assert r.next_deadline() is None
    assert r.hit("e", "k", 2.5) == (True, None)


def test_a_repeat_after_a_quiet_interval_is_logged_in_full() -> None:
    r = RateLog(interval=1.0)
    assert r.hit("e", "k", 0.0) == (True, None)
    assert r.hit("e", "k", 5.0) == (True, None)
    assert r.suppressed["e"] == 0


def test_keys_beyond_the_limit_share_one_window() -> None:
    r = RateLog(interval=1.0, max_keys=3)
    logged = [r.hit("e", f"k{i}", 0.0)[0] for i in range(100)]
    assert logged.count(True) == 4  # three keys, then one line for all the others
    s = r.flush(1.0)
    assert Summary("e", OVERFLOW, 96, 1.0) in s
    assert r.totals["e"] == 100


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLog(interval=0)


class FakeLogger:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def error(self, event: str, **kw: Any) -> None:
        self.lines.append(("error", event, kw))

    def warning(self, event: str, **kw: Any) -> None:
        self.lines.append(("warning", event, kw))


def test_bounded_logger_turns_a_flood_into_two_lines() -> None:
    now = [0.0]
    fake = FakeLogger()
    log = BoundedLogger(fake, interval=1.0, clock=lambda: now[0])
    for i in range(14_000):
        now[0] = i / 14_000
        log.error("journal_write_failed", error="OSError")
    now[0] = 1.0
    log.flush()
    assert fake.lines == [
        ("error", "journal_write_failed", {"error": "OSError"}),
        ("error", "journal_write_failed", {"repeated": 13_999, "seconds": 1.0}),
    ]
    assert log.rate.totals["journal_write_failed"] == 14_000


def test_bounded_logger_keeps_the_key_and_level_in_the_summary() -> None:
    now = [0.0]
    fake = FakeLogger()
    log = BoundedLogger(fake, interval=2.0, clock=lambda: now[0])
    log.warning("slow_consumer", key="NYNLETS00", backlog=5)
    log.warning("slow_consumer", key="NYNLETS00", backlog=6)
    now[0] = 3.0
    log.warning("slow_consumer", key="NYNLETS00", backlog=7)
    assert fake.lines == [
        ("warning", "slow_consumer", {"backlog": 5, "key": "NYNLETS00"}),
        ("warning", "slow_consumer", {"repeated": 1, "seconds": 3.0, "key": "NYNLETS00"}),
    ]
