"""Attack: malformed HTTP requests against a real ``serve`` (issue 11, hole 10).

Each used to write a traceback to the log. Now each is one ``http_error``
line (peer, error class, a cut-short first line of the error), with no
traceback and no request bytes beyond that; the server keeps answering.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from tests.conftest_serve_process import serve_process

BAD = [
    b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"A" * 20_000 + b"\r\n\r\n",
    b"POST /session HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64,
    b"GET / HTTP/1.1\r\nHost: x\r\nCLASSIFIED-NAME: SMITH\xff\xfe\r\n\r\n",
]


async def _send(port: int, data: bytes) -> bytes:
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(data)
        await w.drain()
        return await asyncio.wait_for(r.read(4096), 5)
    finally:
        w.close()


async def test_malformed_requests_log_one_line_each_and_no_traceback(tmp_path: Path) -> None:
    with serve_process(tmp_path) as served:
        for _ in range(5):
            for data in BAD:
                answer = await _send(served.http_port, data)
                assert answer == b"" or answer.startswith(b"HTTP/1."), answer[:80]
        async with aiohttp.ClientSession() as s, s.get(served.base + "/metrics") as r:
            assert r.status == 200  # still serving
        await asyncio.sleep(0.3)
        log = served.log_text()
    assert "Traceback" not in log
    assert "SMITH" not in log
    errors = [line for line in log.splitlines() if "http_error" in line]
    assert errors, log[-2000:]
    assert len(errors) <= 5 * len(BAD)
    # One line each: nothing the error carried spilled onto lines of its own.
    for line in log.splitlines():
        assert line.startswith("{"), line
