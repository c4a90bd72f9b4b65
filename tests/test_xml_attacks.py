"""XML attacks and bad input (XML.md): each refused with its ER or N, nothing expanded or fetched.

XXE (file and network entities, external DTDs, parameter entities, schema
hints, XInclude), entity expansion ("billion laughs"), documents at the frame
limit, and every bad input XML.md lists.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from nlets_switch.errors import (
    ErCode,
    InvalidCharacters,
    LinkError,
    MessageError,
    MessageTooLong,
)
from nlets_switch.wire.message import QUOTE_LEN, er_text
from nlets_switch.wire.schema import load_schemas
from nlets_switch.wire.xml import MAX_XML, XmlCodec
from nlets_switch.wire.xml_parse import xml_parser

CODEC = XmlCodec(load_schemas())
GOOD = CODEC.input_to_xml("DQ.AZNLETS20.TX.*CASE12.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M",
                          pretty=True).decode()
_ROOT = GOOD.index("<n2:NLETS")


def with_prolog(prolog: str, body: str = GOOD) -> bytes:
    """The good document with ``prolog`` (a DOCTYPE...) before its root element."""
    return (body[:_ROOT] + prolog + "\n" + body[_ROOT:]).encode()


def error_of(doc: bytes) -> MessageError:
    got = CODEC.read_input(doc)
    assert got.error is not None, got.text
    return got.error


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP listener on 127.0.0.1 that records whatever connects (nothing should)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(0.2)
    got: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    got.append(conn.recv(4096))
                except OSError:
                    got.append(b"")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1], got
    stop.set()
    t.join(2)
    srv.close()


# --------------------------------------------------------------------------
# XXE and entity expansion: refused before parsing, never fetched, never expanded.
# --------------------------------------------------------------------------


def test_xxe_file_entity_is_refused_before_parsing(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    doc = with_prolog(f'<!DOCTYPE n2:NLETS [<!ENTITY x SYSTEM "file://{secret}">]>',
                      GOOD.replace(">SMITH<", ">&x;<"))
    err = error_of(doc)
    assert err.code == ErCode.HEADER
    assert "DECLARATIONS ARE NOT ALLOWED" in err.detail
    assert "TOPSECRET" not in str(err)


@pytest.mark.parametrize("prolog", [
    '<!DOCTYPE n2:NLETS [<!ENTITY x SYSTEM "http://127.0.0.1:{port}/x">]>',
    '<!DOCTYPE n2:NLETS SYSTEM "http://127.0.0.1:{port}/x.dtd">',
    '<!DOCTYPE n2:NLETS [<!ENTITY % p SYSTEM "http://127.0.0.1:{port}/p"> %p;]>',
])
def test_xxe_network_entity_is_refused_and_never_fetched(
        listener: tuple[int, list[bytes]], prolog: str) -> None:
    port, got = listener
    doc = with_prolog(prolog.format(port=port), GOOD.replace(">SMITH<", ">&x;<")
                      if "ENTITY x" in prolog else GOOD)
    assert error_of(doc).code == ErCode.HEADER
    time.sleep(0.3)
    assert got == []


def test_the_parser_itself_resolves_and_fetches_nothing(
        listener: tuple[int, list[bytes]], tmp_path: Path) -> None:
    """Belt and braces: past the declaration check, the parser still expands nothing."""
    port, got = listener
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    raw = (f'<!DOCTYPE r [<!ENTITY f SYSTEM "file://{secret}">'
           f'<!ENTITY n SYSTEM "http://127.0.0.1:{port}/n">]><r>&f;&n;</r>').encode()
    try:
        root = etree.fromstring(raw, xml_parser())
    except etree.XMLSyntaxError:
        pass  # refusing is fine too
    else:
        assert "TOPSECRET" not in etree.tostring(root).decode()
        assert "TOPSECRET" not in "".join(root.itertext())
    time.sleep(0.3)
    assert got == []


def test_billion_laughs_is_refused_quickly_and_small() -> None:
    lol = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    doc = with_prolog(f"<!DOCTYPE n2:NLETS [{''.join(lol)}]>",
                      GOOD.replace(">SMITH<", ">&lol9;<"))
    tracemalloc.start()
    t0 = time.perf_counter()
    err = error_of(doc)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert err.code == ErCode.HEADER
    assert elapsed < 1.0
    assert peak < 2_000_000


def test_the_parser_itself_does_not_expand_billion_laughs() -> None:
    lol = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, 10)]
    raw = f"<!DOCTYPE r [{''.join(lol)}]><r>&lol9;</r>".encode()
    try:
        root = etree.fromstring(raw, xml_parser())
    except etree.XMLSyntaxError:
        return  # libxml2's amplification limit: refused
    assert len("".join(root.itertext())) < 1_000


def test_an_undeclared_entity_is_not_well_formed() -> None:
    err = error_of(GOOD.replace(">SMITH<", ">&x;<").encode())
    assert err.code == ErCode.FORMAT  # the header was read: .22., naming the fault
    assert "Entity 'x' not defined" in err.detail
    assert err.control == "CASE12"


def test_a_schema_location_hint_is_never_fetched(listener: tuple[int, list[bytes]]) -> None:
    port, got = listener
    doc = GOOD.replace(' n2:version="4.00"', ' n2:version="4.00" xmlns:xsi='
                       '"http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation='
                       f'"http://www.nlets.org/niem/1.0 http://127.0.0.1:{port}/x.xsd"')
    got_input = CODEC.read_input(doc.encode())
    assert got_input.text is not None  # the hint is ignored; our own XSD decides
    time.sleep(0.3)
    assert got == []


def test_xinclude_is_not_processed(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    doc = GOOD.replace("<n2:Person>", '<xi:include xmlns:xi="http://www.w3.org/2001/XInclude"'
                       f' href="file://{secret}" parse="text"/><n2:Person>')
    err = error_of(doc.encode())
    assert err.code == ErCode.FORMAT
    assert "xi" in err.detail or "include" in err.detail
    assert "TOPSECRET" not in str(err)


# --------------------------------------------------------------------------
# Size: bounded by the frame limit.
# --------------------------------------------------------------------------


def am_document(size: int) -> bytes:
    head = CODEC.input_to_xml("AM.AZNLETS20.NY.TXT\nX")
    filler = b"A" * (size - len(head) + 1)
    return head.replace(b">X<", b">" + filler + b"<")


def test_a_60_kb_document_at_the_frame_limit_is_answered() -> None:
    doc = am_document(MAX_XML)
    assert len(doc) == MAX_XML
    got = CODEC.read_input(doc)
    assert got.text is not None and got.text.endswith("A" * 60_000)


def test_one_byte_over_the_limit_is_refused_before_parsing() -> None:
    with pytest.raises(MessageTooLong) as info:
        CODEC.read_input(am_document(MAX_XML + 1))
    assert info.value.wire == ".03. MESSAGE TOO LONG"


def test_a_smaller_configured_limit_applies() -> None:
    codec = XmlCodec(load_schemas(), max_bytes=1_000)
    with pytest.raises(MessageTooLong):
        codec.read_input(am_document(1_001))


@pytest.mark.parametrize("doc", [
    # 60 KB of nesting, far past libxml2's depth limit
    ("<n2:NLETS>" + "<a>" * 9_000 + "</a>" * 9_000 + "</n2:NLETS>").encode(),
    # 60 KB of elements inside a valid envelope
    GOOD.replace("<n2:Person>", '<n2:Field n2:tag="REM">X</n2:Field>' * 1_500
                 + "<n2:Person>").encode(),
    # 60 KB of attributes
    GOOD.replace("<n2:Person>", "<n2:Person " + " ".join(
        f'a{i}="x"' for i in range(8_000)) + ">").encode()[:MAX_XML],
])
def test_large_hostile_documents_get_an_answer_not_a_crash(doc: bytes) -> None:
    assert len(doc) <= MAX_XML
    t0 = time.perf_counter()
    got = CODEC.read_input(doc)
    assert time.perf_counter() - t0 < 2.0
    assert (got.error is None) != (got.text is None)


# --------------------------------------------------------------------------
# The bad inputs of XML.md, each with its ER (or N), quoting the input.
# --------------------------------------------------------------------------

BAD = [
    ("not well-formed (header)", GOOD.replace("</nh2:OriginatingORIID>", "</nh2:Origin>"),
     ErCode.HEADER, "NOT WELL-FORMED"),
    ("not well-formed (after the header)", GOOD.replace("</nc:PersonSexCode>", "</nc:Sex>"),
     ErCode.FORMAT, "NOT WELL-FORMED"),
    ("empty", "", ErCode.HEADER, "NOT WELL-FORMED"),
    ("wrong root", GOOD.replace("n2:NLETS ", "n2:NLETZ ").replace("</n2:NLETS>", "</n2:NLETZ>"),
     ErCode.HEADER, "ROOT MUST BE n2:NLETS"),
    ("wrong namespace", GOOD.replace("http://www.nlets.org/niem/1.0", "urn:other"),
     ErCode.HEADER, "NAMESPACE"),
    ("wrong version", GOOD.replace('n2:version="4.00"', 'n2:version="3.00"'), ErCode.HEADER,
     "n2:version"),
    ("unknown key", GOOD.replace(">DQ<", ">ZZ<"), ErCode.HEADER, "UNKNOWN MESSAGE KEY ZZ"),
    ("missing key", GOOD.replace("<nh2:MessageKeyCodeText>DQ</nh2:MessageKeyCodeText>", ""),
     ErCode.HEADER, "MISSING nh2:MessageKeyCodeText"),
    ("missing origin", GOOD.replace(
        "<nh2:OriginatingORIID>AZNLETS20</nh2:OriginatingORIID>", ""),
     ErCode.HEADER, "MISSING nh2:OriginatingORIID"),
    ("missing destination", GOOD.replace("<nh2:DestinationORIID>TX</nh2:DestinationORIID>", ""),
     ErCode.HEADER, "MISSING nh2:DestinationORIID"),
    ("missing header", GOOD[:GOOD.index("<n2:NLETSMessageHeader>")]
     + GOOD[GOOD.index("</n2:NLETSMessageHeader>") + 24:],
     ErCode.HEADER, "MISSING n2:NLETSMessageHeader"),
    ("header out of order", GOOD.replace(
        "<nh2:MessageKeyCodeText>DQ</nh2:MessageKeyCodeText>", "").replace(
        "</nh2:DestinationORIID>", "</nh2:DestinationORIID><nh2:MessageKeyCodeText>DQ"
        "</nh2:MessageKeyCodeText>"), ErCode.HEADER, "n2:NLETSMessageHeader"),
    ("malformed origin", GOOD.replace("AZNLETS20", "AZ1"), ErCode.HEADER, "ORIGIN: AZ1"),
    ("malformed destination", GOOD.replace(">TX<", ">TEXAS<"), ErCode.DESTINATION, "TEXAS"),
    ("control field too long", GOOD.replace("CASE12", "CASE1234567"), ErCode.HEADER,
     "CONTROL FIELD"),
    ("invalid field (DOB shape)", GOOD.replace("1950-01-01", "1950/01/01"), ErCode.DOB,
     "nc:PersonBirthDate/nc:Date"),
    ("invalid field (empty value)", GOOD.replace(">M<", "><"), ErCode.FORMAT,
     "nc:PersonSexCode"),
    ("invalid field (period)", GOOD.replace(">JOHN<", ">JO.HN<"), ErCode.FORMAT,
     "nc:PersonGivenName"),
    ("unknown element", GOOD.replace("<nc:PersonSexCode>", "<nc:PersonEyeCode>B"
                                     "</nc:PersonEyeCode><nc:PersonSexCode>"),
     ErCode.FORMAT, "nc:PersonEyeCode"),
    ("unknown field tag", GOOD.replace("<n2:Person>", '<n2:Field n2:tag="XYZ">1</n2:Field>'
                                       "<n2:Person>"), ErCode.FORMAT, "@n2:tag"),
    ("wrong data element", GOOD.replace("NLETSInquiryData", "NLETSMailData"), ErCode.FORMAT,
     "n2:NLETSMailData"),
    ("free text for a field key", GOOD.replace(
        "<n2:Person>", "<n2:InquiryDescriptionText>HI</n2:InquiryDescriptionText><n2:Person>"),
     ErCode.FORMAT, "TAKES FIELDS"),
    ("doctype", GOOD[:_ROOT] + "<!DOCTYPE n2:NLETS>" + GOOD[_ROOT:], ErCode.HEADER,
     "DECLARATIONS"),
    ("entity declaration", GOOD[:_ROOT] + '<!DOCTYPE n2:NLETS [<!ENTITY e "x">]>'
     + GOOD[_ROOT:], ErCode.HEADER, "DECLARATIONS"),
    ("switch's header elements", GOOD.replace(
        "</n2:NLETSMessageHeader>", "<nh2:MessageReceiveDate>01/01/2020"
        "</nh2:MessageReceiveDate></n2:NLETSMessageHeader>"), ErCode.HEADER,
     "SET BY THE SWITCH"),
]


@pytest.mark.parametrize(("name", "doc", "code", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_the_er_xml_md_names(name: str, doc: str, code: ErCode,
                                            says: str) -> None:
    err = error_of(doc.encode())
    assert err.code == code, err
    assert says in err.detail
    er = er_text(err, doc)
    assert er.startswith(code.wire)
    assert er.endswith("ORIGINAL MESSAGE\n" + doc[:QUOTE_LEN])
    assert all(" " <= c <= "~" or c == "\n" for c in er)


def test_errors_after_the_header_echo_the_control_field() -> None:
    err = error_of(GOOD.replace("1950-01-01", "1950/01/01").encode())
    assert err.control == "CASE12"


@pytest.mark.parametrize(("name", "doc"), [
    ("a non-ASCII byte", GOOD.replace(">SMITH<", ">SMÏTH<").encode()),
    ("a character reference outside the set", GOOD.replace(">SMITH<", ">SM&#233;TH<").encode()),
    ("a TAB in a value", GOOD.replace(">SMITH<", ">SM&#9;TH<").encode()),
    ("a DEL", GOOD.replace(">SMITH<", ">SM&#127;TH<").encode()),
    ("a NUL byte", GOOD.replace(">SMITH<", ">SM\x00TH<").encode()),
    ("UTF-16", GOOD.encode("utf-16")),
    ("a reference in an attribute", GOOD.replace('n2:version="4.00"',
                                                 'n2:version="4.00&#200;"').encode()),
])
def test_characters_outside_protocols_set_are_a_link_level_n(name: str, doc: bytes) -> None:
    with pytest.raises(InvalidCharacters) as info:
        CODEC.read_input(doc)
    assert info.value.wire == ".02. INVALID CHARACTERS IN MESSAGE"


def test_tabs_and_a_bom_in_the_layout_are_fine() -> None:
    doc = b"\xef\xbb\xbf" + GOOD.replace("  ", "\t").encode()
    got = CODEC.read_input(doc)
    assert got.text == "DQ.AZNLETS20.TX.*CASE12.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400) | st.text(max_size=200).map(str.encode)
       | st.integers(0, len(GOOD)).flatmap(
           lambda n: st.text(max_size=20).map(lambda s: (GOOD[:n] + s + GOOD[n:]).encode())))
def test_any_bytes_give_text_an_er_or_an_n(data: bytes) -> None:
    try:
        got = CODEC.read_input(data)
    except LinkError:
        return
    assert (got.error is None) != (got.text is None)
    if got.error is not None:
        assert all(" " <= c <= "~" for c in got.error.detail)
