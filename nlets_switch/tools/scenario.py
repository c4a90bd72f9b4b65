"""Conformance scenarios: a plain-text script of connections, sends and expects.

In the spirit of QuickFIX's acceptance ``.def`` files and jPOS's client
simulator. A scenario names connections that sign on as ORIs, sends
messages on them and states the whole messages each must receive (output
header included), with macros and patterns for the volatile parts. The
format is documented in docs/scenarios.md; in short::

    title AM from AZ to NY carries the output header
    connect az AZNLETS20
    connect ny NYNLETS00
    send az AM.AZNLETS20.NY.*C1.TXT HELLO
    expect ny <<
    AM.AZNLETS20
    {TIME} {NUM}
    {TIME} {NUM} NYNLETS00
    *C1
    TXT
    HELLO
    .
    expect-nothing az 0.3

Three modules: :mod:`~nlets_switch.tools.scenario_template` (expected text,
pure), :mod:`~nlets_switch.tools.scenario_parse` (the script, pure) and this
one, which runs it. :func:`run_scenario` drives real links: signed-on ones
through :class:`~nlets_switch.tools.client.Client`, ``raw`` ones through a
:class:`~nlets_switch.core.scripted_link.ScriptedLink`, on which the script itself
plays the protocol (frames before sign-on, heartbeats left unanswered).
Either way the link protocol is the one :class:`~nlets_switch.core.link.Link`
object the switch uses too. :func:`run_with_switch` starts a switch of its
own for one scenario. The names of the other two modules are exported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from nlets_switch.core.link import FramingError
from nlets_switch.core.scripted_link import ScriptedLink
from nlets_switch.errors import LinkError, MessageError
from nlets_switch.tools.client import Answer, Client, SignOnError
from nlets_switch.tools.scenario_parse import (
    DEFAULT_TIMEOUT,
    Scenario,
    Step,
    find_scenarios,
    load_scenario,
    parse_scenario,
    xml_form,
)
from nlets_switch.tools.scenario_template import (
    MACROS,
    SKIP_LINES,
    ScenarioError,
    Template,
    expand,
)
from nlets_switch.wire import frames as fr

__all__ = [
    "DEFAULT_TIMEOUT", "MACROS", "SKIP_LINES", "Result", "Scenario", "ScenarioError", "Step",
    "StepFailed", "Template", "expand", "find_scenarios", "load_scenario", "parse_scenario",
    "run_scenario", "run_with_switch",
]


@dataclass(slots=True)
class Result:
    """What became of one scenario."""

    path: str
    title: str
    ok: bool
    seconds: float
    failure: str = ""      # one line: the step and what went wrong
    detail: str = ""       # the diff or the messages left over
    xfail: str | None = None

    @property
    def status(self) -> str:
        """``pass``, ``fail``, ``xfail`` (failed as expected) or ``xpass``."""
        if self.xfail is None:
            return "pass" if self.ok else "fail"
        return "xpass" if self.ok else "xfail"

    @property
    def counts_as_failure(self) -> bool:
        """Whether the run should exit non-zero for this scenario."""
        return self.status in ("fail", "xpass")


class StepFailed(Exception):
    """A step did not get what it expected."""

    def __init__(self, summary: str, detail: str = "") -> None:
        super().__init__(summary)
        self.summary = summary
        self.detail = detail


class _RawLink:
    """A TCP link without sign-on, on which the script plays the protocol by hand.

    Its protocol object is a :class:`ScriptedLink`: it numbers and frames
    what the script sends and hands back every frame the switch sends,
    answering nothing and deciding nothing.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self._loop = asyncio.get_running_loop()
        self.link = ScriptedLink(self._loop.time())
        self.pending: deque[fr.Frame] = deque()
        self.broken: LinkError | None = None

    def send(self, ftype: int, body: bytes) -> None:
        """Send one frame of type ``ftype``, numbered by the link."""
        self.link.send_frame(ftype, body)
        self.writer.write(b"".join(self.link.data_to_send()))

    async def next_frame(self, wait: float) -> fr.Frame | None:
        """The next frame, or None when the peer closed.

        Raises TimeoutError after ``wait`` seconds, and the link's error once
        the frames before a break in the switch's byte stream are read.
        """
        async with asyncio.timeout(wait):
            while not self.pending:
                if self.broken is not None:
                    raise self.broken
                data = await self.reader.read(65536)
                if not data:
                    self.link.receive_eof()
                    return None
                for ev in self.link.receive_data(data, self._loop.time()):
                    if isinstance(ev, FramingError):
                        self.broken = ev.error
                self.pending.extend(self.link.frames_received())
        return self.pending.popleft()

    def close(self) -> None:
        """Drop the connection."""
        self.link.close()
        self.writer.close()


class _XmlTemplate:
    """A template of an XML document: what arrives is compared in canonical form."""

    def __init__(self, tpl: Template) -> None:
        self.tpl = tpl

    @staticmethod
    def _form(text: str) -> str:
        try:
            return xml_form(text) or text
        except (MessageError, LinkError):
            return text  # not well-formed: compared as it is, so the diff shows it

    def match(self, text: str, values: dict[str, str]) -> dict[str, str] | None:
        return self.tpl.match(self._form(text), values)

    def explain(self, text: str, values: dict[str, str]) -> str:
        return self.tpl.explain(self._form(text), values)


_FRAME_TYPES: Final = {"C": fr.SIGN_ON, "A": fr.ACK, "N": fr.NAK, "M": fr.MESSAGE,
                       "H": fr.HEARTBEAT, "D": fr.SIGN_OFF}


class _Run:
    """One scenario being played: its connections, what they hold, the captures."""

    def __init__(self, scn: Scenario, host: str, port: int,
                 progress: Callable[[str], None] | None) -> None:
        self.scn = scn
        self.host = host
        self.port = port
        self.clients: dict[str, Client] = {}
        self.raws: dict[str, _RawLink] = {}
        self.pending: dict[str, list[str]] = {}
        self.answers: dict[str, Answer] = {}
        self.values: dict[str, str] = {}
        self.progress = progress

    def _client(self, s: Step) -> Client:
        c = self.clients.get(s.conn)
        if c is None:
            raise StepFailed(f"line {s.line}: {s.conn} is not connected")
        return c

    def _raw(self, s: Step) -> _RawLink:
        raw = self.raws.get(s.conn)
        if raw is None:
            raise StepFailed(f"line {s.line}: {s.conn} is not a raw link (use: raw {s.conn})")
        return raw

    async def _next(self, name: str, wait: float) -> str:
        """The next message on a connection (kept ones first)."""
        kept = self.pending.setdefault(name, [])
        if kept:
            return kept.pop(0)
        return await self.clients[name].receive(wait)

    async def step(self, s: Step) -> None:
        """Play one step; raises StepFailed when it does not get what it expects."""
        timeout = s.timeout if s.timeout is not None else self.scn.timeout
        where = f"line {s.line}: {s.op} {s.conn}".rstrip()
        await _STEPS[s.op](self, s, timeout, where)

    # -- signed-on links (Client) ------------------------------------------------

    async def _connect(self, s: Step, timeout: float, where: str) -> None:
        if s.conn in self.clients:
            await self.clients.pop(s.conn).close(sign_off=False)
        try:
            self.clients[s.conn] = await Client.connect(
                self.host, self.port, s.args[0], s.opts.get("credential"),
                auto_ack="noack" not in s.opts)
        except SignOnError as e:
            raise StepFailed(f"{where}: sign-on as {s.args[0]} refused: {e}") from None
        self.pending[s.conn] = []

    async def _expect_refused(self, s: Step, timeout: float, where: str) -> None:
        try:
            c = await Client.connect(self.host, self.port, s.args[0], s.opts.get("credential"))
        except SignOnError as e:
            if s.template is not None and s.template.match(str(e), self.values) is None:
                raise StepFailed(f"{where}: refused, but not as expected",
                                 s.template.explain(str(e), self.values)) from None
            return
        await c.close()
        raise StepFailed(f"{where}: sign-on as {s.args[0]} was accepted, expected refusal")

    async def _disconnect(self, s: Step, timeout: float, where: str) -> None:
        c = self._client(s)
        del self.clients[s.conn]
        # disconnect: drop the TCP link without D, as a crash or a cut line would.
        await c.close(sign_off=s.op == "signoff")

    async def _send(self, s: Step, timeout: float, where: str) -> None:
        c = self._client(s)
        text = expand(s.text, self.values, where)
        try:
            ans = await c.send(text, timeout=timeout)
        except (TimeoutError, ConnectionError) as e:
            raise StepFailed(f"{where}: no link answer ({type(e).__name__})") from None
        self.answers[s.conn] = ans
        if not ans.ok and not s.opts.get("_nak"):
            raise StepFailed(f"{where}: the switch answered N {ans.text!r}, expected A")

    async def _expect_nak(self, s: Step, timeout: float, where: str) -> None:
        last = self.answers.pop(s.conn) if s.conn in self.answers else None
        if last is None or last.ok:
            raise StepFailed(f"{where}: the last send was answered "
                             f"{'A' if last else 'nothing'}, expected N")
        if s.template is not None and s.template.match(last.text, self.values) is None:
            raise StepFailed(f"{where}: N text differs",
                             s.template.explain(last.text, self.values))

    async def _expect(self, s: Step, timeout: float, where: str) -> None:
        self._client(s)
        assert s.template is not None
        tpl = _XmlTemplate(s.template) if "xml" in s.opts else s.template
        deadline = asyncio.get_running_loop().time() + timeout
        kept = self.pending.setdefault(s.conn, [])
        if "unordered" in s.opts:
            # Any message received so far (or within the time-out) may be the one.
            scanned = 0
            while True:
                for k in range(scanned, len(kept)):
                    caps = tpl.match(kept[k], self.values)
                    if caps is not None:
                        kept.pop(k)
                        self.values.update(caps)
                        return
                scanned = len(kept)
                left = deadline - asyncio.get_running_loop().time()
                try:
                    kept.append(await self.clients[s.conn].receive(max(left, 0.001)))
                except (TimeoutError, ConnectionError):
                    detail = "\n\n".join(tpl.explain(m, self.values) for m in kept[:1])
                    raise StepFailed(f"{where}: no matching message within {timeout:g} s "
                                     f"({len(kept)} other(s) received)", detail) from None
        try:
            got = await self._next(s.conn, timeout)
        except TimeoutError:
            raise StepFailed(f"{where}: nothing received within {timeout:g} s",
                             "expected:\n" + _indent(s.text)) from None
        except ConnectionError as e:
            raise StepFailed(f"{where}: link closed ({e}) before the message came",
                             "expected:\n" + _indent(s.text)) from None
        caps = tpl.match(got, self.values)
        if caps is None:
            raise StepFailed(f"{where}: the message differs", tpl.explain(got, self.values))
        self.values.update(caps)

    async def _expect_nothing(self, s: Step, timeout: float, where: str) -> None:
        self._client(s)
        wait = s.timeout if s.timeout is not None else 0.5
        kept = self.pending.get(s.conn)
        try:
            got = kept.pop(0) if kept else await self.clients[s.conn].receive(wait)
        except (TimeoutError, ConnectionError):
            return
        raise StepFailed(f"{where}: expected silence, got a message", _indent(got))

    # -- raw links (ScriptedLink) --------------------------------------------------

    async def _open_raw(self, s: Step, timeout: float, where: str) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        self.raws[s.conn] = _RawLink(reader, writer)

    async def _frame(self, s: Step, timeout: float, where: str) -> None:
        raw = self._raw(s)
        ftype = _frame_type(s.args[0], where)
        # latin-1: {xNN} in the body is the byte NN, whatever NN is.
        raw.send(ftype, expand(s.text, self.values, where).encode("latin-1", "replace"))

    async def _expect_frame(self, s: Step, timeout: float, where: str) -> None:
        raw = self._raw(s)
        ftype = _frame_type(s.args[0], where)
        try:
            f = await raw.next_frame(timeout)
        except TimeoutError:
            raise StepFailed(f"{where}: no frame within {timeout:g} s") from None
        except LinkError as e:
            raise StepFailed(f"{where}: the switch sent a broken frame ({e.wire})") from None
        if f is None:
            raise StepFailed(f"{where}: the switch closed the link, expected {s.args[0]}")
        if f.type != ftype:
            raise StepFailed(f"{where}: got frame {chr(f.type)}, expected {s.args[0]}")
        body = f.body.decode("ascii", "replace")
        if s.template is not None and s.template.match(body, self.values) is None:
            raise StepFailed(f"{where}: frame body differs",
                             s.template.explain(body, self.values))

    async def _expect_closed(self, s: Step, timeout: float, where: str) -> None:
        if s.conn in self.raws:
            raw = self.raws[s.conn]
            try:
                while (f := await raw.next_frame(timeout)) is not None:
                    raise StepFailed(f"{where}: got frame {chr(f.type)}, expected the "
                                     "switch to close the link")
            except TimeoutError:
                raise StepFailed(f"{where}: link still open after {timeout:g} s") from None
            except LinkError as e:
                raise StepFailed(f"{where}: the switch sent a broken frame ({e.wire})") from None
            return
        c = self._client(s)
        try:
            async with asyncio.timeout(timeout):
                await c.closed.wait()
        except TimeoutError:
            raise StepFailed(f"{where}: link still open after {timeout:g} s") from None

    async def _sleep(self, s: Step, timeout: float, where: str) -> None:
        await asyncio.sleep(timeout)

    async def close(self) -> None:
        """Sign off every client, drop every raw link."""
        for c in self.clients.values():
            await c.close()
        for r in self.raws.values():
            r.close()

    def leftovers(self) -> str:
        """Messages received and never expected."""
        out: list[str] = []
        for name, c in self.clients.items():
            rest = list(self.pending.get(name, []))
            while not c.inbox.empty():
                rest.append(c.inbox.get_nowait())
            out.extend(f"on {name}:\n{_indent(m)}" for m in rest)
        return "\n".join(out)


#: What each step does (the operations of scenario_parse).
_STEPS: Final[dict[str, Callable[[_Run, Step, float, str], Awaitable[None]]]] = {
    "connect": _Run._connect,
    "expect-refused": _Run._expect_refused,
    "disconnect": _Run._disconnect,
    "signoff": _Run._disconnect,
    "send": _Run._send,
    "expect-nak": _Run._expect_nak,
    "expect": _Run._expect,
    "expect-nothing": _Run._expect_nothing,
    "raw": _Run._open_raw,
    "frame": _Run._frame,
    "expect-frame": _Run._expect_frame,
    "expect-closed": _Run._expect_closed,
    "sleep": _Run._sleep,
}


def _frame_type(letter: str, where: str) -> int:
    if letter not in _FRAME_TYPES:
        raise StepFailed(f"{where}: unknown frame type {letter!r} (C A N M H D)")
    return _FRAME_TYPES[letter]


def _indent(text: str) -> str:
    return "\n".join("    " + ln for ln in text.split("\n"))


def _mark_naks(scn: Scenario) -> None:
    """A ``send`` followed by ``expect-nak`` on its connection may be answered N."""
    last_send: dict[str, Step] = {}
    for s in scn.steps:
        if s.op == "send":
            last_send[s.conn] = s
        elif s.op == "expect-nak" and s.conn in last_send:
            last_send[s.conn].opts["_nak"] = "1"


async def run_scenario(scn: Scenario, host: str, port: int,
                       progress: Callable[[str], None] | None = None) -> Result:
    """Play one scenario against the switch at ``host:port``."""
    _mark_naks(scn)
    run = _Run(scn, host, port, progress)
    t0 = time.monotonic()
    try:
        for s in scn.steps:
            await run.step(s)
        left = run.leftovers()
        if left:
            raise StepFailed("messages received that no step expected", left)
    except StepFailed as e:
        return Result(scn.path, scn.title, False, time.monotonic() - t0, e.summary, e.detail,
                      scn.xfail)
    except ScenarioError as e:
        return Result(scn.path, scn.title, False, time.monotonic() - t0, str(e), "", scn.xfail)
    except (OSError, TimeoutError) as e:
        return Result(scn.path, scn.title, False, time.monotonic() - t0,
                      f"cannot reach the switch: {e}", "", scn.xfail)
    finally:
        await run.close()
    return Result(scn.path, scn.title, True, time.monotonic() - t0, xfail=scn.xfail)


async def run_with_switch(scn: Scenario, base_config: dict[str, Any] | None = None,
                          stopping: list[asyncio.Task[None]] | None = None) -> Result:
    """Start a switch of its own (fresh data directory, free port) and play ``scn``.

    The scenario's ``config`` (else ``base_config``, else the demo world) is
    the switch's configuration; its listeners and data directory are replaced.
    With ``stopping``, the switch is stopped (and its directory removed) in a
    task added to that list, so the next scenario need not wait for it: the
    caller gathers them at the end.
    """
    from nlets_switch.config import config_from_dict, demo_config, with_overrides
    from nlets_switch.errors import ConfigError
    from nlets_switch.server.app import build_switch

    raw = scn.config if scn.config is not None else base_config
    tmp = tempfile.TemporaryDirectory(prefix="nlets-scn-")
    try:
        cfg = demo_config() if raw is None else config_from_dict(raw, scn.path)
        cfg = with_overrides(cfg, ["127.0.0.1:0"], tmp.name)
    except ConfigError as e:
        tmp.cleanup()
        return Result(scn.path, scn.title, False, 0.0, "bad config", e.render(), scn.xfail)
    sw = await build_switch(cfg)
    await sw.start()

    async def stop() -> None:
        try:
            with contextlib.suppress(Exception):
                await sw.stop()
        finally:
            tmp.cleanup()

    try:
        host, port = sw.addresses[0][:2]
        return await run_scenario(scn, host, port)
    finally:
        if stopping is None:
            await stop()
        else:
            stopping.append(asyncio.create_task(stop(), name=f"stop-{scn.name}"))
