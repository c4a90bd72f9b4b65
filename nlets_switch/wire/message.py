"""Nlets message headers (PROTOCOL parts 2 to 4), pure: no asyncio, no clock.

* :func:`decode_body` checks the characters of an ``M`` frame's body
  (printable ASCII, CR, LF; anything else is a link-level ``N``).
* :func:`format_message` writes an input message
  ``MKE.ORIGIN.DESTINATIONS[.*CONTROL].TXT`` and its text: every message the
  switch's own services send is built by it.
* :func:`parse_message` reads the input header
  ``MKE.ORIGIN.DESTINATIONS[.*CONTROL].TXT<text>`` into a :class:`Message`,
  or raises the :class:`~nlets_switch.errors.MessageError` whose ``ER`` it
  implies. :meth:`Message.format` gives back the same text, byte for byte.
* :func:`format_output` writes the output header of part 3;
  :func:`parse_output` reads it back (for clients and tests).
* :func:`er_text` and :func:`sm_text` write the text of the switch's ``ER``
  and ``SM`` messages (part 4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final

from nlets_switch.errors import (
    ErCode,
    InvalidCharacters,
    MessageError,
    MessageTooLong,
    SmCode,
)
from nlets_switch.wire.domain import LESC_ORI as LESC_ORI
from nlets_switch.wire.domain import SWITCH_ORI as SWITCH_ORI  # re-exported: the header's users
from nlets_switch.wire.domain import is_ori as is_ori

#: How much of the input an ER or SM quotes (part 4).
QUOTE_LEN: Final = 100
#: Output numbers run 00001-99999 and then wrap (part 3).
MAX_NUMBER: Final = 99_999

# Printable ASCII, CR and LF (part 2); anything else is a link-level N.
_BAD_CHARS = re.compile(rb"[^\x20-\x7e\r\n]")
_HEADER = re.compile(
    r"(?P<mke>[^.\r\n]*)\.(?P<origin>[^.\r\n]*)\.(?P<dests>[^.\r\n]*)\."
    r"(?:\*(?P<ctl>[^.\r\n]*)\.)?TXT"
)
_KEY = re.compile(r"[A-Z]{2,3}")
_STATE = re.compile(r"[A-Z]{2}")
_HELP = re.compile(r"(?P<state>[A-Z]{2})(?P<file>[A-Z]{3})(?P<func>HELP|UPDT|APND|CNCL)")
# A region of the regional inquiries DQG/RQG (core/regions.py): RA to RK, not RI.
_REGION = re.compile(r"R[A-HJK]")
# The control field: 1 to 10 printable characters; no period (it would end
# the field), no blank, no CR/LF (header injection).
_CONTROL = re.compile(r"[\x21-\x2d\x2f-\x7e]{1,10}")
_LEAD = " \r\n"
_TRAIL = "\r\n"

#: Kinds of address (part 2).
STATE: Final = "state"
ORI: Final = "ori"
NL: Final = "nl"
AX: Final = "ax"
HELP: Final = "help"
REGION: Final = "region"
#: ORION, Nlets' directory of ORIs: ``TQ``, ``TA``, ``TU``, ``TD`` go to ``OD``.
ORION: Final = "orion"


def address_kind(address: str) -> str | None:
    """The kind of a destination address, or None when it is malformed."""
    if address == "NL":
        return NL
    if address == "AX":
        return AX
    if address == "OD":
        return ORION
    if len(address) == 2:
        if _REGION.fullmatch(address):
            return REGION
        return STATE if _STATE.fullmatch(address) else None
    if len(address) == 9:
        if _HELP.fullmatch(address):
            return HELP
        return ORI if is_ori(address) else None
    return None


def help_address(address: str) -> tuple[str, str, str] | None:
    """``(state, file, function)`` of a help-file address, else None."""
    m = _HELP.fullmatch(address)
    return (m["state"], m["file"], m["func"]) if m else None


def decode_body(body: bytes, max_len: int | None = None) -> str:
    """The text of an ``M`` body, or the link-level error it deserves."""
    if max_len is not None and len(body) > max_len:
        raise MessageTooLong()
    if _BAD_CHARS.search(body):
        raise InvalidCharacters()
    return body.decode("ascii")


@dataclass(frozen=True, slots=True)
class Message:
    """An input message as an endpoint sent it (PROTOCOL part 2).

    ``text`` is everything after ``TXT``, verbatim, so that :meth:`format`
    reproduces the input byte for byte; :attr:`body` is the text with the
    separating blank or line breaks removed.
    """

    key: str
    origin: str
    destinations: tuple[str, ...]
    control: str | None
    text: str

    @property
    def body(self) -> str:
        """The text without the separator after ``TXT`` or trailing line breaks."""
        return self.text.lstrip(_LEAD).rstrip(_TRAIL)

    def format(self) -> str:
        """The input message text, as it was parsed."""
        return format_message(self.key, self.origin, self.destinations, self.control,
                              self.text, separator="")


def format_message(key: str, origin: str, destinations: str | Iterable[str],
                   control: str | None, text: str, *, separator: str = "\n") -> str:
    """An input message (PROTOCOL part 2): ``KEY.ORIGIN.DEST[,DEST][.*CONTROL].TXT``,
    then ``separator`` (a line break unless told otherwise) and ``text``.

    ``destinations`` is one address or several (joined with commas); the
    control field is left out when ``control`` is None. Nothing is checked:
    :func:`parse_message` is the judge of what a sender wrote.
    """
    dests = destinations if isinstance(destinations, str) else ",".join(destinations)
    ctl = f".*{control}" if control is not None else ""
    return f"{key}.{origin}.{dests}{ctl}.TXT{separator}{text}"


def parse_message(raw: str) -> Message:
    """Read an input header; raise the MessageError whose ER it deserves.

    Checks, in order: the header's shape (``.01.``, or ``.03.`` when there
    is no ``TXT`` at all), the key (``.01.``), the origin ORI (``.01.``), the
    control field (``.01.``) and the form of each destination (``.19.``
    naming the bad ones). Whether the origin may use the link, the key's
    destination rules and its fields are checked later, against the
    directory and the schemas.
    """
    m = _HEADER.match(raw)
    if m is None:
        if "TXT" not in raw:
            raise MessageError(ErCode.NO_TXT)
        raise MessageError(ErCode.HEADER)
    key, origin, dests, ctl = m["mke"], m["origin"], m["dests"], m["ctl"]
    if not _KEY.fullmatch(key):
        raise MessageError(ErCode.HEADER, f"MESSAGE KEY: {key[:10]}")
    if not is_ori(origin):
        raise MessageError(ErCode.HEADER, f"ORIGIN: {origin[:20]}")
    if ctl is not None and not _CONTROL.fullmatch(ctl):
        raise MessageError(ErCode.HEADER, "CONTROL FIELD: 1 TO 10 CHARACTERS")
    destinations = tuple(dests.split(","))
    bad = [d for d in destinations if address_kind(d) is None]
    if bad:
        err = MessageError.naming(ErCode.DESTINATION, "INVALID", (b or "(EMPTY)" for b in bad))
        err.control = ctl
        raise err
    return Message(key, origin, destinations, ctl, raw[m.end() :])


def stamp(ts: float, tz: tzinfo) -> str:
    """``HH:MM MM/DD/YYYY`` for a POSIX time in the switch's time zone."""
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M %m/%d/%Y")


def next_number(n: int) -> int:
    """The number after ``n`` in the 00001-99999 cycle (part 3)."""
    return 1 if n >= MAX_NUMBER else n + 1


@dataclass(frozen=True, slots=True)
class OutputMessage:
    """A message as the switch delivers it (PROTOCOL part 3)."""

    key: str
    sender: str
    received: str
    input_no: int
    sent: str
    output_no: int
    receiver: str
    control: str | None
    text: str

    def format(self) -> str:
        """The output message text."""
        return format_output(
            self.key, self.sender, self.received, self.input_no, self.sent,
            self.output_no, self.receiver, self.control, self.text,
        )


def format_output(key: str, sender: str, received: str, input_no: int, sent: str,
                  output_no: int, receiver: str, control: str | None, text: str) -> str:
    """The output header of part 3 followed by the text."""
    ctl = f"*{control}\n" if control is not None else ""
    return (
        f"{key}.{sender}\n{received} {input_no:05d}\n{sent} {output_no:05d} {receiver}\n"
        f"{ctl}TXT\n{text}"
    )


_OUT = re.compile(
    r"(?P<key>[A-Z]{2,3})\.(?P<sender>[A-Z0-9]{9})\r?\n"
    r"(?P<received>\d\d:\d\d \d\d/\d\d/\d{4}) (?P<in>\d{5})\r?\n"
    r"(?P<sent>\d\d:\d\d \d\d/\d\d/\d{4}) (?P<out>\d{5}) (?P<receiver>[A-Z0-9]{2,9})\r?\n"
    r"(?:\*(?P<ctl>[^\r\n]{1,10})\r?\n)?"
    r"TXT\r?\n"
)


def parse_output(raw: str) -> OutputMessage:
    """Read a message in the output layout of part 3 (what endpoints receive)."""
    m = _OUT.match(raw)
    if m is None:
        raise MessageError(ErCode.HEADER, "NOT AN OUTPUT HEADER")
    return OutputMessage(
        m["key"], m["sender"], m["received"], int(m["in"]), m["sent"], int(m["out"]),
        m["receiver"], m["ctl"], raw[m.end() :],
    )


def er_text(error: MessageError, original: str) -> str:
    """The text of an ``ER`` (part 4): the reason, what it names, the input quoted."""
    lines = [error.code.wire]
    if error.detail:
        lines.append(error.detail)
    lines += ["ORIGINAL MESSAGE", original[:QUOTE_LEN]]
    return "\n".join(lines)


def er_reason(text: str) -> str:
    """The reason an ER's text gives (its lines before the quoted input), on one line:
    ``.02. MESSAGE TYPE NOT ALLOWED TO DESTINATION ONLY ORIS OF AZ ...``, as
    :class:`~nlets_switch.errors.MessageError` prints it."""
    lines = text.strip("\r\n").splitlines()
    if "ORIGINAL MESSAGE" in lines:
        lines = lines[:lines.index("ORIGINAL MESSAGE")]
    return " ".join(line.strip() for line in lines if line.strip())


def sm_text(code: SmCode, destination: str, original: str) -> str:
    """The text of an ``SM`` (part 4): the status, the destination, the input quoted."""
    return "\n".join(
        [code.wire, f"DESTINATION: {destination}", "ORIGINAL MESSAGE", original[:QUOTE_LEN]]
    )
