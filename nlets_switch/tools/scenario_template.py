"""Expected text of conformance scenarios: templates with macros, patterns and captures.

Pure (no I/O): a :class:`Template` is the whole text an ``expect`` step
wants, line by line, where ``{...}`` stands for a macro (``{TIME}``), a
pattern (``{re:...}``), a capture (``{NAME=re:...}``), a value captured
earlier (``{NAME}``) or, alone on a line, any number of lines.
:func:`expand` fills captured values and ``{xNN}`` bytes into text to send.
The format is documented in docs/scenarios.md.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["MACROS", "SKIP_LINES", "ScenarioError", "Template", "expand"]

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
