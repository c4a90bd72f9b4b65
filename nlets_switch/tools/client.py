"""An asyncio client of the switch: signs on as an ORI, sends messages, receives.

Used by ``nlets-switch send``, the terminal, the scenario runner, the
out-of-process responders, the benchmark and the tests. It speaks PROTOCOL
part 1 from the endpoint's side: sign-on first, every ``M`` it receives is
acknowledged once it is queued for the caller, heartbeats are answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass

from nlets_switch.errors import FrameError, NletsError
from nlets_switch.wire import frames as fr


class SignOnError(NletsError):
    """The switch refused the sign-on (``N .01. SIGN-ON REJECTED``) or hung up."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The switch's link-level answer to one ``M``: ``A`` or ``N`` with its text."""

    ok: bool
    seq: int
    text: str


class Client:
    """One link to the switch. Use :meth:`connect`, then :meth:`send` and :meth:`receive`."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ori: str,
                 max_frame: int = fr.DEFAULT_MAX_FRAME, auto_ack: bool = True,
                 max_inbox: int = 1000) -> None:
        self.reader = reader
        self.writer = writer
        self.ori = ori
        self.auto_ack = auto_ack
        self._buf = fr.FrameBuffer(max_frame)
        self._seq = 0
        self._answers: dict[int, asyncio.Future[Answer]] = {}
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        # With auto_ack, a message is acknowledged on arrival while the inbox
        # has room; past ``max_inbox`` unread ones, only when the application
        # reads, so the switch's window holds the rest back (bounded memory).
        self.max_inbox = max_inbox
        self._unacked: deque[int] = deque()
        #: Every frame received, for tools that want to show them all.
        self.frames: asyncio.Queue[fr.Frame] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""

    @classmethod
    async def connect(cls, host: str, port: int, ori: str, credential: str | None = None,
                      ssl_context: ssl.SSLContext | None = None, timeout: float = 5.0,
                      auto_ack: bool = True, keep_frames: bool = False) -> Client:
        """Connect and sign on; raises SignOnError when refused."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None)
            self = cls(reader, writer, ori, auto_ack=auto_ack)
            if keep_frames:
                self.frames = asyncio.Queue()
            body = ori if credential is None else f"{ori} {credential}"
            seq = self._next_seq()
            writer.write(fr.encode_frame(fr.SIGN_ON, seq, body.encode()))
            while True:
                data = await reader.read(65536)
                if not data:
                    writer.close()
                    raise SignOnError("connection closed during sign-on")
                got = self._buf.feed(data)
                if got:
                    break
            first, rest = got[0], got[1:]
            if first.type != fr.ACK:
                writer.close()
                raise SignOnError(first.body.decode("ascii", "replace") or "sign-on refused")
        for f in rest:
            self._handle(f)
        self._reader_task = asyncio.create_task(self._read(), name=f"client-{ori}")
        return self

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        return self._seq

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    self.close_reason = "closed by switch"
                    break
                for f in self._buf.feed(data):
                    self._handle(f)
                if self._buf.failed:
                    self.close_reason = "framing error"
                    break
        except (ConnectionError, OSError, FrameError) as e:
            self.close_reason = type(e).__name__
        finally:
            self.closed.set()
            for fut in self._answers.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(self.close_reason or "closed"))
            self._answers.clear()

    def _handle(self, f: fr.Frame) -> None:
        if self.frames is not None:
            self.frames.put_nowait(f)
        if f.type in (fr.ACK, fr.NAK):
            fut = self._answers.pop(f.seq, None)
            if fut is not None and not fut.done():
                fut.set_result(Answer(f.type == fr.ACK, f.seq, f.body.decode("ascii", "replace")))
        elif f.type == fr.MESSAGE:
            self.inbox.put_nowait(f.body.decode("ascii", "replace"))
            if self.auto_ack:
                if self.inbox.qsize() <= self.max_inbox and not self._unacked:
                    self.writer.write(fr.encode_frame(fr.ACK, f.seq))
                else:
                    self._unacked.append(f.seq)
        elif f.type == fr.HEARTBEAT:
            self.writer.write(fr.encode_frame(fr.HEARTBEAT, f.seq))

    def send_nowait(self, text: str | bytes) -> asyncio.Future[Answer]:
        """Send one message; the future resolves with the switch's A or N."""
        body = text.encode("ascii", "replace") if isinstance(text, str) else text
        seq = self._next_seq()
        fut: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        self._answers[seq] = fut
        self.writer.write(fr.encode_frame(fr.MESSAGE, seq, body))
        return fut

    async def send(self, text: str | bytes, timeout: float = 10.0) -> Answer:
        """Send one message and wait for its A or N."""
        fut = self.send_nowait(text)
        async with asyncio.timeout(timeout):
            return await fut

    def send_frame(self, ftype: int, body: bytes = b"", seq: int | None = None) -> int:
        """Send any frame (tests and tools); returns its seq."""
        s = self._next_seq() if seq is None else seq
        self.writer.write(fr.encode_frame(ftype, s, body))
        return s

    async def receive(self, timeout: float | None = 5.0) -> str:
        """The next message delivered to this ORI (its output text).

        Raises TimeoutError after ``timeout`` seconds (None: wait for ever) and
        ConnectionError when the link is closed and nothing is left to read.
        """
        if not self.inbox.empty():
            return self._took(self.inbox.get_nowait())
        if self.closed.is_set():
            raise ConnectionError(self.close_reason or "closed")
        get = asyncio.ensure_future(self.inbox.get())
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            done, _ = await asyncio.wait({get, closed}, timeout=timeout,
                                         return_when=asyncio.FIRST_COMPLETED)
        finally:
            closed.cancel()
            if not get.done():
                get.cancel()
        if get in done:
            return self._took(get.result())
        if closed in done:
            raise ConnectionError(self.close_reason or "closed")
        raise TimeoutError()

    def _took(self, text: str) -> str:
        # The application read one: acknowledge what waited for room.
        while self._unacked and self.inbox.qsize() < self.max_inbox:
            self.writer.write(fr.encode_frame(fr.ACK, self._unacked.popleft()))
        return text

    async def drain(self, quiet: float = 0.3) -> list[str]:
        """Every message that arrives until none has come for ``quiet`` seconds."""
        out = []
        while True:
            try:
                out.append(await self.receive(quiet))
            except (TimeoutError, ConnectionError):
                return out

    async def close(self, sign_off: bool = True) -> None:
        """Sign off (``D``) and close."""
        if sign_off and not self.closed.is_set():
            with contextlib.suppress(Exception):
                self.send_frame(fr.SIGN_OFF)
                async with asyncio.timeout(2):
                    await self.writer.drain()
                    await self.closed.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
