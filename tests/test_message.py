"""Input and output headers, ER and SM texts (PROTOCOL parts 2 to 4)."""

from __future__ import annotations

from datetime import UTC

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlets_switch.errors import ErCode, InvalidCharacters, MessageError, MessageTooLong, SmCode
from nlets_switch.wire.message import (
    Message,
    address_kind,
    decode_body,
    er_text,
    format_message,
    format_output,
    parse_message,
    parse_output,
    sm_text,
    stamp,
)
from nlets_switch.wire.schema import load_schemas

SCHEMAS = load_schemas()
SAMPLES = [(k, s) for k, ks in SCHEMAS.items() for s in ks.samples]


@pytest.mark.parametrize(("key", "sample"), SAMPLES, ids=[f"{k}-{i}" for i, (k, _) in
                                                          enumerate(SAMPLES)])
def test_every_schema_sample_parses_and_formats_back_byte_for_byte(key: str, sample: str) -> None:
    msg = parse_message(sample)
    assert msg.key == key
    assert msg.format() == sample
    SCHEMAS[key].validate(msg.body)


def test_header_parts() -> None:
    m = parse_message("DQ.AZNLETS20.TX,NY0303000,NL.*A1B2.TXT\nOLN/D11111111")
    assert m == Message("DQ", "AZNLETS20", ("TX", "NY0303000", "NL"), "A1B2", "\nOLN/D11111111")
    assert m.body == "OLN/D11111111"
    assert parse_message("AM.AZNLETS20.NY.TXT HELLO NEW YORK").body == "HELLO NEW YORK"


@pytest.mark.parametrize(("raw", "code", "detail"), [
    ("AM.AZNLETS20.NY.HELLO", ErCode.NO_TXT, ""),
    ("HELLO WORLD", ErCode.NO_TXT, ""),
    ("AM.AZNLETS20.TXT HELLO", ErCode.HEADER, ""),
    ("am.AZNLETS20.NY.TXT HI", ErCode.HEADER, "MESSAGE KEY"),
    ("DQRX.AZNLETS20.NY.TXT HI", ErCode.HEADER, "MESSAGE KEY"),
    ("AM.AZNLETS2.NY.TXT HI", ErCode.HEADER, "ORIGIN"),
    ("AM.1ZNLETS20.NY.TXT HI", ErCode.HEADER, "ORIGIN"),
    ("AM.AZNLETS20.NY.*.TXT HI", ErCode.HEADER, "CONTROL"),
    ("AM.AZNLETS20.NY.*ABCDEFGHIJK.TXT HI", ErCode.HEADER, "CONTROL"),
    ("AM.AZNLETS20.NY.*A B.TXT HI", ErCode.HEADER, "CONTROL"),
    ("AM.AZNLETS20.N1,ABCDEFGHIJ.TXT HI", ErCode.DESTINATION, "N1, ABCDEFGHIJ"),
    ("AM.AZNLETS20.NY,.TXT HI", ErCode.DESTINATION, "(EMPTY)"),
])
def test_header_errors_carry_their_er(raw: str, code: ErCode, detail: str) -> None:
    with pytest.raises(MessageError) as e:
        parse_message(raw)
    assert e.value.code is code
    assert detail in e.value.detail


def test_header_injection_with_line_breaks_is_refused() -> None:
    with pytest.raises(MessageError) as e:
        parse_message("AM.AZNLETS20.NY.*AB\nSM.NL0000000.TXT HI")
    assert e.value.code is ErCode.HEADER
    with pytest.raises(MessageError):
        parse_message("AM.AZNLETS20\r\n.NY.TXT HI")


def test_address_kinds() -> None:
    assert [address_kind(a) for a in ("NL", "AX", "TX", "AZNLETS20", "NLNLEHELP",
                                      "AZDMVUPDT", "T1", "AZ")] == [
        "nl", "ax", "state", "ori", "help", "help", None, "state"]


def test_characters_and_size() -> None:
    assert decode_body(b"AM.A.B.TXT\r\nHI") == "AM.A.B.TXT\r\nHI"
    for bad in (b"AM\tX", b"\x00", b"caf\xc3\xa9", b"\x7f"):
        with pytest.raises(InvalidCharacters) as e:
            decode_body(bad)
        assert e.value.wire.startswith(".02. ")
    with pytest.raises(MessageTooLong):
        decode_body(b"x" * 11, max_len=10)


def test_output_header_of_part_3_and_back() -> None:
    text = format_output("AM", "AZNLETS20", "08:00 01/01/2010", 1239, "08:01 01/01/2010", 7,
                         "NYNLETS00", "C1", "HELLO")
    assert text == ("AM.AZNLETS20\n08:00 01/01/2010 01239\n08:01 01/01/2010 00007 NYNLETS00\n"
                    "*C1\nTXT\nHELLO")
    out = parse_output(text)
    assert (out.key, out.sender, out.input_no, out.output_no, out.receiver, out.control,
            out.text) == ("AM", "AZNLETS20", 1239, 7, "NYNLETS00", "C1", "HELLO")
    assert out.format() == text
    assert "*" not in format_output("AM", "A", "t", 1, "t", 1, "R", None, "X")


def test_stamp_in_time_zone() -> None:
    assert stamp(1262332800.0, UTC) == "08:00 01/01/2010"


def test_er_text_as_in_part_4() -> None:
    original = "RQ.AZNLETS20.AZ.TXT\nLIC/123456.LIT/PC"
    with pytest.raises(MessageError) as e:
        SCHEMAS["RQ"].validate(parse_message(original).body)
    text = er_text(e.value, original)
    lines = text.split("\n")
    assert lines[0] == ".22. INVALID MESSAGE FORMAT"
    assert "LIC, LIY, LIT" in lines[1]
    assert lines[2:] == ["ORIGINAL MESSAGE", "RQ.AZNLETS20.AZ.TXT", "LIC/123456.LIT/PC"]


def test_er_quotes_only_100_characters() -> None:
    text = er_text(MessageError(ErCode.HEADER), "X" * 500)
    assert text.endswith("\n" + "X" * 100)


def test_sm_text() -> None:
    text = sm_text(SmCode.HELD, "NY", "AM.AZNLETS20.NY.TXT HI")
    assert text.split("\n")[:2] == [
        ".02. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL FORWARD", "DESTINATION: NY"]


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F), max_size=200))
def test_any_text_gives_a_message_or_a_message_error(text: str) -> None:
    try:
        body = decode_body(text.encode("ascii"))
    except InvalidCharacters:
        return
    try:
        m = parse_message(body)
    except MessageError as e:
        assert isinstance(e.code, ErCode)
        return
    assert m.format() == body


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["AM", "DQ", "RQ", "IAQ"]), st.sampled_from(["AZNLETS20", "NY0303000"]),
       st.lists(st.sampled_from(["NY", "AZ", "TX", "NL", "AX", "AZ0070500"]), min_size=1,
                max_size=5),
       st.one_of(st.none(), st.text(alphabet="ABCXYZ0123-_", min_size=1, max_size=10)),
       st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.just("\n"),
               max_size=80))
def test_format_parse_round_trip(key: str, origin: str, dests: list[str], ctl: str | None,
                                 text: str) -> None:
    m = Message(key, origin, tuple(dests), ctl, text)
    assert parse_message(m.format()) == m


@pytest.mark.parametrize(("args", "kwargs", "wire"), [
    (("DQ", "AZNLETS20", "TX", None, "OLN/D11111111"), {},
     "DQ.AZNLETS20.TX.TXT\nOLN/D11111111"),
    (("DQ", "NL0000000", ("AZ", "NY", "TX"), "F12", "NAM/SMITH,JOHN"), {},
     "DQ.NL0000000.AZ,NY,TX.*F12.TXT\nNAM/SMITH,JOHN"),
    (("DR", "TXNLETS00", "AZNLETS20", "C1", "NO RECORD"), {},
     "DR.TXNLETS00.AZNLETS20.*C1.TXT\nNO RECORD"),
    (("AM", "AZNLETS20", ["NY"], None, "HELLO"), {"separator": " "},
     "AM.AZNLETS20.NY.TXT HELLO"),
    (("AM", "NL0000000", "AZNLETS20", None, ""), {}, "AM.NL0000000.AZNLETS20.TXT\n"),
])
def test_format_message(args: tuple[str, str, str | list[str] | tuple[str, ...], str | None, str],
                        kwargs: dict[str, str], wire: str) -> None:
    """The input header of PROTOCOL part 2, as the switch's own services write it."""
    assert format_message(*args, **kwargs) == wire
    m = parse_message(wire)
    key, origin, dests, ctl, _text = args
    assert (m.key, m.origin, m.control) == (key, origin, ctl)
    assert m.destinations == ((dests,) if isinstance(dests, str) else tuple(dests))

