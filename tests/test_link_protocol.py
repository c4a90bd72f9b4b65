"""The link protocol object (PROTOCOL part 1), without sockets and without sleeps.

Table-driven: each row puts a :class:`Link` of one role in one state, feeds
it one frame, and asserts the events, the frames it queued and the state
after. Timers are driven by moving ``now``.
"""

from __future__ import annotations

from typing import Any

import pytest

from nlets_switch.core import link as lk
from nlets_switch.core.link import Link, Role, State
from nlets_switch.core.scripted_link import ScriptedLink
from nlets_switch.errors import SignOnRejected
from nlets_switch.wire import frames as fr

C, A, N, M, H, D = fr.SIGN_ON, fr.ACK, fr.NAK, fr.MESSAGE, fr.HEARTBEAT, fr.SIGN_OFF
SW = b"NL0000000"
REQUIRED = b".01. SIGN-ON REQUIRED"


def frames_out(link: Link) -> list[tuple[str, int, bytes]]:
    """What the link queued, decoded back into (letter, seq, body)."""
    buf = fr.FrameBuffer()
    got = buf.feed(b"".join(link.data_to_send()))
    assert buf.pending == 0
    return [(f.letter, f.seq, f.body) for f in got]


def frame(ftype: int, seq: int, body: bytes = b"") -> bytes:
    return fr.encode_frame(ftype, seq, body)


def switch_in(state: State) -> Link:
    """A switch-side link in ``state`` (nothing queued)."""
    link = Link(Role.SWITCH, 0.0, signon_timeout=10.0, heartbeat_interval=30.0,
                heartbeat_timeout=10.0)
    if state is not State.AWAITING_SIGN_ON:
        link.receive_data(frame(C, 1, b"AZNLETS20"), 0.0)
        link.accept_sign_on("AZNLETS20", SW, 0.0)
    if state is State.SIGNING_OFF:
        link.receive_data(frame(D, 2), 0.0)
    if state is State.CLOSED:
        link.close()
    link.data_to_send()
    return link


def endpoint_in(state: State) -> Link:
    """An endpoint-side link in ``state`` (nothing queued)."""
    link = Link(Role.ENDPOINT, 0.0)
    link.send_sign_on("AZNLETS20")
    if state is not State.AWAITING_SIGN_ON:
        link.receive_data(frame(A, 1, SW), 0.0)
    if state is State.SIGNING_OFF:
        link.send_sign_off()
    if state is State.CLOSED:
        link.close()
    link.data_to_send()
    return link


# (role, state, frame in) -> (events, frames queued, state after)
TABLE: list[tuple[Role, State, tuple[int, int, bytes], list[Any], list[tuple[str, int, bytes]],
                  State]] = [
    # The switch's side before sign-on: C asks, anything else is N and close.
    (Role.SWITCH, State.AWAITING_SIGN_ON, (C, 7, b"AZNLETS20"),
     [lk.SignOnRequest(7, "AZNLETS20", None)], [], State.AWAITING_SIGN_ON),
    (Role.SWITCH, State.AWAITING_SIGN_ON, (C, 7, b"AZNLETS20 s3cret"),
     [lk.SignOnRequest(7, "AZNLETS20", "s3cret")], [], State.AWAITING_SIGN_ON),
    *[(Role.SWITCH, State.AWAITING_SIGN_ON, (t, 3, b"X"), [lk.NotSignedOn(3)],
       [("N", 3, REQUIRED)], State.CLOSED) for t in (A, N, M, H, D)],
    # Signed on.
    (Role.SWITCH, State.SIGNED_ON, (M, 5, b"AM.X"), [lk.MessageReceived(5, b"AM.X")], [],
     State.SIGNED_ON),
    (Role.SWITCH, State.SIGNED_ON, (A, 5, b""), [lk.Acked(5, b"")], [], State.SIGNED_ON),
    (Role.SWITCH, State.SIGNED_ON, (N, 5, b".02. NO"), [lk.Naked(5, b".02. NO")], [],
     State.SIGNED_ON),
    (Role.SWITCH, State.SIGNED_ON, (H, 9, b""), [], [("H", 9, b"")], State.SIGNED_ON),
    (Role.SWITCH, State.SIGNED_ON, (D, 9, b""), [lk.SignOffRequest(9)], [],
     State.SIGNING_OFF),
    (Role.SWITCH, State.SIGNED_ON, (C, 9, b"AZNLETS20"), [lk.AlreadySignedOn(9)],
     [("N", 9, b".01. ALREADY SIGNED ON")], State.SIGNED_ON),
    # After D (or a framing error) nothing more is read; closed reads nothing.
    *[(Role.SWITCH, st, (t, 4, b""), [], [], st)
      for st in (State.SIGNING_OFF, State.CLOSED) for t in (C, A, N, M, H, D)],
    # The endpoint's side: the answer to its C.
    (Role.ENDPOINT, State.AWAITING_SIGN_ON, (A, 1, SW), [lk.SignedOn(1, "NL0000000")], [],
     State.SIGNED_ON),
    (Role.ENDPOINT, State.AWAITING_SIGN_ON, (N, 1, b".01. SIGN-ON REJECTED"),
     [lk.SignOnRefused(1, ".01. SIGN-ON REJECTED")], [], State.CLOSED),
    (Role.ENDPOINT, State.SIGNED_ON, (M, 3, b"AM.X"), [lk.MessageReceived(3, b"AM.X")], [],
     State.SIGNED_ON),
    (Role.ENDPOINT, State.SIGNED_ON, (A, 3, b""), [lk.Acked(3, b"")], [], State.SIGNED_ON),
    (Role.ENDPOINT, State.SIGNED_ON, (N, 3, b".04. R"), [lk.Naked(3, b".04. R")], [],
     State.SIGNED_ON),
    (Role.ENDPOINT, State.SIGNED_ON, (H, 3, b""), [], [("H", 3, b"")], State.SIGNED_ON),
    (Role.ENDPOINT, State.SIGNED_ON, (D, 3, b""), [], [], State.SIGNED_ON),
    # After its D (seq 2): the A of the D closes; earlier As and Ms still come.
    (Role.ENDPOINT, State.SIGNING_OFF, (A, 2, b""), [lk.SignedOff(2)], [], State.CLOSED),
    (Role.ENDPOINT, State.SIGNING_OFF, (A, 1, b""), [lk.Acked(1, b"")], [],
     State.SIGNING_OFF),
    (Role.ENDPOINT, State.SIGNING_OFF, (M, 8, b"AM.Y"), [lk.MessageReceived(8, b"AM.Y")], [],
     State.SIGNING_OFF),
    *[(Role.ENDPOINT, State.CLOSED, (t, 4, b""), [], [], State.CLOSED)
      for t in (C, A, N, M, H, D)],
]


@pytest.mark.parametrize(("role", "state", "got", "events", "sent", "after"), TABLE)
def test_state_table(role: Role, state: State, got: tuple[int, int, bytes], events: list[Any],
                     sent: list[tuple[str, int, bytes]], after: State) -> None:
    link = switch_in(state) if role is Role.SWITCH else endpoint_in(state)
    assert link.state is state
    assert link.receive_data(frame(*got), 1.0) == events
    assert frames_out(link) == sent
    assert link.state is after


def test_accepting_a_sign_on_answers_with_the_switch_ori() -> None:
    link = Link(Role.SWITCH, 0.0)
    assert link.receive_data(frame(C, 4, b"AZNLETS20"), 0.0) == [
        lk.SignOnRequest(4, "AZNLETS20", None)]
    assert link.deciding_sign_on
    assert link.accept_sign_on("AZNLETS20", SW, 0.0) == []
    assert frames_out(link) == [("A", 4, SW)]
    assert (link.state, link.ori) == (State.SIGNED_ON, "AZNLETS20")


def test_frames_after_a_c_wait_for_the_sign_on_decision() -> None:
    """The credential check is slow: what follows the C is read once it is decided."""
    link = Link(Role.SWITCH, 0.0)
    data = frame(C, 1, b"AZNLETS20 pw") + frame(M, 2, b"AM.ONE") + frame(H, 3)
    assert link.receive_data(data, 0.0) == [lk.SignOnRequest(1, "AZNLETS20", "pw")]
    assert link.receive_data(frame(M, 4, b"AM.TWO"), 0.0) == []
    assert frames_out(link) == []
    events = link.accept_sign_on("AZNLETS20", SW, 0.0)
    assert events == [lk.MessageReceived(2, b"AM.ONE"), lk.MessageReceived(4, b"AM.TWO")]
    assert frames_out(link) == [("A", 1, SW), ("H", 3, b"")]


def test_a_refused_sign_on_drops_what_followed_and_closes() -> None:
    link = Link(Role.SWITCH, 0.0)
    link.receive_data(frame(C, 1, b"ZZ0000000") + frame(M, 2, b"AM.X"), 0.0)
    link.refuse_sign_on(SignOnRejected())
    assert frames_out(link) == [("N", 1, b".01. SIGN-ON REJECTED")]
    assert link.state is State.CLOSED
    assert link.receive_data(frame(M, 3, b"AM.Y"), 0.0) == []
    link.send_ack(3)
    assert frames_out(link) == []  # closed: nothing more goes out


@pytest.mark.parametrize("role", [Role.SWITCH, Role.ENDPOINT])
def test_frames_before_a_framing_error_still_count(role: Role) -> None:
    link = switch_in(State.SIGNED_ON) if role is Role.SWITCH else endpoint_in(State.SIGNED_ON)
    bad = b"\x00\x00\x00\x02"  # length below 5
    events = link.receive_data(frame(M, 5, b"AM.OK") + bad + frame(M, 6, b"AM.LOST"), 0.0)
    assert [type(e) for e in events] == [lk.MessageReceived, lk.FramingError]
    assert events[1].error.wire == ".01. INVALID FRAME"
    # The switch still sends what it owes (the A of seq 5, then the N); an
    # endpoint just closes.
    assert link.state is (State.SIGNING_OFF if role is Role.SWITCH else State.CLOSED)
    assert link.receive_data(frame(M, 7, b"AM.X"), 0.0) == []


def test_a_framing_error_after_a_pending_c_comes_after_the_decision() -> None:
    link = Link(Role.SWITCH, 0.0)
    link.receive_data(frame(C, 1, b"AZNLETS20") + b"\x00\x09\x00\x00", 0.0)
    events = link.accept_sign_on("AZNLETS20", SW, 0.0)
    assert [type(e) for e in events] == [lk.FramingError]
    assert link.state is State.SIGNING_OFF


def test_an_unknown_frame_type_is_a_framing_error() -> None:
    link = switch_in(State.SIGNED_ON)
    events = link.receive_data(b"\x00\x00\x00\x05Z\x00\x00\x00\x01", 0.0)
    assert [type(e) for e in events] == [lk.FramingError]


@pytest.mark.parametrize("role", [Role.SWITCH, Role.ENDPOINT])
def test_one_byte_at_a_time_gives_the_same_events(role: Role) -> None:
    data = frame(M, 5, b"AM.ONE") + frame(A, 9) + frame(M, 6, b"AM.TWO")
    whole = switch_in(State.SIGNED_ON) if role is Role.SWITCH else endpoint_in(State.SIGNED_ON)
    dribbled = (switch_in(State.SIGNED_ON) if role is Role.SWITCH
                else endpoint_in(State.SIGNED_ON))
    events = []
    for b in data:
        events += dribbled.receive_data(bytes([b]), 0.0)
    assert events == whole.receive_data(data, 0.0)


# -- timers ---------------------------------------------------------------------


def test_sign_on_timeout_answers_n_and_closes() -> None:
    link = Link(Role.SWITCH, 100.0, signon_timeout=10.0)
    assert link.next_deadline() == 110.0
    assert link.handle_timer(109.9) == []
    assert link.handle_timer(110.0) == [lk.TimedOut("sign_on")]
    assert frames_out(link) == [("N", 0, REQUIRED)]
    assert link.state is State.CLOSED and link.next_deadline() is None


def test_no_sign_on_timeout_once_signed_on() -> None:
    link = switch_in(State.SIGNED_ON)
    assert link.next_deadline() == 30.0  # the heartbeat, not the sign-on
    assert link.handle_timer(20.0) == []


@pytest.mark.parametrize(("steps", "sent", "closed"), [
    # (now, data in) ... -> what went out, and whether the link ended
    ([(29.9, None)], [], False),
    ([(30.0, None)], [("H", 1, b"")], False),                 # idle: the switch asks
    ([(20.0, frame(M, 2, b"AM.X")), (30.0, None)], [], False),  # traffic moves the deadline
    ([(30.0, None), (35.0, frame(H, 1)), (45.0, None)], [("H", 1, b"")], False),
    ([(30.0, None), (39.9, None)], [("H", 1, b"")], False),
    ([(30.0, None), (40.0, None)], [("H", 1, b"")], True),     # no answer in time
    ([(30.0, None), (35.0, frame(M, 2, b"AM.X")), (40.0, None)], [("H", 1, b"")], True),
    ([(30.0, None), (35.0, frame(H, 7)), (40.0, None)], [("H", 1, b""), ("H", 7, b"")], True),
])
def test_heartbeats(steps: list[tuple[float, bytes | None]], sent: list[tuple[str, int, bytes]],
                    closed: bool) -> None:
    link = switch_in(State.SIGNED_ON)
    link.seq_out = 0
    events: list[Any] = []
    for now, data in steps:
        if data is not None:
            events += [e for e in link.receive_data(data, now)
                       if not isinstance(e, lk.MessageReceived)]
        else:
            events += link.handle_timer(now)
    assert frames_out(link) == sent
    assert (events == [lk.TimedOut("heartbeat")]) is closed
    assert (link.state is State.CLOSED) is closed


def test_an_endpoint_without_heartbeat_interval_never_asks() -> None:
    link = endpoint_in(State.SIGNED_ON)
    assert link.next_deadline() is None
    assert link.handle_timer(1e9) == []


def test_timers_can_change_while_the_link_runs() -> None:
    link = switch_in(State.SIGNED_ON)
    link.heartbeat_interval = 5.0
    assert link.next_deadline() == 5.0


# -- both sides together --------------------------------------------------------


def test_a_switch_side_and_an_endpoint_side_talk() -> None:
    sw = Link(Role.SWITCH, 0.0, heartbeat_interval=30.0)
    ep = Link(Role.ENDPOINT, 0.0)

    def to_switch() -> list[Any]:
        return sw.receive_data(b"".join(ep.data_to_send()), 1.0)

    def to_endpoint() -> list[Any]:
        return ep.receive_data(b"".join(sw.data_to_send()), 1.0)

    ep.send_sign_on("AZNLETS20", "pw")
    assert to_switch() == [lk.SignOnRequest(1, "AZNLETS20", "pw")]
    assert sw.accept_sign_on("AZNLETS20", SW, 1.0) == []
    assert to_endpoint() == [lk.SignedOn(1, "NL0000000")]
    seq = ep.send_message(b"AM.AZNLETS20.NY.TXT HI")
    assert to_switch() == [lk.MessageReceived(seq, b"AM.AZNLETS20.NY.TXT HI")]
    sw.send_ack(seq)
    out = sw.send_message(b"AM.NYNLETS00\nTXT\nHELLO")
    assert to_endpoint() == [lk.Acked(seq, b""),
                             lk.MessageReceived(out, b"AM.NYNLETS00\nTXT\nHELLO")]
    ep.send_ack(out)
    assert to_switch() == [lk.Acked(out, b"")]
    # The switch's heartbeat is answered by the endpoint without its owner.
    sw.handle_timer(31.0)
    assert to_endpoint() == []
    assert to_switch() == []
    assert sw.ping_seq is None
    off = ep.send_sign_off()
    assert ep.state is State.SIGNING_OFF
    assert to_switch() == [lk.SignOffRequest(off)]
    sw.send_ack(off)
    sw.close()
    assert to_endpoint() == [lk.SignedOff(off)]
    assert ep.state is State.CLOSED


def test_send_frame_sends_anything_for_tools() -> None:
    ep = Link(Role.ENDPOINT, 0.0)
    assert ep.send_frame(M, b"EARLY") == 1
    assert ep.send_frame(H, seq=77) == 77
    assert frames_out(ep) == [("M", 1, b"EARLY"), ("H", 77, b"")]


def test_report_frames_shows_every_frame_before_its_event() -> None:
    ep = Link(Role.ENDPOINT, 0.0, report_frames=True)
    ep.send_sign_on("AZNLETS20")
    events = ep.receive_data(frame(A, 1, SW) + frame(H, 5) + frame(M, 6, b"AM.X"), 0.0)
    assert events == [lk.FrameReceived(fr.Frame(A, 1, SW)), lk.SignedOn(1, "NL0000000"),
                      lk.FrameReceived(fr.Frame(H, 5)),
                      lk.FrameReceived(fr.Frame(M, 6, b"AM.X")), lk.MessageReceived(6, b"AM.X")]


def test_eof_ends_input() -> None:
    link = switch_in(State.SIGNED_ON)
    link.receive_eof()
    assert link.state is State.SIGNING_OFF and not link.takes_input
    ep = endpoint_in(State.SIGNED_ON)
    ep.receive_eof()
    assert ep.state is State.CLOSED


# -- the endpoint role against a running switch ---------------------------------


async def test_an_endpoint_side_link_talks_to_a_real_switch(make_switch: Any) -> None:
    """What tools/client.py and the scenario runner build on: sockets in, the link decides."""
    import asyncio
    import contextlib

    from nlets_switch.wire.message import parse_output

    sw = await make_switch({"limits": {"heartbeat_interval": 0.2, "heartbeat_timeout": 0.3}})
    host, port = sw.addresses[0]
    loop = asyncio.get_running_loop()

    async def open_link(ori: str) -> tuple[Link, asyncio.StreamReader, asyncio.StreamWriter]:
        r, w = await asyncio.open_connection(host, port)
        link = Link(Role.ENDPOINT, loop.time(), report_frames=True)
        link.send_sign_on(ori)
        w.writelines(link.data_to_send())
        return link, r, w

    async def until(link: Link, r: asyncio.StreamReader, w: asyncio.StreamWriter,
                    kind: type) -> Any:
        async with asyncio.timeout(5):
            while True:
                data = await r.read(65536)
                assert data, "closed"
                events = link.receive_data(data, loop.time())
                w.writelines(link.data_to_send())  # heartbeat answers
                for e in events:
                    if isinstance(e, kind):
                        return e

    az, ar, aw = await open_link("AZNLETS20")
    ny, nr, nw = await open_link("NYNLETS00")
    assert (await until(az, ar, aw, lk.SignedOn)).switch_ori == "NL0000000"
    await until(ny, nr, nw, lk.SignedOn)
    seq = az.send_message(b"AM.AZNLETS20.NY.*E1.TXT OVER THE WIRE")
    aw.writelines(az.data_to_send())
    assert (await until(az, ar, aw, lk.Acked)).seq == seq
    got = await until(ny, nr, nw, lk.MessageReceived)
    out = parse_output(got.body.decode())
    assert (out.sender, out.control, out.text) == ("AZNLETS20", "E1", "OVER THE WIRE")
    ny.send_ack(got.seq)
    nw.writelines(ny.data_to_send())
    # Idle past heartbeat_interval: the switch asks, the link answers by itself.
    asked = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            while True:
                events = ny.receive_data(await nr.read(65536), loop.time())
                nw.writelines(ny.data_to_send())
                asked += sum(isinstance(e, lk.FrameReceived) and e.frame.type == H
                             for e in events)
    assert asked >= 2 and sw.online("NYNLETS00")
    off = ny.send_sign_off()
    nw.writelines(ny.data_to_send())
    assert (await until(ny, nr, nw, lk.SignedOff)).seq == off
    assert ny.state is State.CLOSED
    for w in (aw, nw):
        w.close()


# -- the scripted endpoint (conformance tools) -----------------------------------


def test_a_scripted_link_answers_nothing_and_keeps_every_frame() -> None:
    """A script sees the switch's H unanswered, and an N before sign-on closes nothing."""
    link = ScriptedLink(0.0)
    assert link.send_frame(M, b"TOO EARLY") == 1  # numbered by this side
    assert frames_out(link) == [("M", 1, b"TOO EARLY")]
    data = frame(N, 1, REQUIRED) + frame(H, 9) + frame(A, 3, SW)
    assert link.receive_data(data[:7], 0.0) == []
    assert link.frames_received() == []
    assert link.receive_data(data[7:], 1.0) == []
    got = link.frames_received()
    assert [(f.letter, f.seq, f.body) for f in got] == [("N", 1, REQUIRED), ("H", 9, b""),
                                                        ("A", 3, SW)]
    assert link.frames_received() == []
    assert frames_out(link) == []  # the H is not answered: that is the script's choice
    assert link.state is State.AWAITING_SIGN_ON
    assert link.next_deadline() is None and link.handle_timer(1e9) == []


def test_a_scripted_link_reports_a_framing_error_after_the_good_frames() -> None:
    link = ScriptedLink(0.0)
    events = link.receive_data(frame(A, 1) + b"\x00\x00\x00\x02", 0.0)
    assert [type(e) for e in events] == [lk.FramingError]
    assert [f.letter for f in link.frames_received()] == ["A"]
    assert link.state is State.CLOSED
    assert link.receive_data(frame(A, 2), 0.0) == []
    assert link.frames_received() == []
