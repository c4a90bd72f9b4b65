"""One taxonomy of errors, each carrying the wire answer it implies.

PROTOCOL.md names three kinds of answer to bad input:

* a link-level ``N`` frame (part 1): :class:`LinkError` and its subclasses;
* an ``ER`` message from ``NL0000000`` (part 4): :class:`MessageError`;
* an ``SM`` message from ``NL0000000`` (part 4): :class:`SmCode`, chosen by
  the router rather than raised.

Configuration problems are :class:`ConfigError`, which carries every problem
found, each with the key path it concerns (``links[3].ori: ...``).

The codec's contract (DESIGN.md): any input gives a message, "need more
bytes", or one of these errors; any other exception is a bug.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence


class NletsError(Exception):
    """Base of every error this package raises on purpose."""


# --------------------------------------------------------------------------
# Link level (PROTOCOL part 1): answered with an N frame.
# --------------------------------------------------------------------------


class LinkError(NletsError):
    """A frame the switch refuses at link level; answered with ``N``.

    ``close`` says whether the link must be closed after the ``N``.
    """

    code: int = 1
    text: str = "INVALID FRAME"
    close: bool = True

    def __init__(self, text: str | None = None, *, code: int | None = None,
                 close: bool | None = None) -> None:
        if text is not None:
            self.text = text
        if code is not None:
            self.code = code
        if close is not None:
            self.close = close
        super().__init__(self.wire)

    @property
    def wire(self) -> str:
        """The body of the ``N`` frame: ``.NN. TEXT``."""
        return f".{self.code:02d}. {self.text}"


class FrameError(LinkError):
    """Length below 5, above the maximum, or an unknown frame type (part 1)."""

    code = 1
    text = "INVALID FRAME"
    close = True


class SignOnRejected(LinkError):
    """Unknown ORI, wrong credential or certificate, or locked out (part 1)."""

    code = 1
    text = "SIGN-ON REJECTED"
    close = True


class SignOnRequired(LinkError):
    """Any frame but ``C`` before an accepted sign-on (part 1)."""

    code = 1
    text = "SIGN-ON REQUIRED"
    close = True


class InvalidCharacters(LinkError):
    """A message body that is not printable 7-bit ASCII, CR and LF (part 2)."""

    code = 2
    text = "INVALID CHARACTERS IN MESSAGE"
    close = False


class MessageTooLong(LinkError):
    """A message body above the configured maximum (part 1, "oversize")."""

    code = 3
    text = "MESSAGE TOO LONG"
    close = False


class RateLimited(LinkError):
    """More messages per second than the ORI is allowed; nothing is journaled."""

    code = 4
    text = "RATE LIMIT EXCEEDED, RESEND LATER"
    close = False


class SwitchBusy(LinkError):
    """The switch is shutting down or cannot take custody right now."""

    code = 5
    text = "SWITCH NOT ACCEPTING MESSAGES, RESEND LATER"
    close = False


class TooManyConnections(LinkError):
    """Past the configured connections in all or per peer address."""

    code = 6
    text = "TOO MANY CONNECTIONS"
    close = True


# --------------------------------------------------------------------------
# Message level (PROTOCOL part 4): answered with an ER message.
# --------------------------------------------------------------------------


class ErCode(enum.IntEnum):
    """The numbered reasons of an ``ER`` message (PROTOCOL part 4)."""

    HEADER = 1
    KEY_NOT_ALLOWED = 2
    NO_TXT = 3
    DOB = 5
    YEAR = 10
    FIELDS_MISSING = 14
    ATN = 16
    DESTINATION = 19
    FORMAT = 22

    @property
    def text(self) -> str:
        """The fixed text of the reason, as PROTOCOL part 4 spells it."""
        return _ER_TEXT[self]

    @property
    def wire(self) -> str:
        """The reason line: ``.22. INVALID MESSAGE FORMAT``."""
        return f".{int(self):02d}. {self.text}"


_ER_TEXT: dict[ErCode, str] = {
    ErCode.HEADER: "INVALID HEADER INFORMATION",
    ErCode.KEY_NOT_ALLOWED: "MESSAGE TYPE NOT ALLOWED TO DESTINATION",
    ErCode.NO_TXT: "TXT NOT FOUND",
    ErCode.DOB: "DOB INVALID OR MISSING",
    ErCode.YEAR: "A YEAR FIELD IS INVALID OR MISSING",
    ErCode.FIELDS_MISSING: "FIELDS MISSING",
    ErCode.ATN: "ATN FIELD INVALID",
    ErCode.DESTINATION: "INVALID DESTINATION ORIS",
    ErCode.FORMAT: "INVALID MESSAGE FORMAT",
}


class MessageError(NletsError):
    """A well-framed message that is wrong as an Nlets message.

    The switch acknowledges the frame (``A``) and answers with an ``ER``
    whose reason is ``code``; ``detail`` is one more line of text naming
    what was wrong (missing fields, bad destinations, the key's valid field
    options), or empty.
    """

    def __init__(self, code: ErCode, detail: str = "", control: str | None = None) -> None:
        self.code = code
        self.detail = detail
        #: The input's control field, when the header was read that far, so the
        #: ER can echo it (PROTOCOL part 3).
        self.control = control
        super().__init__(f"{code.wire} {detail}".rstrip())

    @classmethod
    def naming(cls, code: ErCode, prefix: str, names: Iterable[str]) -> MessageError:
        """An error whose detail line names things: ``MISSING: LIY, LIT``."""
        return cls(code, f"{prefix}: {', '.join(names)}")


# --------------------------------------------------------------------------
# Status (PROTOCOL part 4): SM messages chosen by the router.
# --------------------------------------------------------------------------


class SmCode(enum.IntEnum):
    """The numbered statuses of an ``SM`` message (PROTOCOL part 4)."""

    NOT_TAKEN = 1
    HELD = 2
    DROPPED = 4

    @property
    def text(self) -> str:
        """The fixed text, as PROTOCOL part 4 spells it."""
        return _SM_TEXT[self]

    @property
    def wire(self) -> str:
        """The status line: ``.02. USER OUT OF SERVICE ...``."""
        return f".{int(self):02d}. {self.text}"


_SM_TEXT: dict[SmCode, str] = {
    SmCode.NOT_TAKEN: "USER DOES NOT RESPOND TO MSG TYPE, NLETS WILL NOT FORWARD",
    SmCode.HELD: "USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL FORWARD",
    SmCode.DROPPED: "USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD",
}


# --------------------------------------------------------------------------
# Configuration.
# --------------------------------------------------------------------------


class ConfigError(NletsError):
    """A configuration with errors; ``problems`` are ``key.path: message``."""

    def __init__(self, problems: Sequence[str], source: str = "") -> None:
        self.problems = tuple(problems)
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(head + "; ".join(self.problems))

    def render(self) -> str:
        """One problem per line, for a terminal."""
        lines = [f"configuration {self.source or ''} has {len(self.problems)} error(s):".replace(
            "  ", " ")]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class AdapterError(NletsError):
    """An adapter that cannot be loaded: duplicate key, no schema, wrong API."""


# --------------------------------------------------------------------------
# The store.
# --------------------------------------------------------------------------


class StoreError(NletsError):
    """The store cannot do what was asked: a database error, a file it cannot
    open, or a file made by a newer version (the message names the file)."""


class CorruptRecord(StoreError):
    """A stored value the store cannot read back (edited by hand, or damaged)."""
