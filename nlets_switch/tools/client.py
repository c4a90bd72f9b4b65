"""An asyncio client of the switch: signs on as an ORI, sends messages, receives.

Used by ``nlets-switch send``, the terminal, the scenario runner, the
out-of-process responders, the benchmark and the tests. The protocol itself
(PROTOCOL part 1 from the endpoint's side: numbering, sign-on and sign-off,
matching each ``A``/``N`` to what was sent, answering heartbeats, framing
errors) is :class:`~nlets_switch.core.link.Link` in the endpoint role, the
same object the switch drives for its side. This module only moves bytes
between the socket and that object, runs its timer, and hands messages and
answers to the caller: every ``M`` is acknowledged once it is queued for the
caller (or, past ``max_inbox`` unread, once the caller reads).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from dataclasses import dataclass

from nlets_switch.core import link as lk
from nlets_switch.errors import NletsError
from nlets_switch.wire import frames as fr

__all__ = ["Answer", "Client", "SignOnError"]

#: Bytes asked of the socket per read.
_READ = 65536


class SignOnError(NletsError):
    """The switch refused the sign-on (``N .01. SIGN-ON REJECTED``) or hung up."""


@dataclass(frozen=True, slots=True)
class Answer:
    """The switch's link-level answer to one ``M``: ``A`` or ``N`` with its text."""

    ok: bool
    seq: int
    text: str


class Client:
    """One link to the switch. Use :meth:`connect`, then :meth:`send` and :meth:`receive`.

    ``link`` is the protocol object (endpoint role). The client answers the
    switch's heartbeats; with ``heartbeat_interval`` it also sends its own
    ``H`` after that many idle seconds and closes the link when the answer
    does not come within ``heartbeat_timeout``.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, ori: str,
                 max_frame: int = fr.DEFAULT_MAX_FRAME, auto_ack: bool = True,
                 max_inbox: int = 1000, heartbeat_interval: float | None = None,
                 heartbeat_timeout: float = 10.0) -> None:
        self.reader = reader
        self.writer = writer
        self.ori = ori
        self.auto_ack = auto_ack
        self._loop = asyncio.get_running_loop()
        self.link = lk.Link(lk.Role.ENDPOINT, self._loop.time(), max_frame=max_frame,
                            heartbeat_interval=heartbeat_interval,
                            heartbeat_timeout=heartbeat_timeout)
        self._answers: dict[int, asyncio.Future[Answer]] = {}
        self.inbox: asyncio.Queue[str] = asyncio.Queue()
        # With auto_ack, a message is acknowledged on arrival while the inbox
        # has room; past ``max_inbox`` unread ones, only when the application
        # reads, so the switch's window holds the rest back (bounded memory).
        self.max_inbox = max_inbox
        self._unacked: deque[int] = deque()
        #: Every M, A and N frame received, for tools that want to see them
        #: (heartbeats are answered by the link and not shown).
        self.frames: asyncio.Queue[fr.Frame] | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()
        self.close_reason = ""

    @classmethod
    async def connect(cls, host: str, port: int, ori: str, credential: str | None = None,
                      ssl_context: ssl.SSLContext | None = None, timeout: float = 5.0,
                      auto_ack: bool = True, keep_frames: bool = False,
                      heartbeat_interval: float | None = None,
                      heartbeat_timeout: float = 10.0) -> Client:
        """Connect and sign on; raises SignOnError when refused."""
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=ssl_context,
                server_hostname=host if ssl_context is not None else None)
            self = cls(reader, writer, ori, auto_ack=auto_ack,
                       heartbeat_interval=heartbeat_interval,
                       heartbeat_timeout=heartbeat_timeout)
            if keep_frames:
                self.frames = asyncio.Queue()
            try:
                rest = await self._sign_on(credential)
            except BaseException:
                writer.close()
                raise
        self._handle(rest)
        self._flush()
        self._reader_task = asyncio.create_task(self._read(), name=f"client-{ori}")
        return self

    async def _sign_on(self, credential: str | None) -> list[lk.LinkEvent]:
        """Send the ``C`` and read until the link says how it was answered.

        Returns the events that came after the answer in the same reads.
        """
        link = self.link
        link.send_sign_on(self.ori, credential)
        self._flush()
        while True:
            data = await self.reader.read(_READ)
            if not data:
                link.receive_eof()
                raise SignOnError("connection closed during sign-on")
            events = link.receive_data(data, self._loop.time())
            for i, ev in enumerate(events):
                if isinstance(ev, lk.SignedOn):
                    return events[i + 1:]
                if isinstance(ev, lk.SignOnRefused):
                    raise SignOnError(ev.reason or "sign-on refused")
                if isinstance(ev, lk.FramingError):
                    raise SignOnError(f"framing error during sign-on ({ev.error.wire})")

    def _flush(self) -> None:
        """Write what the link queued (frames of ours, its answers to heartbeats)."""
        out = self.link.data_to_send()
        if out:
            self.writer.write(b"".join(out))

    async def _read(self) -> None:
        link = self.link
        loop = self._loop
        try:
            while link.takes_input:
                deadline = link.next_deadline()
                try:
                    async with asyncio.timeout_at(deadline):
                        data = await self.reader.read(_READ)
                except TimeoutError:
                    self._handle(link.handle_timer(loop.time()))
                    self._flush()
                    continue
                if not data:
                    link.receive_eof()
                    self.close_reason = "closed by switch"
                    break
                self._handle(link.receive_data(data, loop.time()))
                self._flush()
            if not self.close_reason:
                # Signed off: the switch closes the link after the A of our D.
                while await self.reader.read(_READ):
                    pass
                self.close_reason = "closed by switch"
        except (ConnectionError, OSError) as e:
            self.close_reason = type(e).__name__
        finally:
            link.close()
            self.closed.set()
            for fut in self._answers.values():
                if not fut.done():
                    fut.set_exception(ConnectionError(self.close_reason or "closed"))
            self._answers.clear()

    def _handle(self, events: list[lk.LinkEvent]) -> None:
        for ev in events:
            if isinstance(ev, lk.MessageReceived):
                if self.frames is not None:
                    self.frames.put_nowait(fr.Frame(fr.MESSAGE, ev.seq, ev.body))
                self.inbox.put_nowait(ev.body.decode("ascii", "replace"))
                if self.auto_ack:
                    if self.inbox.qsize() <= self.max_inbox and not self._unacked:
                        self.link.send_ack(ev.seq)
                    else:
                        self._unacked.append(ev.seq)
            elif isinstance(ev, lk.Acked | lk.Naked):
                ok = isinstance(ev, lk.Acked)
                if self.frames is not None:
                    self.frames.put_nowait(fr.Frame(fr.ACK if ok else fr.NAK, ev.seq, ev.body))
                fut = self._answers.pop(ev.seq, None)
                if fut is not None and not fut.done():
                    fut.set_result(Answer(ok, ev.seq, ev.body.decode("ascii", "replace")))
            elif isinstance(ev, lk.SignedOff):
                if self.frames is not None:
                    self.frames.put_nowait(fr.Frame(fr.ACK, ev.seq))
            elif isinstance(ev, lk.FramingError):
                self.close_reason = "framing error"
            elif isinstance(ev, lk.TimedOut):
                self.close_reason = f"no answer to heartbeat ({ev.what})"

    def send_nowait(self, text: str | bytes) -> asyncio.Future[Answer]:
        """Send one message; the future resolves with the switch's A or N."""
        body = text.encode("ascii", "replace") if isinstance(text, str) else text
        fut: asyncio.Future[Answer] = self._loop.create_future()
        if self.closed.is_set():
            fut.set_exception(ConnectionError(self.close_reason or "closed"))
            return fut
        self._answers[self.link.send_message(body)] = fut
        self._flush()
        return fut

    async def send(self, text: str | bytes, timeout: float = 10.0) -> Answer:
        """Send one message and wait for its A or N."""
        fut = self.send_nowait(text)
        async with asyncio.timeout(timeout):
            return await fut

    def send_frame(self, ftype: int, body: bytes = b"", seq: int | None = None) -> int:
        """Send any frame (tests and tools); returns its seq."""
        s = self.link.send_frame(ftype, body, seq)
        self._flush()
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
            self.link.send_ack(self._unacked.popleft())
        self._flush()
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
        """Sign off (``D``, and wait for the switch to close), then close."""
        if sign_off and not self.closed.is_set():
            with contextlib.suppress(Exception):
                self.link.send_sign_off()
                self._flush()
                async with asyncio.timeout(2):
                    await self.writer.drain()
                    await self.closed.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(BaseException):
                await self._reader_task
        self.link.close()
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
