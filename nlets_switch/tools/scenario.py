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

Parsing (:func:`parse_scenario`) and matching (:class:`Template`) are pure;
:func:`run_scenario` drives real links with :class:`~nlets_switch.tools.client.Client`
and :func:`run_with_switch` starts a switch of its own for one scenario.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import re
import shlex
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from nlets_switch.tools.client import Answer, Client, SignOnError
from nlets_switch.wire import frames as fr

#: Seconds an ``expect`` waits when the scenario does not say (``timeout`` directive).
DEFAULT_TIMEOUT: Final = 2.0

#: Built-in macros: name -> regular expression (PROTOCOL part 3 layouts).
MACROS: Final[dict[str, str]] = {
    "TIME": r"\d\d:\d\d \d\d/\d\d/\d{4}",   # HH:MM MM/DD/YYYY
    "HHMM": r"\d\d:\d\d",
    "DATE": r"\d\d/\d\d/\d{4}",
    "NUM": r"\d{5}",                          # input or output number
    "ORI": r"[A-Z]{2}[A-Z0-9]{7}",
    "ANY": r"[^\n]*",                        # the rest of a line, whatever it is
}
#: A template line made only of this matches any number of lines (even none).
SKIP_LINES: Final = "{...}"

_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
_HEX = re.compile(r"x([0-9A-Fa-f]{2})")


class ScenarioError(Exception):
    """A scenario file that cannot be read: names the file and line."""


# --------------------------------------------------------------------------
# Templates: the text of an expected message, with macros and captures.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Piece:
    """One piece of a template line: literal text, or a pattern (maybe captured)."""

    literal: str | None = None
    pattern: str | None = None
    capture: str | None = None   # bind the matched text to this name
    ref: str | None = None       # the value captured earlier under this name
    source: str = ""             # how the piece was written, for diffs


def _split_braces(line: str, where: str) -> list[str]:
    """Split a line into literal runs and ``{...}`` macros (braces may nest)."""
    out: list[str] = []
    i = 0
    buf = ""
    while i < len(line):
        c = line[i]
        if c == "{":
            depth, j = 1, i + 1
            while j < len(line) and depth:
                if line[j] == "{":
                    depth += 1
                elif line[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise ScenarioError(f"{where}: unclosed '{{' in {line!r}")
            if buf:
                out.append(buf)
                buf = ""
            out.append(line[i:j])
            i = j
        else:
            buf += c
            i += 1
    if buf:
        out.append(buf)
    return out


def _macro(inner: str, where: str) -> _Piece:
    src = "{" + inner + "}"
    if inner.startswith("re:"):
        pat = inner[3:]
        _check_re(pat, where)
        return _Piece(pattern=pat, source=src)
    if "=" in inner:
        name, _, rhs = inner.partition("=")
        if not _NAME.fullmatch(name) or name in MACROS:
            raise ScenarioError(f"{where}: bad capture name {name!r} (upper case, not a macro)")
        if rhs.startswith("re:"):
            pat = rhs[3:]
            _check_re(pat, where)
        elif rhs in MACROS:
            pat = MACROS[rhs]
        else:
            raise ScenarioError(f"{where}: capture {name} needs re:PATTERN or a macro name")
        return _Piece(pattern=pat, capture=name, source=src)
    if inner in MACROS:
        return _Piece(pattern=MACROS[inner], source=src)
    if _NAME.fullmatch(inner):
        return _Piece(ref=inner, source=src)
    raise ScenarioError(f"{where}: unknown macro {src} (known: "
                        f"{', '.join(MACROS)}, re:..., NAME=re:..., a captured NAME)")


def _check_re(pat: str, where: str) -> None:
    try:
        re.compile(pat)
    except re.error as e:
        raise ScenarioError(f"{where}: bad pattern {pat!r}: {e}") from None


def _parse_line(line: str, where: str) -> list[_Piece]:
    pieces = []
    for part in _split_braces(line, where):
        if part.startswith("{"):
            pieces.append(_macro(part[1:-1], where))
        else:
            pieces.append(_Piece(literal=part, source=part))
    return pieces


class Template:
    """An expected message: its lines, with macros, patterns and captures.

    :meth:`match` returns the captures when a message fits (the whole
    message, every line); :meth:`explain` says where it does not, as a diff
    that points at the first differing character.
    """

    def __init__(self, lines: Sequence[str], where: str = "") -> None:
        self.lines = list(lines)
        self.where = where
        self._parsed: list[list[_Piece] | None] = [
            None if ln == SKIP_LINES else _parse_line(ln, f"{where} line {i + 1}")
            for i, ln in enumerate(self.lines)
        ]

    @property
    def captures(self) -> set[str]:
        """Names this template binds."""
        return {p.capture for ps in self._parsed if ps for p in ps if p.capture}

    def _line_re(self, pieces: list[_Piece], values: dict[str, str], seen: set[str]) -> str:
        out = []
        for p in pieces:
            if p.literal is not None:
                out.append(re.escape(p.literal))
            elif p.ref is not None:
                if p.ref in seen:   # captured earlier in this same message
                    out.append(f"(?P={p.ref})")
                elif p.ref in values:
                    out.append(re.escape(values[p.ref]))
                else:
                    raise ScenarioError(f"{self.where}: {{{p.ref}}} was never captured")
            elif p.capture is not None:
                if p.capture in seen:
                    out.append(f"(?P={p.capture})")
                else:
                    seen.add(p.capture)
                    out.append(f"(?P<{p.capture}>{p.pattern})")
            else:
                out.append(f"(?:{p.pattern})")
        return "".join(out)

    def regex(self, values: dict[str, str]) -> re.Pattern[str]:
        """The whole message as one pattern, given the values captured so far."""
        seen: set[str] = set()
        parts = []
        for pieces in self._parsed:
            if pieces is None:
                parts.append(r"(?:[^\n]*\n)*?")
            else:
                parts.append(self._line_re(pieces, values, seen) + r"\n")
        # Every line ends with a break here; the message itself does not.
        return re.compile("".join(parts))

    def match(self, text: str, values: dict[str, str]) -> dict[str, str] | None:
        """The captures if ``text`` fits the whole template, else None."""
        m = self.regex(values).fullmatch(text + "\n")
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if v is not None}

    def _fill(self, pieces: list[_Piece], got: str, values: dict[str, str]) -> tuple[str, int]:
        """The expected line as written, with what matched filled in from ``got``.

        Returns the text and the column of the first difference (-1 when the
        line matches). Pattern pieces that match take the received text, so
        that the diff shows only the real difference.
        """
        pos = 0
        shown = ""
        for i, p in enumerate(pieces):
            if p.literal is not None:
                lit = p.literal
            elif p.ref is not None and p.ref in values:
                lit = values[p.ref]
            else:
                lit = None
            if lit is not None:
                n = 0
                while n < len(lit) and pos + n < len(got) and got[pos + n] == lit[n]:
                    n += 1
                if n < len(lit):
                    return shown + lit + "".join(q.source for q in pieces[i + 1:]), pos + n
                shown += lit
                pos += n
                continue
            pat = p.pattern if p.pattern is not None else r"[^\n]*"
            m = re.compile(pat).match(got, pos)
            if m is None:
                return shown + "".join(q.source for q in pieces[i:]), pos
            shown += m.group(0)
            pos = m.end()
        if pos != len(got):
            return shown, pos
        return shown, -1

    def explain(self, text: str, values: dict[str, str]) -> str:
        """A readable diff of this template against ``text``.

        Lines that fit are shown as received; the first line that does not
        is shown as expected, with a caret under the first differing
        character, followed by a unified-style ``difflib.ndiff``.
        """
        got_lines = text.split("\n")
        exp_lines: list[str] = []
        first: tuple[int, int, str, str] | None = None
        gi = 0
        for pieces, raw in zip(self._parsed, self.lines, strict=True):
            if pieces is None:
                exp_lines.append(raw)
                continue
            got = got_lines[gi] if gi < len(got_lines) else ""
            if gi >= len(got_lines):
                exp_lines.append(raw)
                if first is None:
                    first = (gi, 0, raw, "(no such line: the message ended)")
                gi += 1
                continue
            shown, col = self._fill(pieces, got, values)
            exp_lines.append(shown)
            if col >= 0 and first is None:
                first = (gi, col, shown, got)
            gi += 1
        if first is None and gi < len(got_lines):
            first = (gi, 0, "(no such line: the message should have ended)", got_lines[gi])
        out = []
        if first is not None:
            ln, col, exp, got = first
            e_ch = repr(exp[col]) if col < len(exp) else "end of line"
            g_ch = repr(got[col]) if col < len(got) else "end of line"
            out.append(f"first difference at message line {ln + 1}, column {col + 1}: "
                       f"expected {e_ch}, got {g_ch}")
            out.append(f"  expected: {exp}")
            out.append(f"  got:      {got}")
            out.append("            " + " " * col + "^")
        out.append("diff (- expected, + received):")
        out.extend("  " + d.rstrip("\n") for d in difflib.ndiff(exp_lines, got_lines))
        return "\n".join(out)


def expand(text: str, values: dict[str, str], where: str = "") -> str:
    """Text to send: ``{NAME}`` becomes a captured value, ``{xNN}`` the byte NN."""
    out = []
    for part in _split_braces(text, where) if text else []:
        if part.startswith("{"):
            inner = part[1:-1]
            hx = _HEX.fullmatch(inner)
            if hx:
                out.append(chr(int(hx.group(1), 16)))
            elif inner in values:
                out.append(values[inner])
            else:
                raise ScenarioError(f"{where}: {{{inner}}} is not a captured value "
                                    "(captured: " + (", ".join(sorted(values)) or "none") + ")")
        else:
            out.append(part)
    return "".join(out)


# --------------------------------------------------------------------------
# The script.
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Step:
    """One line (or block) of a scenario."""

    op: str
    line: int
    conn: str = ""
    args: list[str] = field(default_factory=list)
    opts: dict[str, str] = field(default_factory=dict)
    text: str = ""                    # message to send, or expected body
    template: Template | None = None
    timeout: float | None = None


@dataclass(slots=True)
class Scenario:
    """A parsed scenario file."""

    path: str
    title: str
    steps: list[Step]
    config: dict[str, Any] | None = None   # YAML configuration for a switch of its own
    xfail: str | None = None               # the reason it is expected to fail
    timeout: float = DEFAULT_TIMEOUT

    @property
    def name(self) -> str:
        """The file name without its directory and extension."""
        return Path(self.path).stem


#: Operations and how many positional arguments each takes (min, max).
_OPS: Final[dict[str, tuple[int, int]]] = {
    "connect": (2, 2), "expect-refused": (2, 2), "disconnect": (1, 1), "signoff": (1, 1),
    "send": (1, 1), "expect": (1, 1), "expect-nothing": (1, 2), "expect-nak": (1, 1),
    "raw": (1, 1), "frame": (2, 3), "expect-frame": (2, 2), "expect-closed": (1, 2),
    "sleep": (1, 1),
}
#: Operations whose text follows on the line or in a ``<<`` block.
_TEXT_OPS: Final = frozenset({"send", "expect", "expect-nak", "expect-frame", "frame",
                              "expect-refused"})


def _opts(words: list[str]) -> tuple[list[str], dict[str, str]]:
    pos, opts = [], {}
    for w in words:
        if "=" in w and w.split("=", 1)[0] in ("timeout", "credential"):
            k, _, v = w.partition("=")
            opts[k] = v
        elif w in ("noack", "unordered"):
            opts[w] = "1"
        else:
            pos.append(w)
    return pos, opts


def parse_scenario(text: str, path: str = "<scenario>") -> Scenario:
    """Read a scenario; raise ScenarioError naming the line of the first problem."""
    lines = text.split("\n")
    steps: list[Step] = []
    title = Path(path).stem
    config: dict[str, Any] | None = None
    xfail = None
    timeout = DEFAULT_TIMEOUT
    i = 0

    def block(start: int, term: str) -> tuple[list[str], int]:
        body: list[str] = []
        j = start
        while j < len(lines):
            if lines[j].rstrip("\r") == term:
                return body, j + 1
            body.append(lines[j].rstrip("\r"))
            j += 1
        raise ScenarioError(f"{path}:{start}: block not closed by a line {term!r}")

    while i < len(lines):
        raw = lines[i].rstrip("\r")
        no = i + 1
        i += 1
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        where = f"{path}:{no}"
        op, _, rest = stripped.partition(" ")
        rest = rest.strip()
        heredoc: str | None = None
        m = re.search(r"(?:^|\s)<<(\S*)$", rest)
        if m:
            heredoc = m.group(1) or "."
            rest = rest[: m.start()].strip()
        if op == "title":
            title = rest
            continue
        if op == "xfail":
            xfail = rest or "expected to fail"
            continue
        if op == "timeout":
            timeout = _float(rest, where)
            continue
        if op == "config":
            if heredoc is not None:
                body, i = block(i, heredoc)
                src = "\n".join(body)
            else:
                cfg_path = Path(path).parent / rest
                try:
                    src = cfg_path.read_text()
                except OSError as e:
                    raise ScenarioError(
                        f"{where}: cannot read config {rest}: {e.strerror}") from None
            try:
                loaded = yaml.safe_load(src)
            except yaml.YAMLError as e:
                raise ScenarioError(f"{where}: config is not valid YAML: {e}") from None
            if not isinstance(loaded, dict):
                raise ScenarioError(f"{where}: config must be a YAML mapping")
            config = loaded
            continue
        if op not in _OPS:
            raise ScenarioError(f"{where}: unknown step {op!r} (known: title, config, timeout, "
                                f"xfail, {', '.join(_OPS)})")
        lo, hi = _OPS[op]
        text_arg = ""
        if op in _TEXT_OPS:
            # The connection (and options) come first; the rest of the line is text.
            words = rest.split(" ")
            head_n = {"connect": 2, "expect-refused": 2, "frame": 2, "expect-frame": 2}.get(op, 1)
            head: list[str] = []
            k = 0
            while k < len(words) and (len(head) < head_n or _is_opt(words[k])):
                if words[k]:
                    head.append(words[k])
                k += 1
            text_arg = " ".join(words[k:])
            pos, opts = _opts(head)
        else:
            pos, opts = _opts(shlex.split(rest))
        if not lo <= len(pos) <= hi:
            raise ScenarioError(f"{where}: {op} takes {lo}"
                                f"{'' if lo == hi else f' to {hi}'} argument(s), got {pos}")
        step = Step(op, no, pos[0], pos[1:], opts)
        if "timeout" in opts:
            step.timeout = _float(opts["timeout"], where)
        if heredoc is not None:
            if op not in _TEXT_OPS:
                raise ScenarioError(f"{where}: {op} takes no block")
            body, i = block(i, heredoc)
            step.text = "\n".join(body)
        else:
            step.text = text_arg
        if op == "send" and not step.text:
            raise ScenarioError(f"{where}: send needs a message (on the line or in a << block)")
        if op == "expect":
            if not step.text:
                raise ScenarioError(f"{where}: expect needs the message (use a << block)")
            step.template = Template(step.text.split("\n"), where)
        elif op in ("expect-nak", "expect-frame", "expect-refused") and step.text:
            step.template = Template([step.text], where)
        if op == "expect-nothing" and pos[1:]:
            step.timeout = _float(pos[1], where)
        if op == "sleep":
            step.timeout = _float(pos[0], where)
        if op == "expect-closed" and pos[1:]:
            step.timeout = _float(pos[1], where)
        steps.append(step)
    _check_refs(steps, path)
    return Scenario(path, title, steps, config, xfail, timeout)


def _is_opt(word: str) -> bool:
    return word in ("noack", "unordered") or word.startswith(("timeout=", "credential="))


def _float(text: str, where: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise ScenarioError(f"{where}: expected a number of seconds, got {text!r}") from None
    if v < 0:
        raise ScenarioError(f"{where}: a time cannot be negative")
    return v


def _check_refs(steps: list[Step], path: str) -> None:
    """Connections used before ``connect``, names used before they are captured."""
    conns: set[str] = set()
    for s in steps:
        where = f"{path}:{s.line}"
        if s.op in ("connect", "raw"):
            conns.add(s.conn)
        elif s.op in ("expect-refused", "sleep"):
            pass
        elif s.conn not in conns:
            raise ScenarioError(f"{where}: connection {s.conn!r} is not opened before "
                                f"(use: connect {s.conn} ORI)")


def load_scenario(path: str | Path) -> Scenario:
    """Read and parse one scenario file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioError(f"{p}: cannot read: {e}") from None
    return parse_scenario(text, str(p))


def find_scenarios(paths: Sequence[str | Path]) -> list[Path]:
    """Scenario files among ``paths`` (files, or directories searched for ``*.scn``)."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(p.rglob("*.scn")))
        else:
            out.append(p)
    return out


# --------------------------------------------------------------------------
# Running.
# --------------------------------------------------------------------------


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


class _Raw:
    """A TCP link without sign-on, speaking frames directly (link-level steps)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = fr.FrameBuffer()
        self.pending: list[fr.Frame] = []
        self.seq = 0

    async def next_frame(self, wait: float) -> fr.Frame | None:
        """The next frame, or None when the peer closed."""
        async with asyncio.timeout(wait):
            while not self.pending:
                data = await self.reader.read(65536)
                if not data:
                    return None
                self.pending.extend(self.buf.feed(data))
        return self.pending.pop(0)

    def close(self) -> None:
        self.writer.close()


_FRAME_TYPES: Final = {"C": fr.SIGN_ON, "A": fr.ACK, "N": fr.NAK, "M": fr.MESSAGE,
                       "H": fr.HEARTBEAT, "D": fr.SIGN_OFF}


class _Run:
    def __init__(self, scn: Scenario, host: str, port: int,
                 progress: Callable[[str], None] | None) -> None:
        self.scn = scn
        self.host = host
        self.port = port
        self.clients: dict[str, Client] = {}
        self.raws: dict[str, _Raw] = {}
        self.pending: dict[str, list[str]] = {}
        self.answers: dict[str, Answer] = {}
        self.values: dict[str, str] = {}
        self.progress = progress

    def _client(self, s: Step) -> Client:
        c = self.clients.get(s.conn)
        if c is None:
            raise StepFailed(f"line {s.line}: {s.conn} is not connected")
        return c

    async def _next(self, name: str, wait: float) -> str:
        """The next message on a connection (kept ones first)."""
        kept = self.pending.setdefault(name, [])
        if kept:
            return kept.pop(0)
        return await self.clients[name].receive(wait)

    async def step(self, s: Step) -> None:
        op = s.op
        timeout = s.timeout if s.timeout is not None else self.scn.timeout
        where = f"line {s.line}: {op} {s.conn}".rstrip()
        if op == "connect":
            if s.conn in self.clients:
                await self.clients.pop(s.conn).close(sign_off=False)
            try:
                self.clients[s.conn] = await Client.connect(
                    self.host, self.port, s.args[0], s.opts.get("credential"),
                    auto_ack="noack" not in s.opts)
            except SignOnError as e:
                raise StepFailed(f"{where}: sign-on as {s.args[0]} refused: {e}") from None
            self.pending[s.conn] = []
        elif op == "expect-refused":
            try:
                c = await Client.connect(self.host, self.port, s.args[0],
                                         s.opts.get("credential"))
            except SignOnError as e:
                if s.template is not None and s.template.match(str(e), self.values) is None:
                    raise StepFailed(f"{where}: refused, but not as expected",
                                     s.template.explain(str(e), self.values)) from None
                return
            await c.close()
            raise StepFailed(f"{where}: sign-on as {s.args[0]} was accepted, expected refusal")
        elif op in ("disconnect", "signoff"):
            c = self._client(s)
            del self.clients[s.conn]
            # disconnect: drop the TCP link without D, as a crash or a cut line would.
            await c.close(sign_off=op == "signoff")
        elif op == "send":
            c = self._client(s)
            text = expand(s.text, self.values, where)
            try:
                ans = await c.send(text, timeout=timeout)
            except (TimeoutError, ConnectionError) as e:
                raise StepFailed(f"{where}: no link answer ({type(e).__name__})") from None
            self.answers[s.conn] = ans
            if not ans.ok and not s.opts.get("_nak"):
                raise StepFailed(f"{where}: the switch answered N {ans.text!r}, expected A")
        elif op == "expect-nak":
            last = self.answers.pop(s.conn) if s.conn in self.answers else None
            if last is None or last.ok:
                raise StepFailed(f"{where}: the last send was answered "
                                 f"{'A' if last else 'nothing'}, expected N")
            if s.template is not None and s.template.match(last.text, self.values) is None:
                raise StepFailed(f"{where}: N text differs",
                                 s.template.explain(last.text, self.values))
        elif op == "expect":
            await self._expect(s, timeout, where)
        elif op == "expect-nothing":
            self._client(s)
            wait = s.timeout if s.timeout is not None else 0.5
            kept = self.pending.get(s.conn)
            try:
                got = kept.pop(0) if kept else await self.clients[s.conn].receive(wait)
            except (TimeoutError, ConnectionError):
                return
            raise StepFailed(f"{where}: expected silence, got a message", _indent(got))
        elif op == "raw":
            reader, writer = await asyncio.open_connection(self.host, self.port)
            self.raws[s.conn] = _Raw(reader, writer)
        elif op == "frame":
            raw = self._raw(s)
            ftype = _frame_type(s.args[0], where)
            raw.seq += 1
            raw.writer.write(fr.encode_frame(ftype, raw.seq,
                                             expand(s.text, self.values, where).encode()))
        elif op == "expect-frame":
            raw = self._raw(s)
            ftype = _frame_type(s.args[0], where)
            try:
                f = await raw.next_frame(timeout)
            except TimeoutError:
                raise StepFailed(f"{where}: no frame within {timeout:g} s") from None
            if f is None:
                raise StepFailed(f"{where}: the switch closed the link, expected {s.args[0]}")
            if f.type != ftype:
                raise StepFailed(f"{where}: got frame {chr(f.type)}, expected {s.args[0]}")
            body = f.body.decode("ascii", "replace")
            if s.template is not None and s.template.match(body, self.values) is None:
                raise StepFailed(f"{where}: frame body differs",
                                 s.template.explain(body, self.values))
        elif op == "expect-closed":
            if s.conn in self.raws:
                raw = self.raws[s.conn]
                try:
                    while (f2 := await raw.next_frame(timeout)) is not None:
                        raise StepFailed(f"{where}: got frame {chr(f2.type)}, expected the "
                                         "switch to close the link")
                except TimeoutError:
                    raise StepFailed(f"{where}: link still open after {timeout:g} s") from None
            else:
                c = self._client(s)
                try:
                    async with asyncio.timeout(timeout):
                        await c.closed.wait()
                except TimeoutError:
                    raise StepFailed(f"{where}: link still open after {timeout:g} s") from None
        elif op == "sleep":
            await asyncio.sleep(timeout)

    def _raw(self, s: Step) -> _Raw:
        raw = self.raws.get(s.conn)
        if raw is None:
            raise StepFailed(f"line {s.line}: {s.conn} is not a raw link (use: raw {s.conn})")
        return raw

    async def _expect(self, s: Step, wait: float, where: str) -> None:
        timeout = wait
        self._client(s)
        assert s.template is not None
        tpl = s.template
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

    async def close(self) -> None:
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
