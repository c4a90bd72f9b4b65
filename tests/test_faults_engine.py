"""Journal faults and a stop, in the engine (issue 15), without sockets or sleeps.

A failed commit must not lose the destinations' acknowledgements gathered in
it; while the journal fails, senders get ``N .05.`` and an alert goes out
once; a read-back that fails names its destination and is retried, so no
destination stalls silently; a stopping engine still reads and answers.
"""

from __future__ import annotations

from typing import Any

from nlets_switch.core import effects as fx
from nlets_switch.core.events import JournalFault
from nlets_switch.core.faults import RETRY_S
from nlets_switch.wire import frames as fr
from tests.engine_world import World
from tests.test_engine import AM, texts

BUSY = b".05. SWITCH NOT ACCEPTING MESSAGES, RESEND LATER"


def fail_next(w: World, kind: type[Any], error: BaseException) -> None:
    """The next store operation of ``kind`` in the queue fails with ``error``."""
    for i, op in enumerate(w.ops):
        if isinstance(op, kind):
            del w.ops[i]
            now = w.now
            if isinstance(op, fx.WriteBatch):
                w.run(w.engine.committed(op.token, error, now))
            elif isinstance(op, fx.ReadOwed):
                w.run(w.engine.owed_loaded(op.token, None, error, now))
            else:
                w.run(w.engine.expired(None, error, now))
            w.end_turn()
            return
    raise AssertionError(f"no {kind.__name__} waiting")


def alerts(w: World) -> list[tuple[str, str, str | None]]:
    return [(e.state, e.op, e.destination) for e in w.of(JournalFault)]


def test_an_ack_gathered_in_a_failed_batch_is_kept_and_nothing_is_resent() -> None:
    w = World(auto=False)
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.settle()
    ny.take(), az.take()
    for i in range(3):
        w.message(az, f"{AM}{i}")
    w.settle()
    assert w.ack_all(ny) == ["0", "1", "2"]        # the As gather in the next group
    fail_next(w, fx.WriteBatch, OSError("disk full"))
    assert all(d.state == "sent" or d.state == "queued" for d in w.store.deliveries.values()
               if d.row.link == "NYNLETS00")
    # The retry's probe commit carries them.
    w.advance(RETRY_S)
    w.settle()
    assert sorted({d.state for d in w.store.deliveries.values()
                   if d.row.link == "NYNLETS00"}) == ["acked"]
    # NY signs on again: nothing is owed, nothing comes twice.
    w.feed(ny, fr.encode_frame(fr.SIGN_OFF, 99))
    w.settle()
    ny2 = w.sign_on("NYNLETS00")
    w.settle()
    assert texts(w, ny2) == []


def test_an_ack_not_yet_durable_is_not_read_back_on_a_new_sign_on() -> None:
    w = World(auto=False)
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.settle()
    ny.take(), az.take()
    w.message(az, f"{AM}ONCE")
    w.settle()
    assert w.ack_all(ny) == ["ONCE"]
    fail_next(w, fx.WriteBatch, OSError("disk full"))   # the A's record is only in memory
    w.run(w.engine.lost(ny.conn, w.now))                # NY's link drops
    ny2 = w.sign_on("NYNLETS00")                        # the disk is still full
    w.settle()
    assert [d.state for d in w.store.deliveries.values()] == ["queued"]  # on disk: owed
    assert texts(w, ny2) == []                           # acknowledged: not sent again


def test_while_the_journal_fails_senders_get_n_05_and_one_alert() -> None:
    w = World(auto=False)
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.settle()
    ny.take(), az.take()
    seq = w.message(az, f"{AM}LOST")
    fail_next(w, fx.WriteBatch, OSError("disk full"))
    assert az.take() == [("N", seq, BUSY)]
    # Custody is stopped: the next ones are refused at once, nothing is gathered.
    later = [w.message(az, f"{AM}{i}") for i in range(50)]
    assert az.take() == [("N", s, BUSY) for s in later]
    assert [type(op) for op in w.ops] == []
    assert alerts(w) == [("failed", "write", None)]
    assert w.engine.faults == {"write": "OSError"}
    failed_lines = [x for x in w.logs if x.event == "journal_write_failed"]
    assert len(failed_lines) == 1                  # one per failed commit, not per message
    # The disk has room again: the probe commits, custody resumes, alert cleared.
    w.advance(RETRY_S)
    w.settle()
    assert alerts(w) == [("failed", "write", None), ("recovered", "write", None)]
    seq = w.message(az, f"{AM}BACK")
    w.settle()
    assert az.take() == [("A", seq, b"")]
    assert texts(w, ny) == ["BACK"]


def test_a_failed_probe_keeps_custody_stopped_and_retries() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    w.message(az, f"{AM}X")
    fail_next(w, fx.WriteBatch, OSError("disk full"))
    for _ in range(3):
        w.advance(RETRY_S)
        fail_next(w, fx.WriteBatch, OSError("disk full"))
    assert alerts(w) == [("failed", "write", None)]
    assert w.engine.stats.journal_failures == {"write": 4}
    seq = w.message(az, f"{AM}Y")
    assert az.take()[-1] == ("N", seq, BUSY)


def test_a_failed_read_back_names_the_destination_stops_custody_and_is_retried() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    for i in range(3):
        w.message(az, f"{AM}{i}")                  # held for NY, not signed on
    w.settle()
    ny = w.sign_on("NYNLETS00")
    fail_next(w, fx.ReadOwed, OSError("damaged page"))
    assert texts(w, ny) == []
    assert alerts(w) == [("failed", "read-back", "NYNLETS00")]
    [line] = [x for x in w.logs if x.event == "journal_fault"]
    assert line.level == "error" and line.fields["destination"] == "NYNLETS00"
    seq = w.message(az, f"{AM}NEW")
    assert az.take()[-1] == ("N", seq, BUSY)      # not an A it may never deliver
    # Retried: the page reads again, delivery goes on, the alert clears.
    w.advance(RETRY_S)
    w.settle()
    assert texts(w, ny) == ["0", "1", "2"]
    assert alerts(w)[-1] == ("recovered", "read-back", "NYNLETS00")
    assert w.engine.faults == {}


def test_a_failed_expiry_sweep_alerts_and_clears_on_the_next() -> None:
    w = World(auto=False)
    w.settle()
    w.advance(0)
    fail_next(w, fx.ExpireDue, OSError("io"))
    assert alerts(w) == [("failed", "expiry", None)]
    w.advance(w.engine.expiry_interval)
    w.settle()
    assert alerts(w)[-1] == ("recovered", "expiry", None)


def test_a_stopping_engine_still_reads_answers_n_05_and_signs_off() -> None:
    w = World()
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    ny.take(), az.take()
    w.run(w.engine.stop_accepting(w.now))
    assert w.paused == set()                        # still read: frames get answers
    seq = w.message(az, f"{AM}LATE")
    assert az.take() == [("N", seq, BUSY)]
    w.run(w.engine.sign_off_all(w.now))
    frames = az.frames[-1:]
    assert [(f.type, f.body) for f in frames] == [(fr.SIGN_OFF, b"")]
    assert not w.engine.links["AZNLETS20"].ready   # nothing more is delivered
