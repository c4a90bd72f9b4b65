"""Coverage-guided fuzzing of the codec (DESIGN.md, "Errors").

The contract under test: any bytes a peer can send give frames, "need more
bytes" or a protocol error (a ``NletsError`` subclass); every ``M`` body
gives a message or its ``N``/``ER`` error; any other exception is a bug.
The input goes the way the switch takes it::

    bytes -> FrameBuffer.feed -> Frame(M) -> decode_body -> parse_message
          -> schema validate -> router.route (demo directory)

and, as clients see switch output, through ``parse_output`` too. Beside the
contract it checks: feeding the bytes whole or in small pieces gives the
same frames, the buffer never holds more than one frame, and a parsed
message formats back to its input byte for byte.

Run it longer with atheris (not a test dependency)::

    .venv/bin/pip install atheris
    .venv/bin/python fuzz/fuzz_codec.py tests/fuzz_corpus -max_total_time=600

A crash writes ``crash-<sha1>`` in the current directory: copy it into
``tests/fuzz_corpus/`` (``tests/test_fuzz.py`` replays every file there) and
fix the bug. :func:`one_input` is also what ``tests/test_fuzz.py`` runs under
Hypothesis.
"""

from __future__ import annotations

import sys
from functools import cache

from nlets_switch.wire import frames as fr
from nlets_switch.config import demo_config
from nlets_switch.core.directory import Directory
from nlets_switch.errors import NletsError
from nlets_switch.wire.message import decode_body, parse_message, parse_output
from nlets_switch.core.router import Router
from nlets_switch.wire.schema import SchemaSet, load_schemas

#: Small limits, so that oversize paths are reached by short inputs.
MAX_FRAME = 512
MAX_MESSAGE = MAX_FRAME - 5
_ONLINE = frozenset({"AZNLETS20", "NYNLETS00"})


@cache
def _world() -> tuple[SchemaSet, Router]:
    schemas = load_schemas()
    cfg = demo_config()
    return schemas, Router(Directory(cfg.entries), schemas, cfg.hold)


def _feed(data: bytes, step: int) -> tuple[list[fr.Frame], bool]:
    """Frames from ``data`` fed ``step`` bytes at a time (0: whole); and whether it failed."""
    buf = fr.FrameBuffer(MAX_FRAME)
    frames: list[fr.Frame] = []
    chunks = [data] if step == 0 else [data[i:i + step] for i in range(0, len(data), step)]
    for chunk in chunks:
        try:
            frames += buf.feed(chunk)
        except NletsError:
            return frames, True
        if buf.failed:
            return frames, True
        # Bounded (PROTOCOL part 1): never more than one frame's worth held.
        assert buf.pending <= 4 + MAX_FRAME + len(chunk), (buf.pending, len(chunk))
    return frames, False


def one_message(body: bytes, link_ori: str = "AZNLETS20") -> None:
    """One ``M`` body through the switch's pure path; NletsError is a fine answer."""
    schemas, router = _world()
    try:
        text = decode_body(body, MAX_MESSAGE)
    except NletsError:
        return
    try:
        parse_output(text)
    except NletsError:
        pass
    try:
        msg = parse_message(text)
    except NletsError:
        return
    assert msg.format() == text, "parse_message/format is not a round trip"
    schema = schemas.get(msg.key)
    if schema is not None:
        try:
            schema.validate(msg.body)
        except NletsError:
            pass
    try:
        router.route(msg, link_ori, _ONLINE.__contains__)
    except NletsError:
        pass


def one_input(data: bytes) -> None:
    """The fuzz target: raises only on a bug."""
    step = (data[0] % 8) if data else 0  # the first byte picks how the bytes arrive
    whole, whole_failed = _feed(data, 0)
    pieces, pieces_failed = _feed(data, step) if step else (whole, whole_failed)
    assert (whole, whole_failed) == (pieces, pieces_failed), "framing depends on chunking"
    for f in whole:
        if f.type == fr.MESSAGE:
            one_message(f.body)
        elif f.type == fr.SIGN_ON:
            f.body.decode("ascii", "replace").partition(" ")
    # The raw bytes as one M body too, so the message parser sees every input.
    one_message(data)


def main() -> None:
    """Run under atheris (libFuzzer flags on the command line)."""
    import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # long runs only

    _world()
    # The codec is imported already (above); instrument what is loaded for coverage.
    atheris.instrument_all()
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
