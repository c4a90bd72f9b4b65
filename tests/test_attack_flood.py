"""Attack class: floods (issue 5).

* A message flood from one ORI: past ``limits.rate_per_ori`` messages per
  second (burst ``limits.rate_burst``) each message gets ``N .04. RATE LIMIT
  EXCEEDED, RESEND LATER``, nothing of it is journaled, the link stays, and
  other ORIs' traffic still flows.
* A heartbeat flood from a peer that does not read the answers: the switch
  stops reading it (back-pressure) and keeps its write buffer bounded.
* A connection flood: past ``limits.max_connections_per_peer`` (or
  ``limits.max_connections`` in all) a connection gets ``N .06. TOO MANY
  CONNECTIONS`` with seq 0 and is closed; the count frees as links go.
"""

from __future__ import annotations

import asyncio

from nlets_switch.server.switch import Switch
from nlets_switch.store.journal import connect as journal_connect
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import (
    eventually,
    raw_link,
    read_frames,
    read_to_close,
    signed_on,
    still_serving,
    write_buffer_bytes,
)

RATE_LIMITED = ".04. RATE LIMIT EXCEEDED, RESEND LATER"
TOO_MANY = b".06. TOO MANY CONNECTIONS"


def _journaled_from(sw: Switch, link: str) -> int:
    conn = journal_connect(sw.journal.path, readonly=True)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM messages WHERE link = ?",
                                (link,)).fetchone()[0])
    finally:
        conn.close()


async def test_message_flood_is_rate_limited_and_others_still_flow(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch({"limits": {"rate_per_ori": 20, "rate_burst": 20}})
    ny = await connect(sw, "NYNLETS00")
    ag = await connect(sw, "AZ0070500")
    az = await connect(sw, "AZNLETS20")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    futs = [az.send_nowait(f"AM.AZNLETS20.NYNLETS00.TXT FLOOD {i}") for i in range(200)]
    # NY's traffic during AZ's flood: its own bucket, untouched.
    ny_answers = [await ny.send(f"AM.NYNLETS00.AZ0070500.TXT NY {i}") for i in range(10)]
    answers = await asyncio.gather(*futs)
    elapsed = loop.time() - t0
    assert all(a.ok for a in ny_answers)
    ok = [a for a in answers if a.ok]
    refused = [a for a in answers if not a.ok]
    assert {a.text for a in refused} == {RATE_LIMITED}
    assert 20 <= len(ok) <= 20 + 20 * elapsed + 2, (len(ok), elapsed)
    assert len(refused) >= 100
    # Nothing refused was journaled; what was accepted was delivered.
    await sw.journal.barrier()
    assert _journaled_from(sw, "AZNLETS20") == len(ok)
    got = await ny.drain(0.3)
    assert len(got) == len(ok)
    assert len(await ag.drain(0.1)) == 10
    # The link stays, and the bucket refills at rate_per_ori.
    await asyncio.sleep(0.2)
    assert (await az.send("AM.AZNLETS20.NYNLETS00.TXT AFTER THE FLOOD")).ok
    assert parse_output(await ny.receive(3)).text == "AFTER THE FLOOD"


async def test_rate_limit_is_per_ori_not_per_connection(make_switch: SwitchFactory,
                                                       connect: ClientFactory) -> None:
    """Reconnecting does not refill the bucket: it belongs to the ORI."""
    sw = await make_switch({"limits": {"rate_per_ori": 0.1, "rate_burst": 5}})
    await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    answers = [await az.send(f"AM.AZNLETS20.NYNLETS00.TXT {i}") for i in range(6)]
    assert [a.ok for a in answers] == [True] * 5 + [False]
    await az.close()
    az2 = await connect(sw, "AZNLETS20")
    ans = await az2.send("AM.AZNLETS20.NYNLETS00.TXT AGAIN")
    assert (ans.ok, ans.text) == (False, RATE_LIMITED)


async def test_heartbeat_flood_from_a_peer_that_never_reads_stays_bounded(
        make_switch: SwitchFactory) -> None:
    limit = 64 * 1024
    sw = await make_switch({"limits": {"max_write_buffer": limit}})
    _r, w = await signed_on(sw, "AZ0070500", small_window=True)
    hb = b"".join(fr.encode_frame(fr.HEARTBEAT, i) for i in range(1, 100_001))  # 900 kB
    w.write(hb)  # never read the answers
    peak = 0
    for _ in range(10):
        await asyncio.sleep(0.05)
        peak = max(peak, write_buffer_bytes(sw))
    # At most one read's worth of answers beyond the transport's high-water mark.
    assert peak <= limit + 512 * 1024, peak
    print(f"peak write buffer during the heartbeat flood: {peak} bytes")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await still_serving(sw)
    print(f"another ORI's round trip during it: {loop.time() - t0:.3f} s")
    w.transport.abort()
    await eventually(lambda: not sw.online("AZ0070500"))


async def test_connection_flood_from_one_peer_gets_n_06(make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": {"max_connections_per_peer": 5, "max_connections": 100}})
    host, port = sw.addresses[0]
    held = [await raw_link(sw) for _ in range(5)]
    await eventually(lambda: len(sw.connections) == 5)
    for _ in range(3):
        r, w = await raw_link(sw)
        got = await read_to_close(r)
        assert [(f.letter, f.seq, f.body) for f in got] == [("N", 0, TOO_MANY)]
        w.close()
    # Another peer address is not affected.
    r2, w2 = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
    w2.write(fr.encode_frame(fr.SIGN_ON, 1, b"NYNLETS00"))
    [f] = await read_frames(r2)
    assert (f.letter, f.body) == ("A", b"NL0000000")
    w2.close()
    # As links go, the count frees.
    for _, w in held:
        w.close()
    await eventually(lambda: not sw.connections)
    await still_serving(sw)


async def test_connection_flood_past_max_connections_gets_n_06(make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": {"max_connections": 4, "max_connections_per_peer": 64}})
    host, port = sw.addresses[0]
    held = [await raw_link(sw) for _ in range(4)]
    await eventually(lambda: len(sw.connections) == 4)
    r, w = await asyncio.open_connection(host, port, local_addr=("127.0.0.3", 0))
    got = await read_to_close(r)
    assert [(f.letter, f.seq, f.body) for f in got] == [("N", 0, TOO_MANY)]
    w.close()
    for _, hw in held:
        hw.close()
    await eventually(lambda: not sw.connections)
    await still_serving(sw)


async def test_a_thousand_connect_and_drop_leave_no_connection_behind(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": {"max_connections_per_peer": 2000,
                                       "max_connections": 2000}})
    for _ in range(10):
        links = await asyncio.gather(*(raw_link(sw) for _ in range(100)))
        for _, w in links:
            w.transport.abort()
    await eventually(lambda: not sw.connections, 5)
    await still_serving(sw)
