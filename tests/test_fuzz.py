"""The codec's contract under fuzzing (DESIGN.md, "Errors").

Any input gives frames, "need more bytes" or a protocol error (a
``NletsError``); any other exception is a bug. The target is
``fuzz/fuzz_codec.py``'s :func:`one_input` - the same function the atheris
harness runs for as long as one likes - here driven by Hypothesis for a
short bounded run (a few thousand examples), and replayed over
``tests/fuzz_corpus/``: seeds, and every input that ever found a bug.
"""

from __future__ import annotations

import importlib.util
import struct
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nlets_switch.wire import frames as fr

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


def _load_harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_codec", ROOT / "fuzz" / "fuzz_codec.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_codec"] = mod
    spec.loader.exec_module(mod)
    return mod


harness = _load_harness()
one_input: Callable[[bytes], None] = harness.one_input
one_message: Callable[[bytes], None] = harness.one_message

FUZZ = settings(max_examples=1500, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

# -- arbitrary bytes ----------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=1500))
def test_arbitrary_bytes_give_frames_more_bytes_or_protocol_errors(data: bytes) -> None:
    one_input(data)


# -- frame-shaped bytes: valid headers, wrong ones, truncation, chunking ---------------

_TYPES = st.sampled_from([*b"CAMNHD", 0, ord("Z"), ord("m"), 0xFF])


@st.composite
def frame_streams(draw: st.DrawFn) -> bytes:
    parts = []
    for _ in range(draw(st.integers(1, 6))):
        ftype = draw(_TYPES)
        seq = draw(st.integers(0, 2**32 - 1))
        body = draw(st.binary(max_size=600) | st.text(
            st.characters(min_codepoint=0, max_codepoint=127), max_size=300).map(str.encode))
        frame = fr.encode_frame(ftype, seq, body)
        if draw(st.booleans()):  # lie about the length
            frame = struct.pack(">I", draw(st.integers(0, 2**32 - 1))) + frame[4:]
        parts.append(frame)
    data = b"".join(parts)
    cut = draw(st.integers(0, len(data)))
    return bytes([draw(st.integers(0, 255))]) + data[:cut]  # first byte: how it is chunked


@FUZZ
@given(frame_streams())
def test_frame_streams_whole_or_in_pieces_give_the_same_frames_or_a_frame_error(
        data: bytes) -> None:
    one_input(data)


# -- message-shaped text: header pieces with injected separators and characters ----------

_PIECES = st.sampled_from([
    "AM", "DQ", "RQ", "KQ", "YQ", "DR", "IAQ", "GPQ", "ZZ", "A", "AZNLETS20", "NYNLETS00",
    "NY0303000", "NL0000000", "AZ", "NY", "NL", "AX", "NLNLEHELP", "TXT", "*", "*CTL", ",",
    ".", "\r", "\n", "\r\n", " ", "NAM/SMITH,JOHN", "DOB/19500101", "SEX/M", "LIC/123456",
    "LIY/2027", "LIT/PC", "OLN/A1234567", "OLS/AZ", "VIN/1HGCM82633A004352", "/", "\x00", "\x7f",
])


@FUZZ
@given(st.lists(_PIECES | st.text(max_size=5), max_size=25).map("".join))
def test_message_shaped_text_gives_a_message_or_its_error(text: str) -> None:
    one_message(text.encode("utf-8"))


# -- the corpus: seeds and every input that found a bug --------------------------------


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*.bin")), ids=lambda p: p.stem)
def test_corpus_replays(path: Path) -> None:
    one_input(path.read_bytes())


def test_corpus_is_there() -> None:
    assert len(list(CORPUS.glob("*.bin"))) >= 20


def test_the_harness_lets_a_bug_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    """A non-protocol exception must escape the target, or the fuzzer could find nothing."""

    def buggy(raw: str) -> object:
        raise ZeroDivisionError

    monkeypatch.setattr(harness, "parse_message", buggy)
    with pytest.raises(ZeroDivisionError):
        one_message(b"AM.AZNLETS20.NY.TXT HI")
