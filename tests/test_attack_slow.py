"""Attack class: slow peers (issue 5).

* Slow readers: an endpoint that never reads while traffic for it piles up.
  The switch stops writing to it past ``limits.max_write_buffer`` and keeps
  the rest in the journal (at most ``limits.max_queued`` in memory), so its
  memory stays bounded - in-process we watch the transports' write buffers,
  and with the switch as a subprocess its resident set size - and other
  links are not slowed. Nothing is lost: the backlog arrives once it reads.
* Slow writers: a frame dribbled one byte at a time still works, and does
  not hold anyone else up.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from nlets_switch.store.journal import connect as journal_connect
from nlets_switch.tools.client import Client
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory, free_port
from tests.conftest_security import (
    read_frames,
    signed_on,
    write_buffer_bytes,
)

WRITE_LIMIT = 64 * 1024
SLOW_LIMITS = {
    "window": 10_000,           # so only max_write_buffer stands between the backlog and memory
    "max_queued": 100,
    "max_write_buffer": WRITE_LIMIT,
    "rate_per_ori": 100_000,    # the flood here is the point, not the rate limit
    "rate_burst": 100_000,
}


def _open_for(path: Path, ori: str) -> int:
    conn = journal_connect(path, readonly=True)
    try:
        return int(conn.execute(
            "SELECT COUNT(*) FROM deliveries WHERE link = ? AND state IN ('queued','held','sent')",
            (ori,)).fetchone()[0])
    finally:
        conn.close()


async def test_a_reader_that_never_reads_costs_bounded_memory(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch({"limits": SLOW_LIMITS})
    _r, w = await signed_on(sw, "NYNLETS00", small_window=True)  # never reads again
    az = await connect(sw, "AZNLETS20")
    ag = await connect(sw, "AZ0070500")
    n, size = 300, 8000
    body = "X" * size
    peak = 0
    sending = asyncio.gather(*(az.send_nowait(f"AM.AZNLETS20.NYNLETS00.TXT {i} {body}")
                               for i in range(n)))
    while not sending.done():
        peak = max(peak, write_buffer_bytes(sw))
        await asyncio.sleep(0.01)
    answers = await sending
    assert all(a.ok for a in answers)
    for _ in range(10):
        peak = max(peak, write_buffer_bytes(sw))
        await asyncio.sleep(0.02)
    # Bounded: the limit plus one frame that took it past (and the other links' frames).
    assert peak <= WRITE_LIMIT + 2 * (size + 100), peak
    # Other links are unaffected while NY's backlog waits.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await ag.send("AM.AZ0070500.AZNLETS20.TXT NOT HELD UP")).ok
    assert parse_output(await az.receive(3)).text == "NOT HELD UP"
    assert loop.time() - t0 < 0.5
    # Nothing is lost: the backlog is in the journal and arrives when NY reads.
    await sw.journal.barrier()
    assert _open_for(sw.journal.path, "NYNLETS00") == n
    w.transport.abort()
    ny = await connect(sw, "NYNLETS00")
    got = [parse_output(await ny.receive(5)).text.split(" ", 1)[0] for _ in range(n)]
    assert got == [str(i) for i in range(n)]


async def test_a_slow_writer_dribbling_one_byte_at_a_time_still_works(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    ag = await connect(sw, "AZ0070500")
    host, port = sw.addresses[0]
    r, w = await asyncio.open_connection(host, port)
    text = b"AM.AZNLETS20.NYNLETS00.*SLOW.TXT ONE BYTE AT A TIME"
    data = fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20") + fr.encode_frame(fr.MESSAGE, 2, text)

    async def dribble() -> None:
        for b in data:
            w.write(bytes([b]))
            await w.drain()
            await asyncio.sleep(0.003)

    task = asyncio.ensure_future(dribble())
    # Meanwhile the switch serves everyone else without waiting for the dribbler.
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert (await ag.send("AM.AZ0070500.NYNLETS00.TXT NOT WAITING")).ok
    assert parse_output(await ny.receive(3)).text == "NOT WAITING"
    assert loop.time() - t0 < 0.2
    assert not task.done()
    await task
    got = await read_frames(r, 2)
    assert [(f.letter, f.seq, f.body) for f in got] == [("A", 1, b"NL0000000"), ("A", 2, b"")]
    out = parse_output(await ny.receive(3))
    assert (out.sender, out.control, out.text) == ("AZNLETS20", "SLOW", "ONE BYTE AT A TIME")
    w.close()


# --------------------------------------------------------------------------
# The switch as a subprocess: its resident set size.
# --------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="RSS figures as Linux reports them")
async def test_switch_rss_stays_bounded_while_a_backlog_piles_up(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "switch.yaml"
    cfg.write_text(yaml.safe_dump({"limits": SLOW_LIMITS}))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, waited for outside the loop
        [sys.executable, "-m", "nlets_switch", "serve", "--config", str(cfg),
         "--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "data"),
         # Not the default HTTP port: another switch on this machine may hold it.
         "--http", "off"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        az: Client | None = None
        async with asyncio.timeout(10):
            while az is None:
                try:
                    az = await Client.connect("127.0.0.1", port, "AZNLETS20")
                except OSError:
                    await asyncio.sleep(0.05)
        ps = psutil.Process(proc.pid)
        body = "Y" * 10_000

        async def burst(k: int) -> None:
            assert az is not None
            answers = await asyncio.gather(*(
                az.send_nowait(f"AM.AZNLETS20.NYNLETS00.TXT {k}-{i} {body}") for i in range(200)))
            assert all(a.ok for a in answers)

        # Phase 1, the baseline: NY reads everything. The allocator, SQLite's
        # cache and the code paths warm up until RSS levels off.
        ny = await Client.connect("127.0.0.1", port, "NYNLETS00")
        for k in range(10):
            await burst(k)
            for _ in range(200):
                await ny.receive(5)
        await ny.close(sign_off=False)
        base = ps.memory_info().rss
        # Phase 2: NY signs on again and never reads (tiny receive window), while
        # 2,000 messages (20 MB) pile up for it.
        import socket

        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        r, w = await asyncio.open_connection(sock=sock, limit=4096)
        w.write(fr.encode_frame(fr.SIGN_ON, 1, b"NYNLETS00"))
        await read_frames(r, 1)
        for k in range(10, 20):
            await burst(k)
        grown = ps.memory_info().rss - base
        print(f"switch RSS {base / 2**20:.1f} MiB after the baseline; grew "
              f"{grown / 2**20:.1f} MiB while 20 MB piled up for a reader that never reads")
        # Half the backlog: a switch that buffered it would grow by 20 MB or more.
        assert grown < 10 * 2**20, grown
        w.transport.abort()
        await az.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

