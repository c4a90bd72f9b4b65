"""Attack: a frame dribbled after sign-on, against a real ``serve`` (issue 11, hole 10).

Before: a signed-on link could take 98 s to send one 99-byte frame, holding
its buffers all along (only the sign-on had a deadline). Now a frame, once
begun, must be whole within ``limits.frame_timeout`` (10 s by default):
past it ``N .01. INVALID FRAME`` and the link is closed, audited as a
security event. Whole frames, however far apart, are not affected.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from nlets_switch.wire import frames as fr
from tests.conftest_serve import serving, sign_on


async def test_a_frame_dribbled_past_frame_timeout_closes_the_link(tmp_path: Path) -> None:
    raw = {"limits": {"frame_timeout": 1.5, "heartbeat_interval": 60}}
    async with serving(tmp_path, raw) as sw:
        f, w = await sign_on(sw.port, b"AZNLETS20")
        assert f is not None and f.letter == "A"
        frame = fr.encode_frame(fr.MESSAGE, 2, b"AM.AZNLETS20.NYNLETS00.TXT " + b"S" * 70)
        t0 = time.monotonic()
        closed_at = None
        for i in range(len(frame)):  # one byte every 0.1 s: 10 s for the frame
            try:
                w.write(frame[i:i + 1])
                await w.drain()
            except ConnectionError:
                closed_at = time.monotonic()
                break
            await asyncio.sleep(0.1)
            if w.transport.is_closing():
                break
        rows = await sw.wait_audit(lambda x: any(y["type"] == "frame_timeout" for y in x))
        [ev] = [y for y in rows if y["type"] == "frame_timeout"]
        assert (ev["subject"], ev["outcome"]) == ("AZNLETS20", "closed")
        assert closed_at is None or closed_at - t0 < 5
        w.close()


async def test_the_link_reads_n_01_and_whole_frames_far_apart_are_fine(tmp_path: Path) -> None:
    raw = {"limits": {"frame_timeout": 1.0, "heartbeat_interval": 60}}
    async with serving(tmp_path, raw) as sw:
        r, w = await asyncio.open_connection("127.0.0.1", sw.port)
        w.write(fr.encode_frame(fr.SIGN_ON, 1, b"NYNLETS00"))
        buf = fr.FrameBuffer()
        [a] = buf.feed(await asyncio.wait_for(r.read(4096), 10))
        assert a.letter == "A"
        for seq in (2, 3):  # whole frames 1.5 s apart: each within its own deadline
            await asyncio.sleep(1.5)
            w.write(fr.encode_frame(fr.HEARTBEAT, seq))
            [h] = buf.feed(await asyncio.wait_for(r.read(4096), 10))
            assert (h.letter, h.seq) == ("H", seq)
        w.write(fr.encode_frame(fr.MESSAGE, 4, b"AM.NYNLETS00.NYNLETS00.TXT SLOW")[:12])
        t0 = time.monotonic()
        got: list[fr.Frame] = []
        async with asyncio.timeout(10):
            while data := await r.read(4096):
                got += buf.feed(data)
        assert [(f.letter, f.seq, f.body) for f in got] == [("N", 0, b".01. INVALID FRAME")]
        assert 0.5 < time.monotonic() - t0 < 4
        w.close()
