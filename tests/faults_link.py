"""A raw link for the fault tests: every frame seen, every answer kept, resets noticed.

:class:`RawLink` signs on, sends ``M`` frames keeping at most ``window`` of
them unanswered, acknowledges every ``M`` it receives (keeping its body),
and records how the connection ended: closed by the switch (EOF) or reset.
The tools' client hides exactly what these tests count.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nlets_switch.wire import frames as fr


async def until(condition: Callable[[], bool], timeout: float, step: float = 0.01) -> bool:
    """Poll ``condition`` (another task's counts) until true or ``timeout``; its last value."""
    for _ in range(max(1, int(timeout / step))):
        if condition():
            return True
        await asyncio.sleep(step)
    return condition()


class RawLink:
    """One endpoint's link, played by hand."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 ori: str) -> None:
        self.reader = reader
        self.writer = writer
        self.ori = ori
        self.seq = 1
        #: seq -> (letter, body) of the switch's answer to each M sent.
        self.answers: dict[int, tuple[str, bytes]] = {}
        self.sent: list[int] = []
        #: Bodies of the M frames the switch delivered (each acknowledged).
        self.received: list[bytes] = []
        self.sign_offs = 0
        self.eof = False
        self.reset = False
        self.ack = True
        self._answered = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def connect(cls, port: int, ori: str) -> RawLink:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        link = cls(reader, writer, ori)
        writer.write(fr.encode_frame(fr.SIGN_ON, 1, ori.encode()))
        buf = fr.FrameBuffer()
        while True:
            data = await asyncio.wait_for(reader.read(65536), 10)
            assert data, "closed during sign-on"
            frames = buf.feed(data)
            if frames:
                assert frames[0].letter == "A", frames[0]
                break
        link._buf = buf
        link._task = asyncio.create_task(link._read(frames[1:]))
        return link

    _buf: fr.FrameBuffer

    @property
    def unanswered(self) -> int:
        return len(self.sent) - len(self.answers)

    @property
    def ended(self) -> bool:
        return self.eof or self.reset

    def send(self, text: str) -> int:
        self.seq += 1
        self.sent.append(self.seq)
        self.writer.write(fr.encode_frame(fr.MESSAGE, self.seq, text.encode()))
        return self.seq

    async def send_all(self, texts: list[str], window: int) -> None:
        """Send every text, at most ``window`` unanswered at a time, until the link ends."""
        for text in texts:
            while self.unanswered >= window and not self.ended:
                self._answered.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._answered.wait(), 1)
            if self.ended:
                return
            try:
                self.send(text)
                await self.writer.drain()
            except ConnectionError:
                self.reset = True
                return

    async def wait_answers(self, timeout: float) -> None:
        """Until every M sent is answered or the link ended."""
        loop = asyncio.get_running_loop()
        end = loop.time() + timeout
        while self.unanswered and not self.ended and loop.time() < end:
            self._answered.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._answered.wait(), 0.2)

    async def wait_end(self, timeout: float) -> None:
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), timeout)

    async def _read(self, first: list[fr.Frame]) -> None:
        self._frames(first)
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.eof = True
                    break
                self._frames(self._buf.feed(data))
        except ConnectionError:
            self.reset = True
        finally:
            self._answered.set()

    def _frames(self, frames: list[fr.Frame]) -> None:
        out = []
        for f in frames:
            if f.letter in ("A", "N") and f.seq > 1:
                self.answers[f.seq] = (f.letter, f.body)
                self._answered.set()
            elif f.letter == "M":
                self.received.append(f.body)
                if self.ack:
                    out.append(fr.encode_frame(fr.ACK, f.seq))
            elif f.letter == "H":
                out.append(fr.encode_frame(fr.HEARTBEAT, f.seq))
            elif f.letter == "D":
                self.sign_offs += 1
        if out and not self.writer.is_closing():
            self.writer.write(b"".join(out))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
