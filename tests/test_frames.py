"""Link frames (PROTOCOL part 1): whole, byte by byte, and hostile."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlets_switch.errors import FrameError
from nlets_switch.wire import frames as fr


def feed_bytewise(buf: fr.FrameBuffer, data: bytes) -> list[fr.Frame]:
    out: list[fr.Frame] = []
    for i in range(len(data)):
        out += buf.feed(data[i : i + 1])
    return out


def test_round_trip_whole_and_byte_by_byte() -> None:
    frames = [fr.Frame(fr.SIGN_ON, 1, b"AZNLETS20"), fr.Frame(fr.MESSAGE, 2, b"AM.X"),
              fr.Frame(fr.HEARTBEAT, 3), fr.Frame(fr.ACK, 2**32 - 1, b"NL0000000")]
    data = b"".join(f.encode() for f in frames)
    assert fr.FrameBuffer().feed(data) == frames
    assert feed_bytewise(fr.FrameBuffer(), data) == frames


def test_length_counts_type_and_seq() -> None:
    raw = fr.encode_frame(fr.MESSAGE, 7, b"abc")
    assert struct.unpack(">IBI", raw[:9]) == (8, ord("M"), 7)


@pytest.mark.parametrize("length", [0, 4])
def test_length_below_five_is_a_framing_error(length: int) -> None:
    with pytest.raises(FrameError) as e:
        fr.FrameBuffer().feed(struct.pack(">I", length) + b"M\0\0\0\1")
    assert e.value.wire == ".01. INVALID FRAME"


def test_oversize_refused_before_its_body_is_buffered() -> None:
    buf = fr.FrameBuffer(max_frame=1024)
    with pytest.raises(FrameError):
        buf.feed(struct.pack(">I", 1025))
    assert buf.pending == 0
    with pytest.raises(FrameError):  # poisoned: the stream cannot be resynchronised
        buf.feed(fr.encode_frame(fr.HEARTBEAT, 1))


def test_unknown_type_refused_as_soon_as_seen() -> None:
    buf = fr.FrameBuffer()
    with pytest.raises(FrameError):
        buf.feed(struct.pack(">I", 60_000) + b"Z")
    assert buf.pending == 0


def test_good_frames_before_a_bad_one_are_kept() -> None:
    buf = fr.FrameBuffer()
    got = buf.feed(fr.encode_frame(fr.HEARTBEAT, 1) + struct.pack(">I", 2))
    assert got == [fr.Frame(fr.HEARTBEAT, 1)]
    assert buf.failed
    with pytest.raises(FrameError):
        buf.feed(b"")


def test_buffer_never_exceeds_one_frame() -> None:
    buf = fr.FrameBuffer(max_frame=100)
    part = fr.encode_frame(fr.MESSAGE, 1, b"x" * 95)
    assert buf.feed(part[:-1]) == []
    assert buf.pending == len(part) - 1 <= 104
    assert len(buf.feed(part[-1:])) == 1
    assert buf.pending == 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_give_frames_need_more_or_frame_error(data: bytes) -> None:
    """DESIGN.md's codec contract, whole and one byte at a time."""
    for feed in (lambda b, d: b.feed(d), feed_bytewise):
        buf = fr.FrameBuffer(max_frame=256)
        try:
            got = feed(buf, data)
        except FrameError:
            continue
        assert all(isinstance(f, fr.Frame) and f.type in fr.FRAME_TYPES for f in got)
        assert buf.pending <= 260


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(fr.FRAME_TYPES)),
                          st.integers(0, 2**32 - 1), st.binary(max_size=64)), max_size=8))
def test_any_frames_round_trip(items: list[tuple[int, int, bytes]]) -> None:
    frames = [fr.Frame(t, s, b) for t, s, b in items]
    data = b"".join(f.encode() for f in frames)
    assert fr.FrameBuffer().feed(data) == frames
    assert feed_bytewise(fr.FrameBuffer(), data) == frames
