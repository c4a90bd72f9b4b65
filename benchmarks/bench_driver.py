"""The traffic of benchmarks/bench_switch.py: driver processes and their links.

Each driver process signs on its share of the control terminals: *inquirers*
send ``DQ`` to the answerers' states, *answerers* acknowledge every delivery
and answer each ``DQ`` with a ``DR`` to its inquirer, repeating the control
field. Latency is the inquirer's round trip, ``DQ`` to its ``DR``.

Two ways to send the ``DQ``:

* **closed loop** (default): each inquirer keeps ``inflight`` inquiries
  outstanding and sends the next when a ``DR`` comes back, so the rate is
  whatever the server sustains;
* **open loop** (``rate``): inquiries leave on a fixed schedule (the
  process's share of ``--rate``, round the inquirers) whatever comes back.
  The round trip is measured from the *scheduled* time, so a driver or server
  that falls behind shows in the latency instead of hiding in a lower rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time
from array import array
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import bench_xml  # beside this file (benchmarks/ is not a package)

from nlets_switch.errors import FrameError
from nlets_switch.wire import frames as fr

#: Text of every inquiry: the smallest valid DQ (FIELDS.md: OLN alone).
DQ_TEXT = "OLN/D11111111"
#: Text of every answer: free text, about a short real DR's size.
DR_TEXT = ("NAM/SMITH,JOHN.DOB/19500101.SEX/M.OLN/D11111111.\n"
           "LICENSE STATUS: VALID. CLASS: D. EXPIRES: 20300101")

_C_M = fr.MESSAGE
_C_A = fr.ACK
_C_N = fr.NAK
_C_H = fr.HEARTBEAT
#: The open-loop pacer wakes every millisecond (the loops' timer resolution;
#: a shorter sleep would spin). What is due goes at once, stamped with its
#: scheduled time, so this pacing costs the measured round trip up to 1 ms.
_PACE_TICK = 0.001


def runner() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    """uvloop's ``run`` when installed, else asyncio's."""
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


@dataclass
class Plan:
    """What one driver process does."""

    host: str
    port: int
    inquirers: list[str]
    answer_states: list[str]
    answerers: list[str]
    inflight: int
    warmup: float
    seconds: float
    messages: int  # 0: run for ``seconds``; else stop once this many are counted
    max_seconds: float
    rate: float = 0.0  # DQ per second from this process; 0: closed loop
    xml: bool = False  # the inquirers send and receive XML documents (--format xml)


@dataclass
class Run:
    """Counters of one driver process, shared by its links."""

    plan: Plan
    measuring: bool = False
    sending: bool = True
    count: int = 0
    t_start: float = 0.0
    t_end: float = 0.0
    latencies: array[float] = field(default_factory=lambda: array("d"))
    errors: int = 0
    naks: int = 0
    nak_reasons: list[str] = field(default_factory=list)
    outstanding: int = 0
    #: DQ sent in the measured window, and how many of those had their DR.
    sent_measured: int = 0
    answered_measured: int = 0
    done: asyncio.Event = field(default_factory=asyncio.Event)
    drained: asyncio.Event = field(default_factory=asyncio.Event)

    def routed(self, now: float) -> None:
        """One message delivered to a driver link."""
        if self.measuring:
            self.count += 1
            if self.plan.messages and self.count >= self.plan.messages:
                self.stop(now)

    def stop(self, now: float) -> None:
        """End of the measured window: stop counting and sending."""
        if self.measuring:
            self.measuring = False
            self.t_end = now
        self.sending = False
        self.done.set()


def _sender_and_control(body: bytes) -> tuple[bytes, bytes, bytes | None]:
    """Key, sender and control of a delivered message, from either header form.

    The switch delivers the output header of PROTOCOL part 3; the bare relay
    forwards the input header of part 2 unchanged. An XML link gets documents.
    """
    if body[:1] == b"<":
        return bench_xml.header(body)
    first, _, rest = body.partition(b"\n")
    if first.endswith(b".TXT"):
        parts = first.split(b".")
        ctl = parts[3][1:] if len(parts) > 4 and parts[3][:1] == b"*" else None
        return parts[0], parts[1], ctl
    key, _, sender = first.partition(b".")
    lines = rest.split(b"\n", 3)
    ctl = lines[2][1:] if len(lines) > 2 and lines[2][:1] == b"*" else None
    return key, sender, ctl


class DriverLink(asyncio.Protocol):
    """One control terminal of the driver: an inquirer or an answerer."""

    def __init__(self, run: Run, ori: str, inquirer: bool, states: list[str]) -> None:
        self.run = run
        self.ori = ori
        self.ori_b = ori.encode()
        self.inquirer = inquirer
        self.states = [s.encode() for s in states]
        self.next_state = 0
        self.buf = fr.FrameBuffer()
        self.seq = 0
        self.ctl = 0
        #: control -> (time sent, or scheduled in the open loop; sent while measuring)
        self.sent: dict[bytes, tuple[float, bool]] = {}
        self.signed_on: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.xml = (bench_xml.Inquiries(ori, states, DQ_TEXT) if inquirer and run.plan.xml
                    else None)
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.Event()
        self.out: list[bytes] = []

    # -- frames -------------------------------------------------------------

    def _frame(self, ftype: int, body: bytes) -> None:
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.out.append(fr.encode_frame(ftype, self.seq, body))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Sign on."""
        # uvloop's transports do not subclass asyncio.Transport; same interface.
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._frame(fr.SIGN_ON, self.ori_b)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        """The link ended."""
        self.lost.set()
        if not self.signed_on.done():
            self.signed_on.set_exception(ConnectionError("closed during sign-on"))

    def flush(self) -> None:
        """Write the frames gathered since the last flush."""
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(self.out)
        self.out = []

    def send_inquiry(self, at: float) -> None:
        """One DQ to the next answerer's state, with a fresh control field."""
        self.ctl += 1
        ctl = b"%d" % self.ctl
        st = self.states[self.next_state]
        self.next_state = (self.next_state + 1) % len(self.states)
        run = self.run
        self.sent[ctl] = (at, run.measuring)
        if run.measuring:
            run.sent_measured += 1
        run.outstanding += 1
        if self.xml is not None:
            self._frame(_C_M, self.xml.document(st, ctl))
            return
        self._frame(_C_M, b"DQ.%s.%s.*%s.TXT\n%s" % (self.ori_b, st, ctl, DQ_TEXT.encode()))

    def start(self) -> None:
        """Fill the in-flight budget (inquirers, closed loop)."""
        if self.inquirer:
            now = time.monotonic()
            for _ in range(self.run.plan.inflight):
                self.send_inquiry(now)
            self.flush()

    def data_received(self, data: bytes) -> None:
        """Frames in: acknowledge deliveries, answer or measure them."""
        run = self.run
        try:
            frames = self.buf.feed(data)
        except FrameError:
            run.errors += 1
            if self.transport is not None:
                self.transport.close()
            return
        now = time.monotonic()
        for f in frames:
            t = f.type
            if t == _C_M:
                # Acknowledge first: the switch's window frees as soon as possible.
                self.out.append(fr.encode_frame(_C_A, f.seq))
                key, sender, ctl = _sender_and_control(f.body)
                if key == b"DQ" and ctl is not None:
                    run.routed(now)
                    self._frame(_C_M, b"DR.%s.%s.*%s.TXT\n%s" % (
                        self.ori_b, sender, ctl, DR_TEXT.encode()))
                elif key == b"DR" and ctl is not None:
                    sent = self.sent.pop(ctl, None)
                    if sent is None:
                        continue  # a duplicate after a reconnect: not counted twice
                    t0, measured = sent
                    run.outstanding -= 1
                    if measured:
                        run.latencies.append(now - t0)
                        run.answered_measured += 1
                    run.routed(now)
                    if run.sending and not run.plan.rate:
                        self.send_inquiry(now)
                    elif not run.sending and run.outstanding <= 0:
                        run.drained.set()
                else:
                    run.errors += 1  # ER or SM from the switch: the traffic is wrong
            elif t == _C_A:
                if not self.signed_on.done():
                    self.signed_on.set_result(True)
            elif t == _C_N:
                run.naks += 1
                if len(run.nak_reasons) < 5:
                    run.nak_reasons.append(f.body.decode("ascii", "replace"))
                if not self.signed_on.done():
                    self.signed_on.set_exception(ConnectionError(f.body.decode("ascii", "replace")))
            elif t == _C_H:
                self.out.append(fr.encode_frame(_C_H, f.seq))
        self.flush()

    def sign_off(self) -> None:
        """``D`` and close."""
        if self.transport is not None and not self.transport.is_closing():
            self._frame(fr.SIGN_OFF, b"")
            self.flush()


async def pace(run: Run, inquirers: list[DriverLink], rate: float) -> None:
    """Open loop: DQ number k leaves at t0 + k/rate, round the inquirers, until stopped.

    Whatever is due when the pacer wakes goes at once (one write per link),
    stamped with its scheduled time.
    """
    t0 = time.monotonic()
    k = i = 0
    n = len(inquirers)
    while run.sending:
        now = time.monotonic()
        due = int((now - t0) * rate) + 1
        touched: set[DriverLink] = set()
        while k < due:
            link = inquirers[i]
            i = (i + 1) % n
            link.send_inquiry(t0 + k / rate)
            touched.add(link)
            k += 1
        for link in touched:
            link.flush()
        await asyncio.sleep(_PACE_TICK)


async def drive(plan: Plan, conn: Connection) -> dict[str, Any]:
    """Sign on, wait for the common start, send, measure, drain, sign off."""
    loop = asyncio.get_running_loop()
    run = Run(plan)
    links: list[DriverLink] = []
    for ori in plan.answerers:
        links.append(DriverLink(run, ori, False, []))
    inquirers = [DriverLink(run, ori, True, plan.answer_states) for ori in plan.inquirers]
    links += inquirers
    for link in links:
        await loop.create_connection(lambda link=link: link, plan.host, plan.port)  # type: ignore[misc]
    await asyncio.wait_for(asyncio.gather(*(link.signed_on for link in links)), 30)
    # The driver's own garbage collections would show as the server's latency:
    # what exists now is never collected, and young collections are rarer.
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    conn.send(("ready",))
    # Every driver process has signed on all its links before anyone sends:
    # a DQ to a state whose terminal is not yet on would be dropped (SM .03).
    _go, t_go = await asyncio.to_thread(conn.recv)
    await asyncio.sleep(max(0.0, t_go - time.monotonic()))
    cpu0 = time.process_time()
    pacer: asyncio.Task[None] | None = None
    if plan.rate:
        pacer = asyncio.create_task(pace(run, inquirers, plan.rate))
    else:
        for link in inquirers:
            link.start()
    await asyncio.sleep(plan.warmup)
    run.measuring = True
    run.t_start = time.monotonic()
    cpu1 = time.process_time()
    limit = plan.max_seconds if plan.messages else plan.seconds
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run.done.wait(), limit)
    run.stop(time.monotonic())
    cpu2 = time.process_time()
    if pacer is not None:
        await pacer
    if run.outstanding > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.drained.wait(), 10)
    for link in links:
        link.sign_off()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(link.lost.wait() for link in links)), 5)
    for link in links:
        if link.transport is not None:
            link.transport.close()
    return {
        "count": run.count, "t_start": run.t_start, "t_end": run.t_end,
        "latencies": run.latencies.tobytes(), "errors": run.errors, "naks": run.naks,
        "nak_reasons": run.nak_reasons, "sent": run.sent_measured,
        "answered": run.answered_measured,
        "lost": run.outstanding, "cpu_s": cpu2 - cpu1, "cpu_warm_s": cpu1 - cpu0,
    }


def driver_main(plan: Plan, conn: Connection) -> None:
    """A driver process: run :func:`drive` and send its figures back."""
    try:
        result = runner()(drive(plan, conn))
        conn.send(("result", result))
    except BaseException as e:  # reported to the parent, which fails the run
        conn.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        conn.close()
