"""The script of a conformance scenario: reading a ``.scn`` file into steps.

Pure but for reading files: :func:`parse_scenario` turns a scenario's text
into a :class:`Scenario` of :class:`Step` s, and raises
:class:`~nlets_switch.tools.scenario_template.ScenarioError` naming the line
of the first problem. Running the steps is :mod:`nlets_switch.tools.scenario`;
the format is documented in docs/scenarios.md.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

from nlets_switch.errors import LinkError, MessageError
from nlets_switch.tools.scenario_template import ScenarioError, Template
from nlets_switch.wire.xml import canonical, is_xml, pretty

__all__ = ["DEFAULT_TIMEOUT", "Scenario", "Step", "find_scenarios", "load_scenario",
           "parse_scenario", "xml_form"]

#: Seconds an ``expect`` waits when the scenario does not say (``timeout`` directive).
DEFAULT_TIMEOUT: Final = 2.0


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
            try:
                doc = xml_form(step.text)
            except (MessageError, LinkError) as e:
                raise ScenarioError(f"{where}: the expected XML document is not well-formed "
                                    f"({e})") from None
            if doc is not None:
                # Compared in canonical form (what arrives is put in the same form).
                step.opts["xml"] = "1"
            step.template = Template((doc or step.text).split("\n"), where)
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


def xml_form(text: str) -> str | None:
    """An XML document in the form ``expect`` compares (XML links, XML.md), else None.

    The canonical form (this project's prefixes, attributes in order, no
    layout), indented one element a line: two documents that differ only in
    prefixes, attribute order or indentation have the same form, and a
    template's macros (``{DATE}``, ``{NUM}``) stay in their element's line.
    Raises MessageError or LinkError for a document that is not well-formed.
    """
    raw = text.encode("ascii", "replace")
    if not is_xml(raw):
        return None
    return pretty(canonical(raw, None), None).rstrip("\n")


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
