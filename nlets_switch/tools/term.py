"""The interactive terminal: ``nlets-switch term --ori ORI`` (docs/term.md).

A terminal operator's view of one link. It signs on as an ORI through
:class:`~nlets_switch.tools.client.Client` (which answers heartbeats and
acknowledges deliveries), reconnects with back-off when the link drops
(redelivery of what was owed is the switch's job, PROTOCOL part 1), and
gives a prompt_toolkit prompt with history, line editing and completion of
keys, destinations and field tags.

Each inquiry gets a control field (``*T0001``...) unless the operator typed
one, and every message that comes back is shown with the inquiry it answers
(matched by control field, or by the original message an ``ER``/``SM``
quotes). The pieces that do not touch the terminal (:func:`prepare`,
:func:`describe`, :class:`Transcript`) are kept apart so they can be tested
without one.

On an XML link (``format: xml``, XML.md) the operator still types legacy
text: the terminal sends its document, and shows every document that comes
back as the legacy text it stands for (the transcript keeps the document).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import FormattedText
from prompt_toolkit.history import InMemoryHistory
from prompt_toolkit.patch_stdout import patch_stdout
from prompt_toolkit.shortcuts import print_formatted_text

from nlets_switch.errors import ErCode, LinkError, MessageError
from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.tools.term_complete import NletsCompleter
from nlets_switch.wire.message import (
    SWITCH_ORI,
    Message,
    format_message,
    parse_message,
    parse_output,
)
from nlets_switch.wire.schema import SchemaSet
from nlets_switch.wire.xml import XmlCodec, is_xml, pretty

#: Typed alone (any case), these leave like ``/quit``: a message always has a
#: header (``KEY.ORIGIN.DEST.TXT``), so they can never be one.
QUIT_WORDS = frozenset({"quit", "exit"})

HELP = """\
Type a message and press Enter, header and text on one line (a blank may follow TXT):
  DQ.AZNLETS20.TX.TXT OLN/D11111111
  AM.AZNLETS20.NY.TXT HELLO NEW YORK
  (\\n in the line is sent as a line break)
Inquiries get a control field (*T0001 ...) unless you give one; responses show which
inquiry they answer. Tab completes keys, destinations and field tags.
Commands:
  /form KEY     fill in a KEY message field by field, checked, then sent if you say so
  /resend [N]   send message #N again (default: the last one sent)
  /last [N]     show the last N messages of this session (default 10)
  /save FILE    write the whole session to FILE
  /quit         sign off and leave (so do quit, exit and Ctrl-D)
  /help         this text"""


# --------------------------------------------------------------------------
# Pieces without a terminal.
# --------------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """One message of the session, in or out."""

    n: int
    direction: str            # ">>" sent, "<<" received, "!!" refused at link level
    at: str
    text: str
    note: str = ""
    control: str | None = None


@dataclass(slots=True)
class Transcript:
    """What this terminal sent and received, numbered, for /last, /resend and /save."""

    entries: list[Entry] = field(default_factory=list)
    sent: dict[int, Entry] = field(default_factory=dict)
    by_control: dict[str, Entry] = field(default_factory=dict)

    def add(self, direction: str, text: str, note: str = "",
            control: str | None = None, at: str | None = None) -> Entry:
        """Record one message; sent ones can be resent and answered."""
        e = Entry(len(self.entries) + 1, direction, at or datetime.now().strftime("%H:%M:%S"),
                  text, note, control)
        self.entries.append(e)
        if direction == ">>":
            self.sent[e.n] = e
            if control:
                self.by_control[control] = e
        return e

    def answered(self, control: str | None, quoted: str | None) -> Entry | None:
        """The sent message a received one answers: by control field, else by quote."""
        if control and control in self.by_control:
            return self.by_control[control]
        if quoted:
            for e in reversed(list(self.sent.values())):
                if e.text.startswith(quoted) or quoted.startswith(e.text[:100]):
                    return e
        return None

    def last(self, n: int) -> list[Entry]:
        """The last ``n`` entries."""
        return self.entries[-n:] if n > 0 else []

    def render(self, entries: Iterable[Entry] | None = None) -> str:
        """Entries as text, one block each, for the screen or a file."""
        out = []
        for e in self.entries if entries is None else entries:
            note = f"  ({e.note})" if e.note else ""
            out.append(f"#{e.n} {e.at} {e.direction}{note}\n{e.text}\n")
        return "\n".join(out)


def prepare(line: str, schemas: SchemaSet, next_control: Iterator[str]) -> tuple[str, str | None]:
    """The message to send for a typed line, and its control field.

    ``\\n`` becomes a line break. An inquiry (a key whose schema kind is
    ``inquiry``) without a control field gets the next one from
    ``next_control``, so its responses can be matched to it. Text that does
    not parse is sent as typed: the switch's ER will say what is wrong.
    """
    text = line.replace("\\n", "\n").rstrip("\r\n")
    try:
        msg = parse_message(text)
    except MessageError:
        return text, None
    if msg.control is not None:
        return text, msg.control
    schema = schemas.get(msg.key)
    if schema is None or schema.kind != "inquiry":
        return text, None
    ctl = next(next_control)
    return Message(msg.key, msg.origin, msg.destinations, ctl, msg.text).format(), ctl


def controls(prefix: str = "T") -> Iterator[str]:
    """``T0001``, ``T0002``, ... (1 to 10 characters, no period: PROTOCOL part 2)."""
    n = 0
    while True:
        n = n % 9999 + 1
        yield f"{prefix}{n:04d}"


def _quoted(text: str) -> str | None:
    """The original message an ER or SM quotes (PROTOCOL part 4)."""
    marker = "\nORIGINAL MESSAGE\n"
    i = text.find(marker)
    return text[i + len(marker):] if i >= 0 else None


def describe(raw: str, transcript: Transcript,
             codec: XmlCodec | None = None) -> tuple[str, str, str]:
    """How to show a received message: (style, headline, text).

    The headline says what it is, from whom, and which inquiry it answers;
    for ER and SM it gives the code and reason plainly. An XML document
    (XML.md) is shown as the legacy text it stands for when ``codec`` can
    read it, headline marked ``(XML)``; else pretty-printed.
    """
    form = ""
    if is_xml(raw.encode("ascii", "replace")):
        try:
            if codec is None:
                raise MessageError(ErCode.HEADER)
            out = codec.read_output(raw.encode("ascii"))
        except (MessageError, LinkError, UnicodeError):
            try:
                return "", "XML document", pretty(raw.encode("ascii"), None).rstrip("\n")
            except (MessageError, LinkError, UnicodeError):
                return "", "message", raw
        raw = out.format()
        form = " (XML)"
    else:
        try:
            out = parse_output(raw)
        except MessageError:
            return "", "message", raw
    answered = transcript.answered(out.control, _quoted(out.text))
    about = ""
    if answered is not None:
        first = answered.text.split("\n", 1)[0]
        about = f"  answers #{answered.n} {first[:60]}"
    elif out.control:
        about = f"  control *{out.control}"
    if out.sender == SWITCH_ORI and out.key in ("ER", "SM"):
        lines = out.text.split("\n")
        reason = lines[0] if lines else ""
        extra = lines[1] if len(lines) > 1 and lines[1] != "ORIGINAL MESSAGE" else ""
        kind = "ERROR" if out.key == "ER" else "STATUS"
        head = (f"{out.key}{form} {kind} {reason}" + (f" -- {extra}" if extra else "")
                + about)
        return ("class:er" if out.key == "ER" else "class:sm"), head, raw
    head = f"{out.key}{form} from {out.sender} to {out.receiver}{about}"
    return "class:in", head, raw


# --------------------------------------------------------------------------
# The terminal.
# --------------------------------------------------------------------------


class Terminal:
    """One interactive session: a link, a prompt, and the transcript."""

    def __init__(self, host: str, port: int, ori: str, credential: str | None,
                 schemas: SchemaSet, destinations: Sequence[str], xml: bool = False) -> None:
        #: The link speaks XML (XML.md): typed text is sent as its document.
        self.xml = xml
        self.codec = XmlCodec(schemas, max_bytes=None)
        self.host = host
        self.port = port
        self.ori = ori
        self.credential = credential
        self.schemas = schemas
        self.transcript = Transcript()
        self.controls = controls()
        self.client: Client | None = None
        self.quitting = False
        self.session: PromptSession[str] = PromptSession(
            history=InMemoryHistory(),
            completer=NletsCompleter(ori, schemas, destinations),
            complete_while_typing=False)

    def say(self, text: str, style: str = "") -> None:
        """Print above the prompt without disturbing what is being typed."""
        from prompt_toolkit.styles import Style

        styles = Style.from_dict({"er": "bold ansired", "sm": "bold ansiyellow",
                                  "in": "bold ansigreen", "info": "ansiblue"})
        print_formatted_text(FormattedText([(style, text)]), style=styles)

    async def connect(self) -> None:
        """Sign on; raises SignOnError or OSError."""
        self.client = await Client.connect(self.host, self.port, self.ori, self.credential)

    async def _incoming(self) -> None:
        """Show traffic as it arrives; reconnect with back-off when the link drops."""
        delay = 0.5
        while not self.quitting:
            c = self.client
            if c is None:
                try:
                    await self.connect()
                    self.say(f"-- signed on again as {self.ori}", "class:info")
                    delay = 0.5
                    continue
                except (OSError, TimeoutError, SignOnError) as e:
                    self.say(f"-- reconnect failed ({e}); retrying in {delay:g} s", "class:info")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 10.0)
                    continue
            try:
                raw = await c.receive(None)
            except ConnectionError as e:
                if self.quitting:
                    return
                self.say(f"-- link lost ({e}); reconnecting", "class:info")
                self.client = None
                continue
            self.show_incoming(raw)

    def show_incoming(self, raw: str) -> None:
        """Record and print one received message with what it answers."""
        style, head, text = describe(raw, self.transcript, self.codec)
        e = self.transcript.add("<<", raw, head)
        self.say(f"<< #{e.n} {head}", style)
        self.say(text + "\n")

    async def send(self, text: str, control: str | None) -> None:
        """Send one message and say how the switch took it."""
        c = self.client
        if c is None:
            self.say("-- not signed on (reconnecting); message not sent", "class:info")
            return
        body: str | bytes = text
        if self.xml and not is_xml(text.encode("ascii", "replace")):
            try:
                body = self.codec.input_to_xml(text)
            except MessageError as exc:
                self.say(f"-- cannot write it as XML ({exc.code.wire} {exc.detail}".rstrip()
                         + "); not sent", "class:er")
                return
        try:
            ans = await c.send(body)
        except (TimeoutError, ConnectionError) as exc:
            self.say(f"-- no answer from the switch ({exc}); not sent", "class:info")
            return
        if ans.ok:
            e = self.transcript.add(">>", text, f"control *{control}" if control else "",
                                    control)
            ctl = f", control *{control}" if control else ""
            self.say(f">> #{e.n} accepted{ctl}", "class:info")
        else:
            self.transcript.add("!!", text, f"refused: N {ans.text}")
            self.say(f"!! refused by the switch: N {ans.text}", "class:er")

    async def form(self, key: str) -> None:
        """Ask for each field of ``key`` in turn, check the text, then send."""
        key = key.upper()
        schema = self.schemas.get(key)
        if schema is None:
            self.say(f"-- no such key {key!r}; known: {', '.join(self.schemas)}", "class:er")
            return
        self.say(f"-- {key}: {schema.description}. Empty answer skips a field; "
                 "Ctrl-C abandons.", "class:info")
        try:
            dests = await self.session.prompt_async(f"{key} destinations: ")
            if schema.free_text:
                body = await self.session.prompt_async(f"{key} text: ")
            else:
                if schema.options:
                    self.say(f"-- field options: {schema.options_text}", "class:info")
                order = list(schema.required) + [t for opt in schema.options for t in opt]
                order += [t for t in schema.fields if t not in order]
                seen: list[str] = []
                fields = []
                for tag in order:
                    if tag in seen:
                        continue
                    seen.append(tag)
                    spec = schema.fields[tag]
                    need = " (required)" if tag in schema.required else ""
                    while True:
                        value = (await self.session.prompt_async(
                            f"{tag} {spec.description}{need}: ")).strip()
                        if not value or spec.ok(value):
                            break
                        self.say(f"-- {tag}/{value} is not valid", "class:er")
                    if value:
                        fields.append(f"{tag}/{value}")
                body = ".".join(fields)
                schema.validate(body)
        except MessageError as e:
            self.say(f"-- not sent: {e.code.wire} {e.detail}".rstrip(), "class:er")
            return
        except (KeyboardInterrupt, EOFError):
            self.say("-- form abandoned", "class:info")
            return
        line = format_message(key, self.ori, dests.strip().upper(), None, body, separator=" ")
        self.say(line, "class:info")
        if not await self.confirm("send it? [y/N] "):
            # Kept in the history: the up arrow brings it back to edit and send.
            self.session.history.append_string(line)
            self.say("-- not sent (the up arrow brings it back to edit)", "class:info")
            return
        text, ctl = prepare(line, self.schemas, self.controls)
        await self.send(text, ctl)

    async def confirm(self, question: str) -> bool:
        """Ask a yes/no question; only y or yes is a yes (Ctrl-C and Ctrl-D are no)."""
        try:
            answer = await self.session.prompt_async(question)
        except (KeyboardInterrupt, EOFError):
            return False
        return answer.strip().lower() in ("y", "yes")

    async def command(self, line: str) -> bool:
        """Run a /command; False to leave."""
        cmd, _, arg = line.partition(" ")
        arg = arg.strip()
        if cmd == "/quit":
            return False
        if cmd == "/help":
            self.say(HELP)
        elif cmd == "/form":
            if not arg:
                self.say("-- usage: /form KEY (e.g. /form DQ)", "class:er")
            else:
                await self.form(arg)
        elif cmd == "/last":
            n = int(arg) if arg.isdigit() else 10
            self.say(self.transcript.render(self.transcript.last(n)) or "-- nothing yet")
        elif cmd == "/resend":
            sent = self.transcript.sent
            if not sent:
                self.say("-- nothing sent yet", "class:er")
            elif arg and (not arg.isdigit() or int(arg) not in sent):
                self.say(f"-- #{arg} is not a message this terminal sent "
                         f"(sent: {', '.join(map(str, sent))})", "class:er")
            else:
                e = sent[int(arg)] if arg else sent[max(sent)]
                await self.send(e.text, e.control)
        elif cmd == "/save":
            if not arg:
                self.say("-- usage: /save FILE", "class:er")
            else:
                try:
                    # Small and rare: a thread keeps the prompt responsive anyway.
                    await asyncio.to_thread(Path(arg).write_text, self.transcript.render())
                    self.say(f"-- saved {len(self.transcript.entries)} message(s) to {arg}",
                             "class:info")
                except OSError as e:
                    self.say(f"-- cannot write {arg}: {e.strerror}", "class:er")
        else:
            self.say(f"-- unknown command {cmd}; /help lists them", "class:er")
        return True

    async def run(self) -> int:
        """The prompt loop; returns the exit status."""
        try:
            await self.connect()
        except SignOnError as e:
            print(f"sign-on refused: {e}")
            return 2
        except (OSError, TimeoutError) as e:
            print(f"cannot reach the switch at {self.host}:{self.port}: {e}")
            return 2
        with patch_stdout(raw=True):
            self.say(f"-- signed on as {self.ori} to {self.host}:{self.port}. "
                     "/help for help, /quit to sign off.", "class:info")
            reader = asyncio.create_task(self._incoming(), name="term-incoming")
            try:
                while True:
                    try:
                        line = await self.session.prompt_async(f"{self.ori}> ")
                    except KeyboardInterrupt:
                        continue
                    except EOFError:
                        break
                    line = line.strip()
                    if not line:
                        continue
                    if line.lower() in QUIT_WORDS:
                        break  # never sent: it is not a message
                    if line.startswith("/"):
                        if not await self.command(line):
                            break
                        continue
                    text, ctl = prepare(line, self.schemas, self.controls)
                    await self.send(text, ctl)
            finally:
                self.quitting = True
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
                if self.client is not None:
                    await self.client.close()
        print(f"signed off {self.ori}")
        return 0
