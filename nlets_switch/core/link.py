"""One link of PROTOCOL part 1, sans-IO: the protocol object of either side.

A :class:`Link` is one TCP (or TLS) connection's protocol state, in the
manner of h11's ``Connection``: it never touches a socket nor reads a clock.
Bytes come in through :meth:`Link.receive_data` (with ``now``) and come out
as typed events; frames to send are queued by the ``send_*`` methods and by
the link itself (answers to heartbeats, the ``N`` of a refused frame) and
taken with :meth:`Link.data_to_send`, as aioquic's ``datagrams_to_send``.
Timers are aioquic's too: :meth:`Link.next_deadline` says when
:meth:`Link.handle_timer` wants to run.

A link plays one :class:`Role`: the switch's side (it takes sign-ons) or an
endpoint's (it signs on). Which frame does what in which state is the table
``_TABLE`` below; every cell is a rule of PROTOCOL part 1:

==================  =========================================================
state               meaning
==================  =========================================================
AWAITING_SIGN_ON    switch: nothing accepted yet; endpoint: its ``C`` is out
SIGNED_ON           sign-on accepted: messages flow both ways
SIGNING_OFF         input is over (``D``, a framing error, end of stream);
                    the owner sends what it still owes, then :meth:`close`
CLOSED              nothing more is read or sent
==================  =========================================================

The switch side holds the frames that follow a ``C`` until the owner decides
the sign-on (:meth:`Link.accept_sign_on` or :meth:`Link.refuse_sign_on`),
because the credential check is slow and may run elsewhere.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Final

from nlets_switch.core.link_events import (
    Acked,
    AlreadySignedOn,
    FrameReceived,
    FramingError,
    LinkEvent,
    MessageReceived,
    Naked,
    NotSignedOn,
    SignedOff,
    SignedOn,
    SignOffRequest,
    SignOnRefused,
    SignOnRequest,
    TimedOut,
)
from nlets_switch.errors import FrameError, LinkError, SignOnRequired
from nlets_switch.wire import frames as fr

__all__ = [
    "Acked", "AlreadySignedOn", "FrameReceived", "FramingError", "Link", "LinkEvent",
    "MessageReceived", "Naked", "NotSignedOn", "Role", "SignOffRequest",
    "SignOnRefused", "SignOnRequest", "SignedOff", "SignedOn", "State", "TimedOut",
]


class Role(enum.Enum):
    """Which side of a link this object plays."""

    SWITCH = "switch"
    ENDPOINT = "endpoint"


class State(enum.Enum):
    """The link's state (see the module's table)."""

    AWAITING_SIGN_ON = "awaiting sign-on"
    SIGNED_ON = "signed on"
    SIGNING_OFF = "signing off"
    CLOSED = "closed"


#: The answer to a second ``C`` on a signed-on link (the link stays).
ALREADY_SIGNED_ON: Final = LinkError("ALREADY SIGNED ON", close=False)

# A deferred framing error (it came after a C whose check is still running).
_BROKEN: Final = object()


class Link:
    """The protocol state of one link, for the switch's side or an endpoint's.

    ``now`` is any monotonic clock, in seconds. ``signon_timeout`` (switch
    side: time allowed to sign on), ``heartbeat_interval`` (idle time before
    an ``H`` is sent; None: never) and ``heartbeat_timeout`` (time allowed to
    answer it) are public and may be changed while the link runs. With
    ``report_frames`` every frame read is also reported as it came
    (:class:`FrameReceived`, before its own event), for tools that show them.
    """

    __slots__ = (
        "_buffer", "_deferred", "_out", "_out_bytes", "_pending_sign_on", "_row", "_state",
        "_takes", "connected_at", "frame_started", "frame_timeout", "heartbeat_interval",
        "heartbeat_timeout", "last_rx", "ori",
        "ping_at", "ping_seq", "report_frames", "role", "seq_out", "sign_off_seq",
        "signon_timeout",
    )

    def __init__(self, role: Role, now: float, *, max_frame: int = fr.DEFAULT_MAX_FRAME,
                 signon_timeout: float | None = None, heartbeat_interval: float | None = None,
                 heartbeat_timeout: float = 10.0, report_frames: bool = False) -> None:
        self.role = role
        self.report_frames = report_frames
        self._state = State.AWAITING_SIGN_ON
        self._row = _TABLE[role, self._state]
        self._takes = True
        #: The ORI signed on (switch side: once accepted; endpoint side: the one asked).
        self.ori = ""
        self.connected_at = now
        self.last_rx = now
        self.signon_timeout = signon_timeout
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        #: Switch side, signed on: seconds one frame may take once it began
        #: (None: no limit), and when the frame being read began.
        self.frame_timeout: float | None = None
        self.frame_started: float | None = None
        self.seq_out = 0
        self.ping_seq: int | None = None
        self.ping_at = 0.0
        #: Switch side: the seq of the peer's ``D``; endpoint side: of ours.
        self.sign_off_seq: int | None = None
        self._buffer = fr.FrameBuffer(max_frame)
        self._out: list[bytes] = []
        self._out_bytes = 0
        # Switch side, while a sign-on is being decided: the C's seq, and the
        # frames (or a framing error) that came after it, to be read after.
        self._pending_sign_on: int | None = None
        self._deferred: list[fr.Frame | object] | None = None

    # -- properties ---------------------------------------------------------

    @property
    def state(self) -> State:
        """Where the link is in the table (see the module's doc)."""
        return self._state

    @state.setter
    def state(self, value: State) -> None:
        # The table's row and whether input is read are kept with the state,
        # so that each frame costs one dictionary lookup.
        self._state = value
        self._row = _TABLE[self.role, value]
        self._takes = (value is State.AWAITING_SIGN_ON or value is State.SIGNED_ON
                       or (value is State.SIGNING_OFF and self.role is Role.ENDPOINT))

    @property
    def max_frame(self) -> int:
        """The largest frame length taken (part 1; ``limits.max_frame``)."""
        return self._buffer.max_frame

    @max_frame.setter
    def max_frame(self, value: int) -> None:
        self._buffer.max_frame = value

    @property
    def pending_bytes(self) -> int:
        """Bytes queued for sending and not yet taken by :meth:`data_to_send`."""
        return self._out_bytes

    @property
    def deciding_sign_on(self) -> bool:
        """Switch side: a ``C`` came and its sign-on is not decided yet."""
        return self._pending_sign_on is not None

    @property
    def takes_input(self) -> bool:
        """Whether frames that arrive are still read."""
        return self._takes

    # -- output -------------------------------------------------------------

    def data_to_send(self) -> list[bytes]:
        """The frames queued since the last call, in order; the queue is emptied."""
        out = self._out
        if out:
            self._out = []
            self._out_bytes = 0
        return out

    def _queue(self, ftype: int, seq: int, body: bytes = b"") -> None:
        if self._state is State.CLOSED:
            return  # the connection is gone; nothing more goes out
        data = fr.encode_frame(ftype, seq, body)
        self._out.append(data)
        self._out_bytes += len(data)

    def _next_seq(self) -> int:
        self.seq_out = (self.seq_out + 1) & 0xFFFFFFFF
        return self.seq_out

    def send_message(self, body: bytes) -> int:
        """Queue an ``M``; returns its seq (the peer's ``A``/``N`` names it)."""
        seq = self._next_seq()
        self._queue(fr.MESSAGE, seq, body)
        return seq

    def send_ack(self, seq: int, body: bytes = b"") -> None:
        """Queue the ``A`` of the peer's frame ``seq``."""
        self._queue(fr.ACK, seq, body)

    def send_nak(self, seq: int, error: LinkError) -> None:
        """Queue the ``N`` of the peer's frame ``seq`` with the error's ``.NN. TEXT``."""
        self._queue(fr.NAK, seq, error.wire.encode("ascii"))

    def send_heartbeat(self, now: float) -> int:
        """Queue an ``H`` of our own; the peer answers with the same seq."""
        seq = self._next_seq()
        self.ping_seq = seq
        self.ping_at = now
        self._queue(fr.HEARTBEAT, seq)
        return seq

    def send_frame(self, ftype: int, body: bytes = b"", seq: int | None = None) -> int:
        """Queue any frame, whatever the state (tools and conformance tests); returns its seq.

        Without ``seq`` the next number of this side is used.
        """
        s = self._next_seq() if seq is None else seq
        self._queue(ftype, s, body)
        return s

    def send_sign_on(self, ori: str, credential: str | None = None) -> int:
        """Endpoint side: queue the ``C``; the answer comes as SignedOn or SignOnRefused."""
        self.ori = ori
        body = ori if credential is None else f"{ori} {credential}"
        return self.send_frame(fr.SIGN_ON, body.encode("ascii", "replace"))

    def send_sign_off(self) -> int:
        """Endpoint side: queue the ``D``; its ``A`` comes as SignedOff."""
        seq = self.send_frame(fr.SIGN_OFF)
        self.sign_off_seq = seq
        if self.state is State.SIGNED_ON:
            self.state = State.SIGNING_OFF
        return seq

    # -- the switch side's sign-on decision ----------------------------------

    def accept_sign_on(self, ori: str, body: bytes, now: float) -> list[LinkEvent]:
        """Accept the pending ``C`` as ``ori``: ``A`` with ``body`` (the switch's ORI).

        Returns the events of the frames that came after the ``C`` meanwhile.
        """
        seq = self._pending_sign_on
        if seq is None or self.state is not State.AWAITING_SIGN_ON:
            return []
        self._pending_sign_on = None
        self.ori = ori
        self.state = State.SIGNED_ON
        self._queue(fr.ACK, seq, body)
        deferred, self._deferred = self._deferred or [], None
        events: list[LinkEvent] = []
        for item in deferred:
            if not self.takes_input:
                break
            if item is _BROKEN:
                self._broken(events)
            else:
                assert isinstance(item, fr.Frame)
                self._dispatch(item, events, now)
        return events

    def refuse_sign_on(self, error: LinkError) -> None:
        """Refuse the pending ``C``: ``N`` with ``error`` and closed (part 1)."""
        seq = self._pending_sign_on
        self._pending_sign_on = None
        self._deferred = None
        if seq is not None:
            self._queue(fr.NAK, seq, error.wire.encode("ascii"))
        self.state = State.CLOSED

    # -- input ----------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[LinkEvent]:
        """Feed bytes as they came; returns the events of the frames they complete."""
        self.last_rx = now
        if not self._takes:
            return []
        try:
            frames = self._buffer.feed(data)
        except FrameError:
            frames = []
        events: list[LinkEvent] = []
        # A frame begun and not finished: its deadline runs from when it began
        # (a dribbled frame must not hold a link for minutes).
        if not self._buffer.pending:
            self.frame_started = None
        elif frames or self.frame_started is None:
            self.frame_started = now
        for f in frames:
            if self.report_frames:
                events.append(FrameReceived(f))
            if self._deferred is not None:
                self._deferred.append(f)
            else:
                row = self._row
                (row.get(f.type) or row[None])(self, f, events, now)
                if not self._takes:
                    return events
        if self._buffer.failed:
            if self._deferred is not None:
                self._deferred.append(_BROKEN)
            else:
                self._broken(events)
        return events

    def receive_eof(self) -> None:
        """The peer will send nothing more: input is over."""
        if self.state is State.CLOSED:
            return
        if self.role is Role.ENDPOINT:
            self.state = State.CLOSED
        else:
            self._pending_sign_on = None
            self._deferred = None
            self.state = State.SIGNING_OFF

    def close(self) -> None:
        """Nothing more is read or sent (what is queued may still be taken)."""
        self.state = State.CLOSED
        self._pending_sign_on = None
        self._deferred = None

    def _broken(self, events: list[LinkEvent]) -> None:
        self.state = State.CLOSED if self.role is Role.ENDPOINT else State.SIGNING_OFF
        events.append(FramingError(FrameError()))

    def _dispatch(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        row = self._row
        (row.get(f.type) or row[None])(self, f, events, now)

    # -- the cells of the table (each a rule of PROTOCOL part 1) -----------------

    def _sign_on(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        # Sign-on comes first: a C with the ORI and optionally a space and a credential.
        text = f.body.decode("ascii", "replace")
        ori, _, cred = text.partition(" ")
        self._pending_sign_on = f.seq
        self._deferred = []
        events.append(SignOnRequest(f.seq, ori, cred or None))

    def _not_signed_on(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        # Anything else before an accepted sign-on gets N and the link is closed.
        self._queue(fr.NAK, f.seq, SignOnRequired().wire.encode("ascii"))
        self.state = State.CLOSED
        events.append(NotSignedOn(f.seq))

    def _already(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        self._queue(fr.NAK, f.seq, ALREADY_SIGNED_ON.wire.encode("ascii"))
        events.append(AlreadySignedOn(f.seq))

    def _message(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        events.append(MessageReceived(f.seq, f.body))

    def _ack(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        events.append(Acked(f.seq, f.body))

    def _nak(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        events.append(Naked(f.seq, f.body))

    def _heartbeat(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        # H: the peer answers H with the same seq. Ours answered, or theirs to answer.
        if self.ping_seq is not None and f.seq == self.ping_seq:
            self.ping_seq = None
        else:
            self._queue(fr.HEARTBEAT, f.seq)

    def _sign_off(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        # D: the switch answers A (after the A of every earlier message), flushes, closes.
        self.sign_off_seq = f.seq
        self.state = State.SIGNING_OFF
        events.append(SignOffRequest(f.seq))

    def _ignore(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        return None

    def _signed_on(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        self.state = State.SIGNED_ON
        events.append(SignedOn(f.seq, f.body.decode("ascii", "replace")))

    def _refused(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        self.state = State.CLOSED
        events.append(SignOnRefused(f.seq, f.body.decode("ascii", "replace")))

    def _ack_or_signed_off(self, f: fr.Frame, events: list[LinkEvent], now: float) -> None:
        if f.seq == self.sign_off_seq:
            self.state = State.CLOSED
            events.append(SignedOff(f.seq))
        else:
            events.append(Acked(f.seq, f.body))

    # -- timers -----------------------------------------------------------------

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` has something to do (None: nothing pending)."""
        if self.state is State.SIGNED_ON:
            d: float | None = None
            if self.ping_seq is not None:
                d = self.ping_at + self.heartbeat_timeout
            elif self.heartbeat_interval is not None:
                d = self.last_rx + self.heartbeat_interval
            if self.frame_started is not None and self.frame_timeout is not None \
                    and self.role is Role.SWITCH:
                f = self.frame_started + self.frame_timeout
                if d is None or f < d:
                    d = f
            return d
        if self.state is State.AWAITING_SIGN_ON and self.signon_timeout is not None \
                and self.role is Role.SWITCH:
            return self.connected_at + self.signon_timeout
        return None

    def handle_timer(self, now: float) -> list[LinkEvent]:
        """Sign-on time-out, heartbeat, heartbeat time-out (PROTOCOL part 1)."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return []
        if self.state is State.AWAITING_SIGN_ON:
            self._queue(fr.NAK, 0, SignOnRequired().wire.encode("ascii"))
            self.close()
            return [TimedOut("sign_on")]
        if self.frame_started is not None and self.frame_timeout is not None \
                and self.role is Role.SWITCH and now >= self.frame_started + self.frame_timeout:
            # PROTOCOL part 1: a frame too slow to arrive is a framing error.
            self._queue(fr.NAK, 0, FrameError().wire.encode("ascii"))
            self.close()
            return [TimedOut("frame")]
        if self.ping_seq is not None:
            # No answer to our H in time: closed; what it was owed stays held.
            self.close()
            return [TimedOut("heartbeat")]
        self.send_heartbeat(now)
        return []


_Cell = Callable[[Link, fr.Frame, list[LinkEvent], float], None]

# (role, state) -> frame type -> what it does; the None key is every other type.
_TABLE: Final[dict[tuple[Role, State], dict[int | None, _Cell]]] = {
    (Role.SWITCH, State.AWAITING_SIGN_ON): {
        fr.SIGN_ON: Link._sign_on,
        None: Link._not_signed_on,
    },
    (Role.SWITCH, State.SIGNED_ON): {
        fr.MESSAGE: Link._message,
        fr.ACK: Link._ack,
        fr.NAK: Link._nak,
        fr.HEARTBEAT: Link._heartbeat,
        fr.SIGN_OFF: Link._sign_off,
        fr.SIGN_ON: Link._already,
        None: Link._ignore,
    },
    (Role.SWITCH, State.SIGNING_OFF): {None: Link._ignore},
    (Role.SWITCH, State.CLOSED): {None: Link._ignore},
    (Role.ENDPOINT, State.AWAITING_SIGN_ON): {
        fr.ACK: Link._signed_on,
        None: Link._refused,
    },
    (Role.ENDPOINT, State.SIGNED_ON): {
        fr.MESSAGE: Link._message,
        fr.ACK: Link._ack,
        fr.NAK: Link._nak,
        fr.HEARTBEAT: Link._heartbeat,
        None: Link._ignore,
    },
    (Role.ENDPOINT, State.SIGNING_OFF): {
        fr.MESSAGE: Link._message,
        fr.ACK: Link._ack_or_signed_off,
        fr.NAK: Link._nak,
        fr.HEARTBEAT: Link._heartbeat,
        None: Link._ignore,
    },
    (Role.ENDPOINT, State.CLOSED): {None: Link._ignore},
}
