"""Attack class: malformed frames (PROTOCOL part 1).

Oversize and undersize lengths, unknown types and garbage get ``N .01.
INVALID FRAME`` and the link is closed, before or after sign-on; the switch
never buffers a body it has already refused. A frame cut off by a close
leaves nothing behind. Every test ends by checking that the switch still
serves other links.
"""

from __future__ import annotations

import asyncio
import os
import struct

import pytest

from nlets_switch.store.journal import connect as journal_connect
from nlets_switch.wire import frames as fr
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import (
    eventually,
    raw_link,
    read_to_close,
    signed_on,
    still_serving,
)

LIMITS = {"max_frame": 1024, "max_message": 1019}
INVALID = b".01. INVALID FRAME"


def _bad_frames() -> dict[str, bytes]:
    return {
        "length above max_frame": struct.pack(">IBI", 1025, ord("M"), 1) + b"X" * 100,
        "length 2**32-1": b"\xff\xff\xff\xff",
        "length 4": struct.pack(">I", 4) + b"M\x00\x00\x00",
        "length 0": struct.pack(">I", 0),
        "unknown type Z": fr.encode_frame(ord("Z"), 1, b"HELLO"),
        "lower-case type m": fr.encode_frame(ord("m"), 1, b"HELLO"),
        "type NUL": fr.encode_frame(0, 1, b""),
        "HTTP request": b"GET / HTTP/1.1\r\nHost: switch\r\n\r\n",
        "TLS hello on a plain port": bytes.fromhex("16030100a5010000a10303") + os.urandom(32),
        "garbage": bytes(range(256)) * 2,
    }


@pytest.mark.parametrize("name", list(_bad_frames()))
async def test_bad_frame_before_sign_on_gets_invalid_frame_and_close(
        make_switch: SwitchFactory, name: str) -> None:
    sw = await make_switch({"limits": LIMITS})
    r, w = await raw_link(sw)
    w.write(_bad_frames()[name])
    got = await read_to_close(r)
    assert [(f.letter, f.seq, f.body) for f in got] == [("N", 0, INVALID)]
    w.close()
    await still_serving(sw)


@pytest.mark.parametrize("name", list(_bad_frames()))
async def test_bad_frame_after_sign_on_gets_invalid_frame_and_close(
        make_switch: SwitchFactory, name: str) -> None:
    sw = await make_switch({"limits": LIMITS})
    r, w = await signed_on(sw, "AZ0070500")
    w.write(_bad_frames()[name])
    got = await read_to_close(r)
    assert [(f.letter, f.body) for f in got] == [("N", INVALID)]
    await asyncio.sleep(0.05)
    assert not sw.online("AZ0070500")
    w.close()
    await still_serving(sw)


async def test_oversize_length_is_refused_before_its_body_arrives(
        make_switch: SwitchFactory) -> None:
    """The N comes as soon as the length is in: the switch never waits for (or buffers) the body."""
    sw = await make_switch({"limits": LIMITS})
    r, w = await signed_on(sw, "AZ0070500")
    w.write(struct.pack(">IB", 50_000_000, ord("M")))  # claims 50 MB, sends none of it
    got = await read_to_close(r, timeout=2)
    assert [(f.letter, f.body) for f in got] == [("N", INVALID)]
    w.close()


async def test_good_frames_before_a_bad_one_in_the_same_write_are_honoured(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch({"limits": LIMITS})
    ny = await connect(sw, "NYNLETS00")
    r, w = await signed_on(sw, "AZNLETS20")
    w.write(fr.encode_frame(fr.MESSAGE, 2, b"AM.AZNLETS20.NYNLETS00.TXT BEFORE THE BAD ONE")
            + b"\x00\x00\x00\x01Z")
    got = await read_to_close(r)
    # The bad frame ends the link with N .01.; the good one before it was read
    # and is delivered. (Its A may not make it out before the close: the
    # sender then resends it, and the output numbers let the receiver drop the
    # duplicate, PROTOCOL part 1.)
    assert (got[-1].letter, got[-1].body) == ("N", INVALID)
    assert all(f.letter == "A" and f.seq == 2 for f in got[:-1])
    assert (await ny.receive(3)).endswith("BEFORE THE BAD ONE")
    w.close()


async def test_message_body_above_max_message_gets_n_03_and_the_link_stays(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """Oversize as a message (part 1) is a link-level N, but not a framing error."""
    sw = await make_switch({"limits": {"max_frame": 1024, "max_message": 200}})
    az = await connect(sw, "AZNLETS20")
    ans = await az.send("AM.AZNLETS20.NYNLETS00.TXT " + "X" * 300)
    assert (ans.ok, ans.text) == (False, ".03. MESSAGE TOO LONG")
    ans = await az.send("AM.AZNLETS20.NYNLETS00.TXT SHORT")
    assert ans.ok


async def test_truncated_frame_then_close_leaves_nothing_behind(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": LIMITS})
    _r, w = await signed_on(sw, "AZNLETS20")
    whole = fr.encode_frame(fr.MESSAGE, 2, b"AM.AZNLETS20.NYNLETS00.TXT NEVER FINISHED")
    w.write(whole[: len(whole) - 7])
    await w.drain()
    await asyncio.sleep(0.1)
    w.close()
    await eventually(lambda: not sw.online("AZNLETS20") and not sw.connections)
    await sw.journal.barrier()
    conn = journal_connect(sw.journal.path, readonly=True)
    try:
        n = conn.execute("SELECT COUNT(*) FROM messages WHERE text LIKE '%NEVER FINISHED%'"
                         ).fetchone()[0]
    finally:
        conn.close()
    assert n == 0
    await still_serving(sw)


async def test_many_truncated_frames_do_not_accumulate(make_switch: SwitchFactory) -> None:
    """Fifty links each leave half a frame and vanish; the switch forgets every one of them."""
    sw = await make_switch({"limits": LIMITS})
    for _ in range(50):
        _r, w = await raw_link(sw)
        w.write(struct.pack(">I", 900) + b"C" + b"\x00" * 100)
        await w.drain()
        w.close()
    await eventually(lambda: not sw.connections)
    await still_serving(sw)
