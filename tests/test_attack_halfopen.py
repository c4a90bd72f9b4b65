"""Attack class: half-open TCP (PROTOCOL part 1, idle links).

A peer that vanishes without a FIN (power cut, cable pulled, a NAT that
forgot the flow) looks to the switch like a link that is up but silent. The
switch sends ``H`` after ``heartbeat_interval`` and closes the link when no
answer comes within ``heartbeat_timeout``; the messages it had sent and not
had acknowledged are sent again, in order and with the same output numbers,
on the next sign-on. (Here the peer "vanishes" by going silent with its
socket still open, which is what a lost FIN looks like from the switch.)
"""

from __future__ import annotations

import asyncio

from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import FAST_LIMITS, eventually, read_frames, signed_on, still_serving


async def test_a_vanished_peer_is_closed_by_heartbeat_timeout_and_its_messages_redelivered(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch({"limits": FAST_LIMITS})
    ny = await connect(sw, "NYNLETS00")
    r, w = await signed_on(sw, "AZ0070500")
    for i in range(3):
        assert (await ny.send(f"AM.NYNLETS00.AZ0070500.*C{i}.TXT UNACKED {i}")).ok
    first = await read_frames(r, 3)
    assert [f.letter for f in first] == ["M", "M", "M"]
    first_out = [parse_output(f.body.decode()) for f in first]
    # Now it vanishes: no A, no H answer, no FIN.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await eventually(lambda: not sw.online("AZ0070500"), 3, "heartbeat timeout")
    gone_after = loop.time() - t0
    # interval 0.3 s + timeout 0.3 s, swept every 0.075 s.
    assert 0.5 <= gone_after < 1.5, gone_after
    rest = await read_frames(r, 10, timeout=2)
    assert [f.letter for f in rest] == ["H"]  # the unanswered probe, then the close
    w.close()
    # The next sign-on gets the three again, in order, numbered as before.
    ag = await connect(sw, "AZ0070500")
    again = [parse_output(await ag.receive(3)) for _ in range(3)]
    assert [(o.output_no, o.control, o.text) for o in again] == [
        (o.output_no, o.control, o.text) for o in first_out]
    assert await ag.drain(0.2) == []
    await still_serving(sw, "AM.NYNLETS00.AZ0070500.TXT AFTER THE TIMEOUT")


async def test_half_open_links_from_many_vanished_peers_are_all_reaped(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": FAST_LIMITS})
    silent = []
    for ori in ("AZNLETS20", "NYNLETS00", "AZ0070500"):
        silent.append(await signed_on(sw, ori))
    # Ten connections that never even sign on.
    for _ in range(10):
        host, port = sw.addresses[0]
        silent.append(await asyncio.open_connection(host, port))
    await eventually(lambda: not sw.connections and not sw.links.get("AZNLETS20"), 3,
                     "every silent link closed")
    for _, w in silent:
        w.close()
    await still_serving(sw)


async def test_a_peer_that_answers_heartbeats_but_never_acks_keeps_its_link(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """Alive but not acknowledging: the window fills, nothing more is sent, the link stays."""
    sw = await make_switch({"limits": {**FAST_LIMITS, "window": 2}})
    ny = await connect(sw, "NYNLETS00")
    r, w = await signed_on(sw, "AZ0070500")
    for i in range(5):
        assert (await ny.send(f"AM.NYNLETS00.AZ0070500.TXT {i}")).ok
    buf = fr.FrameBuffer()
    seen: list[fr.Frame] = []
    end = asyncio.get_running_loop().time() + 1.2
    while asyncio.get_running_loop().time() < end:
        try:
            async with asyncio.timeout(0.1):
                data = await r.read(65536)
        except TimeoutError:
            continue
        for f in buf.feed(data):
            seen.append(f)
            if f.type == fr.HEARTBEAT:
                w.write(fr.encode_frame(fr.HEARTBEAT, f.seq))
    assert [f.letter for f in seen if f.letter == "M"] == ["M", "M"]  # window 2
    assert sw.online("AZ0070500")
    w.close()
