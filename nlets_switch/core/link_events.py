"""The events of a :class:`~nlets_switch.core.link.Link` (PROTOCOL part 1).

NamedTuples: typed, immutable, and cheap on the per-message path. Import
them from :mod:`nlets_switch.core.link`.
"""

from __future__ import annotations

from typing import NamedTuple

from nlets_switch.errors import LinkError
from nlets_switch.wire import frames as fr


class SignOnRequest(NamedTuple):
    """Switch side: the peer sent ``C``; decide with accept/refuse_sign_on."""

    seq: int
    ori: str
    credential: str | None


class SignedOn(NamedTuple):
    """Endpoint side: the switch accepted our ``C``; ``switch_ori`` is its body."""

    seq: int
    switch_ori: str


class SignOnRefused(NamedTuple):
    """Endpoint side: the switch answered our ``C`` with anything but ``A``."""

    seq: int
    reason: str


class MessageReceived(NamedTuple):
    """An ``M`` frame: one Nlets message (both sides)."""

    seq: int
    body: bytes


class Acked(NamedTuple):
    """An ``A`` frame for our frame ``seq`` (both sides)."""

    seq: int
    body: bytes


class Naked(NamedTuple):
    """An ``N`` frame for our frame ``seq``; ``body`` is ``.NN. TEXT``."""

    seq: int
    body: bytes


class SignOffRequest(NamedTuple):
    """Switch side: the peer sent ``D``; answer ``A`` once what it sent is in custody."""

    seq: int


class SignedOff(NamedTuple):
    """Endpoint side: the switch acknowledged our ``D``; the link is closed."""

    seq: int


class NotSignedOn(NamedTuple):
    """Switch side: a frame before sign-on; the link answered ``N .01.`` and closed."""

    seq: int


class AlreadySignedOn(NamedTuple):
    """Switch side: a second ``C`` on a signed-on link; answered ``N``, link kept."""

    seq: int


class FramingError(NamedTuple):
    """The byte stream broke (bad length or type); input is over (part 1)."""

    error: LinkError


class TimedOut(NamedTuple):
    """A timer ended the link: ``"sign_on"`` (``N .01.`` sent) or ``"heartbeat"``."""

    what: str


class FrameReceived(NamedTuple):
    """Every frame as it came, before the table handles it (``report_frames=True``)."""

    frame: fr.Frame


LinkEvent = (SignOnRequest | SignedOn | SignOnRefused | MessageReceived | Acked | Naked
             | SignOffRequest | SignedOff | NotSignedOn | AlreadySignedOn | FramingError
             | TimedOut | FrameReceived)
