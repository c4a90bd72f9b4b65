"""Attack class: sign-on abuse (PROTOCOL part 1; issue 5).

* A connection that never signs on (or dribbles half a sign-on) is closed
  with ``N .01. SIGN-ON REQUIRED`` after ``limits.signon_timeout``.
* Many connections signing on as one ORI at once end with exactly one live
  link, and it works.
* After ``security.lockout_after`` failed sign-ons an ORI is locked out for
  ``security.lockout_minutes``: even the right credential is rejected; every
  success and failure is an audit event.
"""

from __future__ import annotations

import asyncio
from typing import Any

from nlets_switch.server.credentials import hash_credential
from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import (
    FAST_LIMITS,
    eventually,
    raw_link,
    read_frames,
    read_to_close,
    still_serving,
)

REQUIRED = b".01. SIGN-ON REQUIRED"
REJECTED = b".01. SIGN-ON REJECTED"


async def test_a_sign_on_that_never_comes_is_closed_after_signon_timeout(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": FAST_LIMITS})
    loop = asyncio.get_running_loop()
    r, w = await raw_link(sw)
    t0 = loop.time()
    got = await read_to_close(r, timeout=3)
    waited = loop.time() - t0
    assert [(f.letter, f.body) for f in got] == [("N", REQUIRED)]
    assert 0.4 <= waited < 2.0, waited  # signon_timeout 0.5 s, swept every 0.125 s
    w.close()
    await eventually(lambda: not sw.connections)
    await still_serving(sw)


async def test_a_sign_on_dribbled_past_the_timeout_is_closed(make_switch: SwitchFactory) -> None:
    """Slowloris: bytes keep coming, but a whole sign-on never does."""
    sw = await make_switch({"limits": FAST_LIMITS})
    r, w = await raw_link(sw)
    frame = fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20")
    closed = asyncio.ensure_future(read_to_close(r, timeout=3))
    for b in frame[:-1]:
        if closed.done():
            break
        w.write(bytes([b]))
        await asyncio.sleep(0.1)  # 13 bytes x 0.1 s is well past 0.5 s
    got = await closed
    assert [(f.letter, f.body) for f in got] == [("N", REQUIRED)]
    assert not sw.online("AZNLETS20")
    w.close()


async def test_anything_but_a_sign_on_first_is_refused(make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    for ftype in (fr.MESSAGE, fr.HEARTBEAT, fr.ACK, fr.NAK, fr.SIGN_OFF):
        r, w = await raw_link(sw)
        w.write(fr.encode_frame(ftype, 9, b"AM.AZNLETS20.NY.TXT HI" if ftype == fr.MESSAGE
                                else b""))
        got = await read_to_close(r)
        assert [(f.letter, f.seq, f.body) for f in got] == [("N", 9, REQUIRED)], chr(ftype)
        w.close()


async def test_many_sign_ons_for_one_ori_at_once_leave_exactly_one_working_link(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    host, port = sw.addresses[0]
    n = 30
    results = await asyncio.gather(
        *(Client.connect(host, port, "AZNLETS20") for _ in range(n)), return_exceptions=True)
    clients = [c for c in results if isinstance(c, Client)]
    try:
        assert clients, results
        # Each later sign-on replaces the earlier link (part 1): all but one get closed.
        await eventually(lambda: sum(not c.closed.is_set() for c in clients) == 1, 5,
                         "all but one link closed")
        [live] = [c for c in clients if not c.closed.is_set()]
        assert sw.online("AZNLETS20")
        assert sum(1 for link in sw.connections if link.ori == "AZNLETS20" and link.ready) == 1
        ny = await connect(sw, "NYNLETS00")
        assert (await ny.send("AM.NYNLETS00.AZNLETS20.TXT WHO IS THERE")).ok
        assert parse_output(await live.receive(3)).text == "WHO IS THERE"
        assert (await live.send("AM.AZNLETS20.NYNLETS00.TXT ME")).ok
        assert parse_output(await ny.receive(3)).text == "ME"
    finally:
        for c in clients:
            await c.close(sign_off=False)


def _secured(lockout_after: int = 3, lockout_minutes: float = 10) -> dict[str, Any]:
    return {
        "links": [
            {"ori": "AZNLETS20", "role": "control_terminal",
             "credential": hash_credential("right", n=2**10)},
            {"ori": "NYNLETS00", "role": "control_terminal",
             "credential": hash_credential("ny-secret", n=2**10)},
            {"ori": "AZ0070500"},
        ],
        "security": {"lockout_after": lockout_after, "lockout_minutes": lockout_minutes},
    }


async def _sign_on(sw: Any, body: bytes) -> list[fr.Frame]:
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, body))
    got = await read_frames(r, 1)
    w.close()
    return got


async def test_lockout_after_failed_sign_ons_refuses_even_the_right_credential(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch(_secured(lockout_after=3))
    events: list[dict[str, Any]] = []
    sw.observers.append(lambda e: events.append(e.to_dict()))
    for _ in range(3):
        assert [(f.letter, f.body) for f in await _sign_on(sw, b"AZNLETS20 wrong")] == [
            ("N", REJECTED)]
    # Locked out now: the right credential is refused too.
    assert [(f.letter, f.body) for f in await _sign_on(sw, b"AZNLETS20 right")] == [
        ("N", REJECTED)]
    assert not sw.online("AZNLETS20")
    # Another ORI is not affected by AZ's lockout.
    assert [(f.letter, f.body) for f in await _sign_on(sw, b"NYNLETS00 ny-secret")] == [
        ("A", b"NL0000000")]
    audits = [(e["subject"], e["outcome"]) for e in events
              if e.get("event") == "audit" and e.get("type") == "sign_on"]
    assert audits == [("AZNLETS20", "failure")] * 4 + [("NYNLETS00", "success")]
    failures = [e for e in events if e.get("event") == "audit" and e.get("type") == "sign_on"
                and e["outcome"] == "failure"]
    assert all(e.get("reason") for e in failures)
    assert failures[-1]["reason"] != failures[0]["reason"]  # "locked out" vs a bad credential
    # Never the credential itself in an audit event.
    assert not any("right" in str(e) or "wrong" in str(e) for e in events)


async def test_failures_below_the_threshold_do_not_lock_out(make_switch: SwitchFactory) -> None:
    sw = await make_switch(_secured(lockout_after=3))
    for _ in range(2):
        assert (await _sign_on(sw, b"AZNLETS20 wrong"))[0].letter == "N"
    got = await _sign_on(sw, b"AZNLETS20 right")
    assert [(f.letter, f.body) for f in got] == [("A", b"NL0000000")]


async def test_lockout_ends_after_lockout_minutes(make_switch: SwitchFactory) -> None:
    sw = await make_switch(_secured(lockout_after=2, lockout_minutes=0.01))  # 0.6 s
    for _ in range(2):
        assert (await _sign_on(sw, b"AZNLETS20 wrong"))[0].letter == "N"
    assert (await _sign_on(sw, b"AZNLETS20 right"))[0].body == REJECTED
    await asyncio.sleep(0.8)
    assert [(f.letter, f.body) for f in await _sign_on(sw, b"AZNLETS20 right")] == [
        ("A", b"NL0000000")]


async def test_a_wrong_credential_flood_does_not_stall_other_links(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """scrypt runs off the event loop: guessing credentials slows nobody else."""
    sw = await make_switch(_secured(lockout_after=1000))
    host, port = sw.addresses[0]
    ny = await connect(sw, "NYNLETS00", credential="ny-secret")
    ag = await connect(sw, "AZ0070500")

    async def guess(i: int) -> None:
        try:
            c = await Client.connect(host, port, "AZNLETS20", credential=f"guess{i}")
        except SignOnError:
            return
        await c.close()

    guesses = asyncio.gather(*(guess(i) for i in range(40)))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await ny.send("AM.NYNLETS00.AZ0070500.TXT DURING THE GUESSING")).ok
    assert (await ag.receive(3)).endswith("DURING THE GUESSING")
    assert loop.time() - t0 < 1.0
    await guesses
    assert not sw.online("AZNLETS20")


async def test_sign_on_without_credential_is_refused_when_one_is_configured(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch(_secured())
    assert [(f.letter, f.body) for f in await _sign_on(sw, b"AZNLETS20")] == [("N", REJECTED)]
    assert [(f.letter, f.body) for f in await _sign_on(sw, b"AZNLETS20 ")] == [("N", REJECTED)]
    await eventually(lambda: not sw.connections)
