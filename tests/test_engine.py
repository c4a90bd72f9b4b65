"""The engine's behaviours, without sockets and without sleeps (PROTOCOL parts 1 to 4).

Each test drives :class:`nlets_switch.core.engine.Engine` through
:class:`tests.engine_world.World`: frames in, ``now`` moved by hand, store
operations run when the test says, and the effects asserted.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from nlets_switch.core import effects as fx
from nlets_switch.core.events import (
    Audit,
    Delivered,
    Expired,
    LinkChanged,
    Refused,
    RefusedByReceiver,
    Rejected,
    Routed,
)
from nlets_switch.core.ledger import MAX_GROUPS
from nlets_switch.server.credentials import hash_credential
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.engine_world import T0, MemoryStore, World

A, M, N, H, D, C = fr.ACK, fr.MESSAGE, fr.NAK, fr.HEARTBEAT, fr.SIGN_OFF, fr.SIGN_ON
AM = "AM.AZNLETS20.NY.TXT "


def texts(w: World, peer: Any) -> list[str]:
    """The texts of the messages ``peer`` got (not acknowledged)."""
    return [parse_output(f.body.decode()).text for f in peer.messages()]


# -- sign-on (part 1) ---------------------------------------------------------------


@pytest.mark.parametrize(("ori", "reply", "audit"), [
    ("AZNLETS20", ("A", 1, b"NL0000000"), ("sign_on", "AZNLETS20", "success")),
    ("ZZ0000000", ("N", 1, b".01. SIGN-ON REJECTED"), ("sign_on", "ZZ0000000", "failure")),
    ("NY0303000", ("N", 1, b".01. SIGN-ON REJECTED"), ("sign_on", "NY0303000", "failure")),
])
def test_sign_on(ori: str, reply: tuple[str, int, bytes], audit: tuple[str, str, str]) -> None:
    w = World()
    p = w.sign_on(ori)
    assert p.take() == [reply]
    assert w.audits() == [audit]
    assert p.closed is (reply[0] == "N")
    assert w.engine.online(ori) is (reply[0] == "A")


def test_sign_on_without_credential_only_from_where_the_listener_allows() -> None:
    w = World()
    p = w.sign_on("AZNLETS20", anonymous_ok=False)
    assert p.take() == [("N", 1, b".01. SIGN-ON REJECTED")]


@pytest.mark.parametrize("ftype", [A, N, M, H, D])
def test_anything_before_sign_on_is_n_and_close(ftype: int) -> None:
    w = World()
    p = w.connect()
    w.send(p, ftype, b"AM.AZNLETS20.NY.TXT X")
    assert p.take() == [("N", 1, b".01. SIGN-ON REQUIRED")]
    assert p.closed and w.engine.stats.naks == 1


def test_sign_on_timeout() -> None:
    w = World({"limits": {"signon_timeout": 3}})
    p = w.connect()
    w.advance(2.9)
    assert p.take() == [] and not p.closed
    w.advance(0.2)
    assert p.take() == [("N", 0, b".01. SIGN-ON REQUIRED")]
    assert p.closed


def test_a_new_sign_on_replaces_the_old_link_and_gets_its_backlog() -> None:
    w = World()
    old = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.message(az, AM + "ONE")
    assert texts(w, old) == ["ONE"]  # sent, never acknowledged
    new = w.sign_on("NYNLETS00")
    assert old.closed and not new.closed
    assert new.frames[0].letter == "A" and new.frames[0].body == b"NL0000000"
    assert [(e.ori, e.state) for e in w.of(LinkChanged)][-1] == ("NYNLETS00", "online")
    # No offline in between: the ORI never stopped being served.
    assert ("NYNLETS00", "offline") not in [(e.ori, e.state) for e in w.of(LinkChanged)]
    assert w.ack_all(new) == ["ONE"]
    assert w.store.state_of("ONE") == ["acked"]


# -- custody and routing (parts 1 to 3) ------------------------------------------------


def test_a_only_after_the_batch_is_durable() -> None:
    w = World(auto=False)
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.settle()
    ny.take(), az.take()
    seq = w.message(az, AM + "CUSTODY")
    assert az.take() == []                      # not durable yet: no A
    assert [type(op) for op in w.ops] == [fx.WriteBatch]
    assert ny.take() == []                      # nor delivered
    w.settle()
    assert az.take() == [("A", seq, b"")]
    assert texts(w, ny) == ["CUSTODY"]


def test_a_failed_commit_answers_n_and_delivers_nothing() -> None:
    w = World(auto=False)
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.settle()
    ny.take(), az.take()
    seq = w.message(az, AM + "LOST")
    w.fail_next_write()
    assert az.take() == [("N", seq, b".05. SWITCH NOT ACCEPTING MESSAGES, RESEND LATER")]
    w.settle()
    assert ny.take() == []


def test_one_batch_per_turn_and_at_most_max_groups_in_flight() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    data = b"".join(fr.encode_frame(M, 10 + i, f"{AM}{i}".encode()) for i in range(5))
    w.feed(az, data)
    assert [type(op) for op in w.ops] == [fx.WriteBatch]
    assert len(w.ops[0].batch.messages) == 10  # five AMs and their five SM .02s
    for i in range(MAX_GROUPS + 1):
        w.feed(az, fr.encode_frame(M, 20 + i, f"{AM}X{i}".encode()))
    # One group per turn until MAX_GROUPS are handed over; the rest gathers
    # (into one group) until one commits.
    assert len(w.ops) == MAX_GROUPS
    assert all(len(op.batch.messages) == 2 for op in list(w.ops)[1:])
    w.settle(1)
    later = [op for op in w.ops if isinstance(op, fx.WriteBatch)]
    assert len(later) == MAX_GROUPS
    assert len(later[-1].batch.messages) == 4  # the two turns that waited, as one group


def test_numbers_and_output_header() -> None:
    w = World()
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.message(az, "AM.AZNLETS20.NY.*CTL1.TXT FIRST")
    w.message(az, "AM.AZNLETS20.NYNLETS00.TXT SECOND")
    outs = [parse_output(f.body.decode()) for f in ny.messages()]
    assert [(o.sender, o.input_no, o.output_no, o.receiver, o.control, o.text)
            for o in outs] == [("AZNLETS20", 1, 1, "NYNLETS00", "CTL1", "FIRST"),
                               ("AZNLETS20", 2, 2, "NYNLETS00", None, "SECOND")]
    assert w.store.counters["in:AZNLETS20"] == 2
    assert w.store.counters["out:NYNLETS00"] == 2


@pytest.mark.parametrize(("text", "outcome", "back"), [
    ("AM.AZNLETS20.AZNLETS20.TXT HI", "routed", ["AM"]),
    ("AM.AZNLETS20.NY.TXT HI", "held", ["SM"]),                       # SM .02
    ("RQ.AZNLETS20.NY.TXT LIC/1.LIY/2027.LIT/PC", "status", ["SM"]),  # not held: SM .04
    ("AM.NYNLETS00.NY.TXT HI", "rejected", ["ER"]),                   # origin not allowed
    ("XX.AZNLETS20.NY.TXT HI", "rejected", ["ER"]),
])
def test_what_becomes_of_a_message(text: str, outcome: str, back: list[str]) -> None:
    w = World()
    az = w.sign_on("AZNLETS20")
    az.take()
    seq = w.message(az, text)
    got = [parse_output(f.body.decode()) for f in az.messages()]
    assert az.take() == [("A", seq, b"")]  # a message wrong as Nlets still gets A, then ER
    assert [o.key for o in got] == back
    [event] = [e for e in w.events if isinstance(e, Routed | Rejected)]
    assert event.to_dict()["event"] == outcome


@pytest.mark.parametrize(("body", "reason"), [
    (b"AM.AZNLETS20.NY.TXT \x01", b".02. INVALID CHARACTERS IN MESSAGE"),
    (b"AM.AZNLETS20.NY.TXT " + b"X" * 70_000, b".03. MESSAGE TOO LONG"),
])
def test_link_level_refusals_are_n_and_nothing_journaled(body: bytes, reason: bytes) -> None:
    w = World({"limits": {"max_frame": 100_000}})
    az = w.sign_on("AZNLETS20")
    az.take()
    seq = w.send(az, M, body)
    assert az.take() == [("N", seq, reason)]
    assert w.store.messages == {}
    assert w.of(Refused)[0].reason == reason.decode()


# -- delivery: windows, SM first, redelivery (parts 1 and 4) ------------------------------


def test_the_window_limits_outstanding_deliveries() -> None:
    w = World({"limits": {"window": 3}})
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    for i in range(7):
        w.message(az, f"{AM}{i}")
    assert texts(w, ny) == ["0", "1", "2"]
    w.feed(ny, fr.encode_frame(A, 2))  # the second one, out of order
    assert texts(w, ny) == ["3"]


def test_sm_goes_ahead_of_other_traffic() -> None:
    w = World({"limits": {"window": 1}})
    az = w.sign_on("AZNLETS20")
    ny = w.sign_on("NYNLETS00")
    az.take()
    # Three AMs for AZ from NY; the first takes the window.
    for i in range(3):
        w.message(ny, f"AM.NYNLETS00.AZ.TXT {i}")
    # An inquiry from AZ to a state that is not signed on: SM .04 comes back.
    w.message(az, "DQ.AZNLETS20.TX.TXT OLN/D1")
    order = []
    for _ in range(4):
        [f] = az.messages()
        order.append(parse_output(f.body.decode()).key)
        w.feed(az, fr.encode_frame(A, f.seq))
    assert order == ["AM", "SM", "AM", "AM"]


def test_unacknowledged_deliveries_come_again_in_order_after_reconnect() -> None:
    w = World()
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    for i in range(4):
        w.message(az, f"{AM}{i}")
    first = [parse_output(f.body.decode()) for f in ny.messages()]
    w.feed(ny, fr.encode_frame(A, 1))  # the first one only
    w.run(w.engine.lost(ny.conn, w.now))
    assert not w.engine.online("NYNLETS00")
    again = w.sign_on("NYNLETS00")
    outs = [parse_output(f.body.decode()) for f in again.messages()]
    assert [(o.output_no, o.text) for o in outs] == [(o.output_no, o.text) for o in first[1:]]


def test_held_messages_wait_for_the_sign_on_with_sm_02() -> None:
    w = World()
    az = w.sign_on("AZNLETS20")
    az.take()
    w.message(az, AM + "HELD")
    [sm] = [parse_output(f.body.decode()) for f in az.messages()]
    assert sm.key == "SM" and ".02." in sm.text
    assert w.store.state_of("HELD") == ["held"]
    ny = w.sign_on("NYNLETS00")
    assert w.ack_all(ny) == ["HELD"]
    assert w.store.state_of("HELD") == ["acked"]


def test_a_receivers_n_ends_the_delivery() -> None:
    w = World()
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.message(az, AM + "NO THANKS")
    [f] = ny.messages()
    w.feed(ny, fr.encode_frame(N, f.seq, b".99. REFUSED"))
    assert w.store.state_of("NO THANKS") == ["refused"]
    assert w.of(RefusedByReceiver)[0].to == "NYNLETS00"


def test_sent_is_recorded_only_for_deliveries_still_open_after_the_grace() -> None:
    w = World()
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.message(az, AM + "QUICK")
    w.message(az, AM + "SLOW")
    [quick, slow] = ny.messages()
    w.feed(ny, fr.encode_frame(A, quick.seq))
    assert w.store.state_of("QUICK") == ["acked"]
    assert w.store.state_of("SLOW") == ["queued"]
    w.advance(0.6)
    assert w.store.state_of("SLOW") == ["sent"]
    w.feed(ny, fr.encode_frame(A, slow.seq))
    assert w.store.state_of("SLOW") == ["acked"]
    assert [d.latency_s for d in w.of(Delivered)] == [0.0, 0.6]


# -- heartbeats and idle time-outs ----------------------------------------------------


@pytest.mark.parametrize(("answer", "closed"), [(True, False), (False, True)])
def test_idle_links_are_asked_and_closed_without_answer(answer: bool, closed: bool) -> None:
    w = World({"limits": {"heartbeat_interval": 30, "heartbeat_timeout": 10}})
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    ny.take()
    w.advance(20)
    w.message(az, AM + "KEEPS IT")  # traffic towards NY does not count as NY's
    w.ack_all(ny)                   # NY's A does
    ny.take()
    w.advance(29.9)
    assert ny.take() == []
    w.advance(0.1)
    [(letter, seq, _)] = ny.take()
    assert letter == "H"
    if answer:
        w.send(ny, H, seq=seq)
    w.advance(10)
    assert ny.closed is closed
    assert w.engine.online("NYNLETS00") is not closed


def test_the_switch_answers_a_heartbeat() -> None:
    w = World()
    az = w.sign_on("AZNLETS20")
    az.take()
    w.send(az, H, seq=77)
    assert az.take() == [("H", 77, b"")]


def test_idle_links_cost_nothing_per_tick() -> None:
    """10,000 idle links: one heap entry each, and none is woken before its deadline."""
    w = World({"limits": {"max_connections": 20_000, "max_connections_per_peer": 20_000,
                          "max_unauthenticated": 20_000,
                          "max_unauthenticated_per_peer": 20_000}})
    conns = [w.connect().conn for _ in range(10_000)]
    heap = len(w.engine.timers)
    assert heap <= 10_000 + 2
    busy = w.sign_on("AZNLETS20")
    ny = w.sign_on("NYNLETS00")
    t0 = time.perf_counter()
    for i in range(200):
        w.message(busy, f"{AM}{i}")
        w.ack_all(ny)
        w.run(w.engine.tick(w.now))
    took = time.perf_counter() - t0
    # Ticks at the same time woke nobody: the heap did not grow per tick.
    assert len(w.engine.timers) <= heap + 8
    assert all(not c.closed for c in conns)
    assert took < 2.0, took  # generous: 200 messages, 200 ticks beside 10,000 links


# -- sign-off, frame errors, end of stream ----------------------------------------------


def test_sign_off_is_answered_after_the_a_of_every_earlier_message() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    data = (fr.encode_frame(M, 5, f"{AM}ONE".encode()) + fr.encode_frame(D, 6)
            + fr.encode_frame(M, 7, f"{AM}AFTER".encode()))
    w.feed(az, data)
    assert az.take() == [] and not az.closed  # custody of 5 is pending
    w.settle()
    assert az.take() == [("A", 5, b""), ("A", 6, b"")]
    assert az.closed
    assert [m.text.endswith("AFTER") for m in w.store.messages.values()] == [False, False]


def test_a_framing_error_is_answered_after_the_as_of_earlier_frames() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    w.feed(az, fr.encode_frame(M, 5, f"{AM}GOOD".encode()) + b"\x00\x00\x00\x01")
    assert az.take() == []
    w.settle()
    assert az.take() == [("A", 5, b""), ("N", 0, b".01. INVALID FRAME")]
    assert az.closed


def test_end_of_stream_still_gets_its_as_then_closes() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    seq = w.message(az, AM + "LAST WORDS")
    w.run(w.engine.eof(az.conn, w.now))
    assert not az.closed
    w.settle()
    assert az.take() == [("A", seq, b"")] and az.closed


def test_a_closing_link_waits_five_seconds_at_most_for_custody() -> None:
    w = World(auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    az.take()
    w.feed(az, fr.encode_frame(M, 5, f"{AM}SLOW DISK".encode()) + fr.encode_frame(D, 6))
    w.advance(4.9)
    assert not az.closed
    w.advance(0.2)
    assert az.take() == [("A", 6, b"")] and az.closed


# -- expiry (part 4) ---------------------------------------------------------------------


def test_an_expired_hold_tells_the_sender_with_sm_04() -> None:
    w = World({"hold": {"AM": {"held": True, "expire": 60}},
               "limits": {"heartbeat_interval": 3600}})
    az = w.sign_on("AZNLETS20")
    w.message(az, "AM.AZNLETS20.NY.*X1.TXT NEVER READ")
    w.ack_all(az)  # the SM .02
    w.advance(59)
    assert az.messages() == []
    w.advance(6)  # the next sweep after the hold ran out
    [sm] = [parse_output(f.body.decode()) for f in az.messages()]
    assert (sm.key, sm.control) == ("SM", "X1")
    assert ".04." in sm.text and "DESTINATION: NY\n" in sm.text
    assert w.store.state_of("NEVER READ") == ["expired"]
    assert [(e.key, e.to) for e in w.of(Expired)] == [("AM", "NY")]


def test_the_sweep_interval_can_change() -> None:
    w = World({"hold": {"AM": {"held": True, "expire": 1}}})
    az = w.sign_on("AZNLETS20")
    w.message(az, AM + "SHORT")
    w.engine.set_expiry_interval(0.2, w.now)
    w.advance(1.3)
    assert w.store.state_of("SHORT") == ["expired"]


# -- rate limits and custody pauses ----------------------------------------------------------


def test_past_the_rate_messages_get_n_04_and_reading_pauses() -> None:
    w = World({"limits": {"rate_per_ori": 10, "rate_burst": 3}})
    az = w.sign_on("AZNLETS20")
    az.take()
    data = b"".join(fr.encode_frame(M, 10 + i, f"{AM}{i}".encode()) for i in range(5))
    w.feed(az, data)
    got = sorted((f[1], f[0]) for f in az.take() if f[0] in "AN")
    assert got == [(10, "A"), (11, "A"), (12, "A"), (13, "N"), (14, "N")]
    assert az.conn.id in w.paused
    w.advance(0.1)  # one token is due after 0.1 s
    assert az.conn.id not in w.paused
    w.feed(az, fr.encode_frame(M, 20, f"{AM}AGAIN".encode()))
    assert az.take()[0] == ("A", 20, b"")


def test_past_max_inflight_reading_pauses_until_custody() -> None:
    w = World({"limits": {"max_inflight": 2}}, auto=False)
    az = w.sign_on("AZNLETS20")
    w.settle()
    w.feed(az, fr.encode_frame(M, 5, f"{AM}1".encode()) + fr.encode_frame(M, 6, f"{AM}2".encode()))
    assert az.conn.id in w.paused
    w.settle()
    assert az.conn.id not in w.paused


def test_a_peer_that_does_not_read_gets_no_more_and_is_not_read() -> None:
    w = World({"limits": {"max_write_buffer": 4096}})
    ny = w.sign_on("NYNLETS00")
    az = w.sign_on("AZNLETS20")
    w.run(w.engine.writable(ny.conn, False, w.now))
    assert ny.conn.id in w.paused
    w.message(az, AM + "WAITS")
    assert ny.messages() == []
    w.run(w.engine.writable(ny.conn, True, w.now))
    assert ny.conn.id not in w.paused
    assert w.ack_all(ny) == ["WAITS"]


def test_input_that_needs_many_answers_pauses_reading_until_they_are_written() -> None:
    """A heartbeat flood from a peer that never reads costs one read's answers."""
    w = World({"limits": {"max_write_buffer": 4096}})
    az = w.sign_on("AZNLETS20")
    az.take()
    w.feed(az, b"".join(fr.encode_frame(H, 100 + i) for i in range(1000)))
    assert az.conn.id in w.paused
    assert len(az.take()) == 1000  # the world wrote them
    w.advance(0)
    assert az.conn.id not in w.paused


# -- lock-out, with credential checks one at a time per ORI -----------------------------------


SECURED = {
    "links": [{"ori": "AZNLETS20", "role": "control_terminal",
               "credential": hash_credential("right", n=2**4)},
              {"ori": "NYNLETS00", "role": "control_terminal"}],
    "security": {"lockout_after": 3, "lockout_minutes": 10},
}


def test_parallel_guesses_are_checked_one_at_a_time_and_cannot_pass_the_lockout() -> None:
    w = World(SECURED)
    guesses = [w.sign_on("AZNLETS20", credential=f"guess{i}") for i in range(5)]
    right = w.sign_on("AZNLETS20", credential="right")
    # One check at a time: the others wait (and are not read meanwhile).
    assert len(w.checks) == 1
    assert all(p.conn.id in w.paused for p in [*guesses[1:], right])
    for _ in range(3):
        check = w.checks.pop(0)
        w.run(w.engine.credential_checked(check.token, False, w.now))
    # Three failures locked the ORI: the rest are refused without a check.
    assert w.checks == []
    assert all(p.closed for p in [*guesses, right])
    assert [a for a in w.audits() if a[0] == "lockout"] == [("lockout", "AZNLETS20", "locked")]
    assert right.take() == [("N", 1, b".01. SIGN-ON REJECTED")]
    # Ten minutes later the right credential works again.
    w.advance(600)
    again = w.sign_on("AZNLETS20", credential="right")
    w.run(w.engine.credential_checked(w.checks.pop().token, True, w.now))
    assert again.take() == [("A", 1, b"NL0000000")]


def test_a_good_check_lets_the_waiting_attempt_be_checked_next() -> None:
    w = World(SECURED)
    one = w.sign_on("AZNLETS20", credential="right")
    two = w.sign_on("AZNLETS20", credential="right")
    w.run(w.engine.credential_checked(w.checks.pop().token, True, w.now))
    assert one.take() == [("A", 1, b"NL0000000")]
    [check] = w.checks
    w.run(w.engine.credential_checked(check.token, True, w.now))
    assert two.take() == [("A", 1, b"NL0000000")] and one.closed  # replaced


def test_other_oris_are_not_held_up_by_a_check() -> None:
    w = World(SECURED)
    w.sign_on("AZNLETS20", credential="slow")
    ny = w.sign_on("NYNLETS00")
    assert ny.take() == [("A", 1, b"NL0000000")]


def test_frames_after_the_c_wait_for_the_check() -> None:
    w = World(SECURED)
    p = w.connect()
    w.feed(p, fr.encode_frame(C, 1, b"AZNLETS20 right")
           + fr.encode_frame(M, 2, f"{AM}PIPELINED".encode()))
    assert p.take() == []
    w.run(w.engine.credential_checked(w.checks.pop().token, True, w.now))
    w.end_turn()
    assert p.take()[:2] == [("A", 1, b"NL0000000"), ("A", 2, b"")]


@pytest.mark.parametrize(("cert", "ok"), [
    (frozenset({"AZNLETS20"}), True),
    (frozenset({"NYNLETS00"}), False),
    (frozenset(), False),
])
def test_the_tls_certificate_must_name_the_ori(cert: frozenset[str], ok: bool) -> None:
    w = World({"links": [{"ori": "AZNLETS20", "role": "control_terminal"}]})
    p = w.sign_on("AZNLETS20", anonymous_ok=False, cert_oris=cert)
    assert p.take()[0][0] == ("A" if ok else "N")


# -- local services and standby ------------------------------------------------------------------


def test_a_local_service_is_driven_like_a_link() -> None:
    w = World({"limits": {"window": 2}})
    ep = w.attach_local("VTICE0900")
    az = w.sign_on("AZNLETS20")
    for i in range(3):
        w.message(az, f"AM.AZNLETS20.VTICE0900.TXT {i}")
    assert [d.delivery.body for d in w.local] == ["0", "1"]
    first = w.local.pop(0)
    w.local_done(first)
    assert [d.delivery.body for d in w.local] == ["1", "2"]
    assert w.engine.render(first.delivery).startswith("AM.AZNLETS20\n")
    assert ep.kind == "local" and w.engine.online("VTICE0900")


def test_a_link_replacing_a_local_service_hands_it_back_when_it_ends() -> None:
    w = World()
    w.attach_local("VTICE0900")
    # A service ORI signs on with a client certificate (or a credential), never bare.
    link = w.sign_on("VTICE0900", cert_oris=frozenset({"VTICE0900"}))
    assert w.engine.links["VTICE0900"].kind == "tcp"
    w.run(w.engine.lost(link.conn, w.now))
    assert w.standby == ["VTICE0900"]


def test_a_local_sender_is_told_when_its_message_is_durable() -> None:
    w = World(auto=False)
    token = object()
    msg_id, effects = w.engine.accept("NL0000000", "AM.NL0000000.NYNLETS00.TXT HELLO", w.now,
                                      token)
    w.run(effects)
    w.end_turn()
    assert w.durable == []
    w.settle()
    assert [(d.token, d.error) for d in w.durable] == [(token, None)]
    assert msg_id in w.store.messages


# -- restart, reload ---------------------------------------------------------------------------


def test_numbers_and_ids_go_on_after_a_restart() -> None:
    store = MemoryStore()
    w = World(store=store)
    az = w.sign_on("AZNLETS20")
    w.message(az, AM + "BEFORE")
    w2 = World(store=store)
    az2 = w2.sign_on("AZNLETS20")
    w2.message(az2, AM + "AFTER")
    ids = sorted(store.messages)
    assert len(ids) == len(set(ids)) == 4  # two AMs, two SMs: no id reused
    assert store.counters["in:AZNLETS20"] == 2


def test_reload_signs_off_a_removed_ori_and_keeps_the_others() -> None:
    from nlets_switch.config import config_from_dict

    w = World({"links": [{"ori": "AZNLETS20", "role": "control_terminal"},
                         {"ori": "AZ0070500"}]})
    az = w.sign_on("AZNLETS20")
    ag = w.sign_on("AZ0070500")
    cfg = config_from_dict({"links": [{"ori": "AZNLETS20", "role": "control_terminal"}]})
    w.run(w.engine.reload(cfg, w.now))
    assert ag.closed and not az.closed
    assert ("config_reload", cfg.source, "success") in w.audits()


def test_events_carry_the_dicts_operators_see() -> None:
    w = World()
    az = w.sign_on("AZNLETS20")
    w.message(az, "AM.AZNLETS20.NY.*C9.TXT HI")
    routed = [e.to_dict() for e in w.of(Routed)]
    assert routed == [{"event": "held", "msg_id": 1, "key": "AM", "ori": "AZNLETS20",
                       "control": "C9", "to": ["NYNLETS00"], "sm": [[2, "NY"]], "ts": T0}]
    audit = w.of(Audit)[0].to_dict()
    assert audit == {"event": "audit", "type": "sign_on", "subject": "AZNLETS20",
                     "outcome": "success", "peer": "127.0.0.1:5000", "ts": T0}


# -- issue 11: lock-out per source, service ORIs, admission, frame deadline -------------------


def _fail_all(w: World) -> None:
    while w.checks:
        w.run(w.engine.credential_checked(w.checks.pop(0).token, False, w.now))


def test_a_strangers_guesses_lock_the_stranger_out_not_the_agency() -> None:
    w = World(SECURED)
    for i in range(5):
        w.sign_on("AZNLETS20", host="203.0.113.9", credential=f"guess{i}")
        _fail_all(w)
    assert [a for a in w.audits() if a[0] == "lockout"] == [("lockout", "AZNLETS20", "locked")]
    # The stranger is locked out (no check at all), the agency at its own address is not.
    late = w.sign_on("AZNLETS20", host="203.0.113.9", credential="right")
    assert w.checks == [] and late.take() == [("N", 1, b".01. SIGN-ON REJECTED")]
    agency = w.sign_on("AZNLETS20", host="198.51.100.7", credential="right")
    w.run(w.engine.credential_checked(w.checks.pop().token, True, w.now))
    assert agency.take() == [("A", 1, b"NL0000000")]


def test_past_the_higher_threshold_the_ori_locks_with_an_alert_and_unlock_lifts_it() -> None:
    w = World({**SECURED, "security": {"lockout_after": 3, "ori_lockout_after": 6,
                                       "lockout_minutes": 10}})
    for i in range(6):
        w.sign_on("AZNLETS20", host=f"203.0.113.{i}", credential="wrong")
        _fail_all(w)
    alerts = [e for e in w.events if e.to_dict().get("alert")]
    assert [(e.type, e.subject) for e in alerts] == [("lockout", "AZNLETS20")]
    refused = w.sign_on("AZNLETS20", host="198.51.100.7", credential="right")
    assert w.checks == [] and refused.closed
    w.run(w.engine.unlock("AZNLETS20", w.now))
    assert ("unlock", "AZNLETS20", "success") in w.audits()
    ok = w.sign_on("AZNLETS20", host="198.51.100.7", credential="right")
    w.run(w.engine.credential_checked(w.checks.pop().token, True, w.now))
    assert ok.take() == [("A", 1, b"NL0000000")]


def test_unlock_by_address_lifts_that_sources_lockouts() -> None:
    w = World(SECURED)
    for _ in range(3):
        w.sign_on("AZNLETS20", host="203.0.113.9", credential="wrong")
        _fail_all(w)
    assert w.engine.lockouts(w.now)[0]["source"] == "203.0.113.9"
    w.run(w.engine.unlock("203.0.113.9", w.now))
    assert w.engine.lockouts(w.now) == []
    again = w.sign_on("AZNLETS20", host="203.0.113.9", credential="right")
    assert len(w.checks) == 1 and not again.closed


@pytest.mark.parametrize("ori", ["VTICE0900", "TXNLETS00"])
def test_service_oris_never_sign_on_by_the_loopback_exemption(ori: str) -> None:
    from nlets_switch.server.credentials import hash_credential as h

    w = World()
    bare = w.sign_on(ori)
    assert bare.take() == [("N", 1, b".01. SIGN-ON REJECTED")] and not w.engine.online(ori)
    w.engine.service_credential = h("svc", n=2**4)
    good = w.sign_on(ori, credential="svc")
    [check] = w.checks
    assert check.stored == w.engine.service_credential
    w.run(w.engine.credential_checked(w.checks.pop().token, True, w.now))
    assert good.take() == [("A", 1, b"NL0000000")]
    # An agency still signs on from loopback without a credential.
    assert w.sign_on("AZ0070500").take() == [("A", 1, b"NL0000000")]


def test_the_oldest_connection_not_signed_on_gives_way() -> None:
    w = World({"limits": {"max_unauthenticated": 4, "max_unauthenticated_per_peer": 3}})
    idle = [w.connect(host="203.0.113.9") for _ in range(3)]
    newer = w.connect(host="203.0.113.9")  # the peer's pool is full: its oldest goes
    assert idle[0].closed and idle[0].take() == [("N", 0, b".06. TOO MANY CONNECTIONS")]
    other = w.connect(host="198.51.100.7")
    w.connect(host="198.51.100.8")  # the pool in all is full: the oldest of all goes
    assert idle[1].closed and not other.closed and not newer.closed
    # A link that has signed on is not in the pool and never gives way.
    az = w.sign_on("AZNLETS20", host="198.51.100.7")
    for _ in range(10):
        w.connect(host="198.51.100.9")
    assert not az.closed and az.take() == [("A", 1, b"NL0000000")]
    assert any(a[0] == "admission" for a in w.audits())


def test_a_frame_begun_after_sign_on_must_end_within_frame_timeout() -> None:
    w = World({"limits": {"frame_timeout": 5, "heartbeat_interval": 60}})
    az = w.sign_on("AZNLETS20")
    az.take()
    frame = fr.encode_frame(M, 2, f"{AM}SLOW".encode())
    w.feed(az, frame[:10])
    w.advance(4)
    w.feed(az, frame[10:12])  # dribbling does not move the deadline
    assert not az.closed
    w.advance(1.5)
    assert az.closed and az.take() == [("N", 0, b".01. INVALID FRAME")]
    assert ("frame_timeout", "AZNLETS20", "closed") in w.audits()
    # Whole frames, however far apart, are fine.
    ny = w.sign_on("NYNLETS00")
    for _ in range(3):
        w.advance(20)
        w.send(ny, H)
    assert not ny.closed
