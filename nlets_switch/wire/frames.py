"""Link frames (PROTOCOL part 1), pure: no asyncio, no clock, no logging.

A frame on the wire::

    +------------+--------+------------+---------------------+
    | length     | type   | seq        | body                |
    | u32 BE     | 1 byte | u32 BE     | length - 5 bytes    |
    +------------+--------+------------+---------------------+

:class:`FrameBuffer` is fed whatever the socket gave and hands out whole
frames. It never holds more than one frame's worth of bytes beyond what was
fed in one call: a length above the maximum is refused as soon as the four
length bytes are in, before any body is buffered.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Final

from nlets_switch.errors import FrameError

#: Frame types of PROTOCOL part 1.
SIGN_ON: Final = ord("C")
ACK: Final = ord("A")
NAK: Final = ord("N")
MESSAGE: Final = ord("M")
HEARTBEAT: Final = ord("H")
SIGN_OFF: Final = ord("D")

FRAME_TYPES: Final = frozenset({SIGN_ON, ACK, NAK, MESSAGE, HEARTBEAT, SIGN_OFF})

#: Default largest frame (length field), PROTOCOL part 1.
DEFAULT_MAX_FRAME: Final = 65_536
#: Smallest length: type + seq.
MIN_LENGTH: Final = 5

_HEAD = struct.Struct(">IBI")
_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Frame:
    """One link frame: its type letter (as an int), sequence and body."""

    type: int
    seq: int
    body: bytes = b""

    @property
    def letter(self) -> str:
        """The type as its ASCII letter (``"M"``)."""
        return chr(self.type)

    def encode(self) -> bytes:
        """The frame's bytes on the wire."""
        return encode_frame(self.type, self.seq, self.body)


def encode_frame(ftype: int, seq: int, body: bytes = b"") -> bytes:
    """Bytes of one frame; ``seq`` wraps at 2**32."""
    return _HEAD.pack(len(body) + MIN_LENGTH, ftype, seq & 0xFFFFFFFF) + body


class FrameBuffer:
    """Reassembles frames from a byte stream, with a bounded buffer.

    ``feed()`` returns the frames now complete; an invalid length or type
    raises :class:`FrameError` (answer ``N .01. INVALID FRAME`` and close).
    After an error the buffer is poisoned: the stream cannot be resynchronised.
    Frames completed before the bad one in the same call are still returned;
    :attr:`failed` is then true and the next call raises.
    """

    __slots__ = ("_broken", "_buf", "max_frame")

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._broken = False

    @property
    def failed(self) -> bool:
        """True once a framing error was found; the link must be closed."""
        return self._broken

    @property
    def pending(self) -> int:
        """Bytes held that do not yet make a whole frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Add ``data`` and return every frame it completes, in order."""
        if self._broken:
            raise FrameError()
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        try:
            while end - pos >= 4:
                (length,) = _LEN.unpack_from(buf, pos)
                # Refuse a bad length or type before buffering its body
                # (PROTOCOL part 1: never buffer without bound).
                if length < MIN_LENGTH or length > self.max_frame:
                    raise FrameError()
                if end - pos >= 5 and buf[pos + 4] not in FRAME_TYPES:
                    raise FrameError()
                if end - pos < 4 + length:
                    break
                ftype = buf[pos + 4]
                (seq,) = _LEN.unpack_from(buf, pos + 5)
                frames.append(Frame(ftype, seq, bytes(buf[pos + 9 : pos + 4 + length])))
                pos += 4 + length
        except FrameError:
            self._broken = True
            self._buf = bytearray()
            if not frames:
                raise
            return frames
        if pos:
            del buf[:pos]
        return frames
