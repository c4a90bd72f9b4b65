"""Helpers of the attack-class tests (issue 5): raw sockets that speak frames badly on purpose."""

from __future__ import annotations

import asyncio
import socket
import weakref
from collections.abc import Callable
from typing import Any

from nlets_switch.server.switch import Switch
from nlets_switch.tools.client import Client
from nlets_switch.wire import frames as fr

#: Limits small enough that every attack test finishes in a second or two.
FAST_LIMITS: dict[str, Any] = {
    "heartbeat_interval": 0.3,
    "heartbeat_timeout": 0.3,
    "signon_timeout": 0.5,
}


async def raw_link(sw: Switch) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection to the switch's first listener, nothing sent yet."""
    host, port = sw.addresses[0]
    return await asyncio.open_connection(host, port)


async def small_window_link(sw: Switch, rcvbuf: int = 4096
                            ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw link whose kernel receive buffer is tiny, so a peer that does not
    read pushes back on the switch at once (instead of megabytes later)."""
    host, port = sw.addresses[0]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return await asyncio.open_connection(sock=sock, limit=rcvbuf)


async def signed_on(sw: Switch, ori: str, small_window: bool = False,
                    credential: str | None = None
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw link that has signed on as ``ori`` (its ``A`` read and checked)."""
    r, w = await (small_window_link(sw) if small_window else raw_link(sw))
    body = ori if credential is None else f"{ori} {credential}"
    w.write(fr.encode_frame(fr.SIGN_ON, 1, body.encode()))
    [f] = await read_frames(r)
    assert (f.letter, f.body) == ("A", b"NL0000000"), f
    return r, w


#: Per reader: its partial frame and the frames read beyond what a caller asked for, so that
#: frames arriving in one read (a sign-on's A and a redelivered M) are never dropped.
_PENDING: weakref.WeakKeyDictionary[asyncio.StreamReader, tuple[fr.FrameBuffer, list[fr.Frame]]] = (
    weakref.WeakKeyDictionary())


def _pending(reader: asyncio.StreamReader) -> tuple[fr.FrameBuffer, list[fr.Frame]]:
    if reader not in _PENDING:
        _PENDING[reader] = (fr.FrameBuffer(), [])
    return _PENDING[reader]


async def read_frames(reader: asyncio.StreamReader, n: int = 1,
                      timeout: float = 3.0) -> list[fr.Frame]:
    """Up to ``n`` frames (fewer if the switch closes first); frames beyond ``n`` that came
    in the same read are kept for the next call on this reader."""
    buf, extra = _pending(reader)
    got: list[fr.Frame] = []
    async with asyncio.timeout(timeout):
        while len(got) + len(extra) < n:
            data = await reader.read(65536)
            if not data:
                break
            extra += buf.feed(data)
    got, extra[:] = extra[:n], extra[n:]
    return got


async def read_to_close(reader: asyncio.StreamReader, timeout: float = 3.0) -> list[fr.Frame]:
    """Every frame until the switch closes the link (TimeoutError if it never does)."""
    buf, extra = _pending(reader)
    got: list[fr.Frame] = extra[:]
    extra.clear()
    async with asyncio.timeout(timeout):
        while True:
            try:
                data = await reader.read(65536)
            except ConnectionError:
                return got
            if not data:
                return got
            got += buf.feed(data)


async def still_serving(sw: Switch, text: str = "AM.NYNLETS00.AZ0070500.TXT STILL SERVING") -> None:
    """The switch keeps serving other links: a fresh NY link sends an AM and AZ0070500 gets it."""
    host, port = sw.addresses[0]
    ny = await Client.connect(host, port, "NYNLETS00")
    az = await Client.connect(host, port, "AZ0070500")
    try:
        ans = await ny.send(text)
        assert ans.ok, ans
        got = await az.receive(5)
        assert got.endswith(text.split(".TXT", 1)[1].lstrip()), got
    finally:
        await ny.close()
        await az.close()


def write_buffer_bytes(sw: Switch) -> int:
    """Bytes the switch's transports hold unsent, over every connection."""
    total = 0
    for link in list(sw.connections):
        total += link.buffered()
    return total


async def eventually(predicate: Callable[[], bool], timeout: float = 3.0,
                     what: str = "condition") -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        await asyncio.sleep(0.02)
