"""The client's link, against a fake switch that says exactly what each test needs.

The client's protocol is ``core.link.Link`` in the endpoint role; these tests
check what its asyncio shell does with it: the sign-on answers, numbering
and matching of A/N, answering the switch's heartbeats and asking its own,
sign-off, a broken byte stream, and a link that is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from nlets_switch.tools.client import Answer, Client, SignOnError
from nlets_switch.wire import frames as fr

SW = b"NL0000000"


async def read_frame(reader: asyncio.StreamReader, buf: fr.FrameBuffer,
                     got: list[fr.Frame]) -> fr.Frame:
    """The next frame the client sent (fake switch side)."""
    while not got:
        data = await asyncio.wait_for(reader.read(65536), 3)
        assert data, "client closed"
        got.extend(buf.feed(data))
    return got.pop(0)


class Fake:
    """A one-connection fake switch running ``script``; records what the client sent."""

    def __init__(self) -> None:
        self.buf = fr.FrameBuffer()
        self.got: list[fr.Frame] = []
        self.seen: list[fr.Frame] = []
        self.reader: asyncio.StreamReader | None = None

    async def frame(self) -> fr.Frame:
        assert self.reader is not None
        f = await read_frame(self.reader, self.buf, self.got)
        self.seen.append(f)
        return f


Script = Callable[[Fake, asyncio.StreamWriter], Awaitable[None]]


class Fakes:
    """Fake switches started by one test; each serves one connection with its script."""

    def __init__(self) -> None:
        self.servers: list[asyncio.Server] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.last = Fake()

    async def start(self, script: Script) -> int:
        """Listen on a free port; returns it."""
        f = self.last = Fake()

        async def handle(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            f.reader = r
            task = asyncio.current_task()
            assert task is not None
            self.tasks.append(task)
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await script(f, w)

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.servers.append(srv)
        return int(srv.sockets[0].getsockname()[1])


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    out = Fakes()
    yield out
    for t in out.tasks:
        t.cancel()
    for srv in out.servers:
        srv.close()


async def accept(f: Fake, w: asyncio.StreamWriter) -> fr.Frame:
    """Read the client's C and accept it."""
    c = await f.frame()
    assert c.type == fr.SIGN_ON
    w.write(fr.encode_frame(fr.ACK, c.seq, SW))
    return c


async def test_sign_on_carries_the_credential_and_answers_are_matched_by_seq(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await accept(f, w)
        m1, m2 = await f.frame(), await f.frame()
        # Answered out of order: each A/N still reaches the send it belongs to.
        w.write(fr.encode_frame(fr.NAK, m2.seq, b".02. NO") + fr.encode_frame(fr.ACK, m1.seq))
        await asyncio.sleep(10)

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "AZNLETS20", credential="pw")
    first, second = c.send_nowait("AM.ONE"), c.send_nowait(b"AM.TWO")
    assert await asyncio.wait_for(first, 3) == Answer(True, 2, "")
    assert await asyncio.wait_for(second, 3) == Answer(False, 3, ".02. NO")
    sent = [(x.letter, x.seq, x.body) for x in fakes.last.seen]
    assert sent == [("C", 1, b"AZNLETS20 pw"), ("M", 2, b"AM.ONE"), ("M", 3, b"AM.TWO")]
    await c.close(sign_off=False)


async def test_a_refused_sign_on_raises_with_the_switch_text(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        c = await f.frame()
        w.write(fr.encode_frame(fr.NAK, c.seq, b".01. SIGN-ON REJECTED"))
        await w.drain()
        w.close()

    port = await fakes.start(script)
    with pytest.raises(SignOnError, match=r"^\.01\. SIGN-ON REJECTED$"):
        await Client.connect("127.0.0.1", port, "ZZ0000000")


@pytest.mark.parametrize(("reply", "text"), [
    (b"", "connection closed during sign-on"),
    (b"\x00\x00\x00\x02", "framing error during sign-on"),
])
async def test_a_sign_on_without_an_answer_raises(fakes: Fakes, reply: bytes, text: str) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await f.frame()
        w.write(reply)
        await w.drain()
        w.close()

    port = await fakes.start(script)
    with pytest.raises(SignOnError, match=text):
        await Client.connect("127.0.0.1", port, "AZNLETS20")


async def test_messages_in_the_same_read_as_the_sign_on_answer_are_delivered_and_acked(
        fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        c = await f.frame()
        w.write(fr.encode_frame(fr.ACK, c.seq, SW) + fr.encode_frame(fr.MESSAGE, 41, b"AM.EARLY"))
        await f.frame()
        await asyncio.sleep(10)

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "NYNLETS00", keep_frames=True)
    assert await c.receive(3) == "AM.EARLY"
    await asyncio.sleep(0.1)
    assert [(x.letter, x.seq) for x in fakes.last.seen] == [("C", 1), ("A", 41)]
    assert c.frames is not None
    assert c.frames.get_nowait() == fr.Frame(fr.MESSAGE, 41, b"AM.EARLY")
    await c.close(sign_off=False)


async def test_the_switch_heartbeat_is_answered_and_not_delivered(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await accept(f, w)
        w.write(fr.encode_frame(fr.HEARTBEAT, 900))
        await f.frame()
        await asyncio.sleep(10)

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "AZNLETS20")
    for _ in range(50):
        if len(fakes.last.seen) == 2:
            break
        await asyncio.sleep(0.05)
    assert [(x.letter, x.seq) for x in fakes.last.seen] == [("C", 1), ("H", 900)]
    assert c.inbox.empty() and not c.closed.is_set()
    await c.close(sign_off=False)


async def test_a_client_heartbeat_without_answer_closes_the_link(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await accept(f, w)
        await f.frame()
        await f.frame()  # the client's H, never answered
        await asyncio.sleep(10)

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "AZNLETS20", heartbeat_interval=0.2,
                             heartbeat_timeout=0.2)
    pending = c.send_nowait("AM.NEVER.ANSWERED")
    await asyncio.wait_for(c.closed.wait(), 3)
    assert "heartbeat" in c.close_reason
    assert [x.letter for x in fakes.last.seen] == ["C", "M", "H"]
    with pytest.raises(ConnectionError):
        await pending
    await c.close()


async def test_an_answered_client_heartbeat_keeps_the_link(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await accept(f, w)
        while True:
            h = await f.frame()
            if h.type == fr.HEARTBEAT:
                w.write(fr.encode_frame(fr.HEARTBEAT, h.seq))

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "AZNLETS20", heartbeat_interval=0.1,
                             heartbeat_timeout=0.2)
    await asyncio.sleep(0.8)
    asked = [x.seq for x in fakes.last.seen if x.type == fr.HEARTBEAT]
    assert len(asked) >= 3 and asked == sorted(set(asked))  # each H numbered anew
    assert not c.closed.is_set()
    await c.close(sign_off=False)


async def test_a_broken_stream_closes_the_link_and_fails_what_waits(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await accept(f, w)
        await f.frame()
        w.write(fr.encode_frame(fr.MESSAGE, 5, b"AM.BEFORE") + b"\x00\x00\x00\x03XYZ")
        await asyncio.sleep(10)

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "AZNLETS20")
    pending = c.send_nowait("AM.X")
    await asyncio.wait_for(c.closed.wait(), 3)
    assert c.close_reason == "framing error"
    with pytest.raises(ConnectionError, match="framing error"):
        await pending
    assert await c.receive(0.1) == "AM.BEFORE"  # what came before the break is kept
    with pytest.raises(ConnectionError):
        await c.receive(0.1)
    with pytest.raises(ConnectionError):  # gone: a send fails at once, not after its time-out
        await c.send("AM.AFTER", timeout=10)
    await c.close()


async def test_sign_off_sends_d_and_waits_for_the_switch_to_close(fakes: Fakes) -> None:
    async def script(f: Fake, w: asyncio.StreamWriter) -> None:
        await accept(f, w)
        d = await f.frame()
        assert d.type == fr.SIGN_OFF
        await asyncio.sleep(0.2)
        w.write(fr.encode_frame(fr.ACK, d.seq))
        await w.drain()
        w.close()

    port = await fakes.start(script)
    c = await Client.connect("127.0.0.1", port, "AZNLETS20", keep_frames=True)
    await c.close()
    assert c.closed.is_set() and c.close_reason == "closed by switch"
    assert [(x.letter, x.seq) for x in fakes.last.seen] == [("C", 1), ("D", 2)]
    assert c.frames is not None and c.frames.get_nowait() == fr.Frame(fr.ACK, 2)
