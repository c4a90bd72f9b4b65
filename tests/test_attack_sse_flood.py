"""Attack: an SSE flood against a real ``serve`` (issue 11, hole 8).

3,000 ``/events`` requests used to be accepted, each with its own queue, and
left the process 103 MB bigger for good. Now at most ``http.sse_max``
streams are open at once (a 503 past it, before anything is kept), and once
the flood ends the process is back near its baseline.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.conftest_serve_process import serve_process

TOKEN = "sse-token-0123456789abcdef"
CAP = 20
ATTEMPTS = 3000
WAVE = 500


async def _open(port: int) -> tuple[int, asyncio.StreamWriter]:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
            .encode())
    line = await asyncio.wait_for(r.readline(), 20)
    return int(line.split()[1]), w


@pytest.mark.skipif(sys.platform != "linux", reason="RSS figures as Linux reports them")
async def test_sse_flood_is_capped_and_memory_returns(tmp_path: Path) -> None:
    config = {"api": {"tokens": [{"name": "ops", "token": TOKEN}]}, "http": {"sse_max": CAP}}
    with serve_process(tmp_path, config) as served:
        ps = psutil.Process(served.proc.pid)

        async def wave(n: int) -> list[int]:
            opened = await asyncio.gather(*(_open(served.http_port) for _ in range(n)))
            for _, w in opened:
                w.transport.abort()
            return [status for status, _ in opened]

        # Warm up: the streams and refusals once, so the baseline has the code paths;
        # and start-up done: the LEIS data (sealed, so built for this test's own
        # keyring rather than copied from the cache) is built in the background.
        await wave(CAP * 2)
        for _ in range(600):
            if "leis_ready" in served.log_text():
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1)
        base = ps.memory_info().rss
        statuses: list[int] = []
        for _ in range(ATTEMPTS // WAVE):
            statuses += await wave(WAVE)
        assert statuses.count(200) <= CAP * (ATTEMPTS // WAVE)
        assert statuses.count(503) >= ATTEMPTS - CAP * (ATTEMPTS // WAVE)
        assert set(statuses) <= {200, 503}
        await asyncio.sleep(2)
        grown = ps.memory_info().rss - base
        print(f"serve RSS {base / 2**20:.1f} MiB before {ATTEMPTS} SSE attempts; "
              f"{grown / 2**20:+.1f} MiB after")
        assert grown < 12 * 2**20, grown
        # The dashboard still gets its stream.
        async with aiohttp.ClientSession() as s, s.get(
                served.base + "/events", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
            assert b"snapshot" in await asyncio.wait_for(r.content.readuntil(b"\n\n"), 5)
