"""XML links (XML.md): the translation text <-> XML, the XSD and the field mapping."""

from __future__ import annotations

import re
import string
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.wire import xml_map as xm
from nlets_switch.wire.message import (
    Message,
    OutputMessage,
    format_output,
    parse_message,
    parse_output,
)
from nlets_switch.wire.schema import FieldSpec, KeySchema, load_schemas, parse_fields
from nlets_switch.wire.xml import XmlCodec, canonical, is_xml, pretty
from nlets_switch.wire.xml_xsd import MAIN, XSD_FILES, xsd_documents

SCHEMAS = load_schemas()
CODEC = XmlCodec(SCHEMAS)
SHIPPED = Path(__file__).resolve().parent.parent / "schemas" / "xml"
ALL_SAMPLES = [(k, s) for k in SCHEMAS for s in SCHEMAS[k].samples]
ALL_INVALID = [(k, m, c) for k in SCHEMAS for m, c in SCHEMAS[k].invalid_samples]


def shipped_xsd() -> etree.XMLSchema:
    """The XSD as shipped under schemas/xml/, read from disk like an integrator would."""
    return etree.XMLSchema(etree.parse(str(SHIPPED / MAIN)))


XSD = shipped_xsd()


def header(msg: Message) -> tuple[str, str, tuple[str, ...], str | None]:
    return msg.key, msg.origin, msg.destinations, msg.control


def content(schema: KeySchema, msg: Message) -> object:
    """What a message says: its fields, or its free text."""
    return msg.body if schema.free_text else parse_fields(msg.body)


def roundtrip(text: str) -> tuple[bytes, str]:
    doc = CODEC.input_to_xml(text)
    got = CODEC.read_input(doc)
    assert got.error is None, (text, got.error)
    assert got.text is not None
    return doc, got.text


# --------------------------------------------------------------------------
# The samples of schemas/*.yaml.
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "sample"), ALL_SAMPLES)
def test_every_sample_goes_to_xml_and_back_unchanged(key: str, sample: str) -> None:
    _, back = roundtrip(sample)
    a, b = parse_message(sample), parse_message(back)
    assert header(b) == header(a)
    assert content(SCHEMAS[key], b) == content(SCHEMAS[key], a)
    assert SCHEMAS[key].validate(b.body) == SCHEMAS[key].validate(a.body)
    # Byte for byte, unless the sample separates its fields with line breaks
    # (PROTOCOL part 2 gives them no meaning; XML keeps fields, not layout).
    fields = parse_fields(a.body) if not SCHEMAS[key].free_text else None
    if fields is None or a.body == ".".join(f"{t}/{v}" for t, v in fields):
        if a.text.startswith("\n"):
            assert back == sample


@pytest.mark.parametrize(("key", "sample"), ALL_SAMPLES)
def test_every_sample_validates_against_the_shipped_xsd(key: str, sample: str) -> None:
    doc = CODEC.input_to_xml(sample)
    root = etree.fromstring(doc)
    assert XSD.validate(root), XSD.error_log
    assert root[1].tag == xm.data_element(key, SCHEMAS[key].kind)


def test_most_samples_are_byte_identical_after_the_round_trip() -> None:
    same = sum(roundtrip(s)[1] == s for _, s in ALL_SAMPLES)
    assert same >= len(ALL_SAMPLES) - 3


@pytest.mark.parametrize(("key", "message", "code"), ALL_INVALID)
def test_an_invalid_message_gets_the_same_er_as_xml(key: str, message: str, code: int) -> None:
    try:
        doc = CODEC.input_to_xml(message)
    except MessageError as err:
        # The grammar fault has no XML form (a trailing period): same code.
        assert err.code == code
        return
    got = CODEC.read_input(doc)
    if got.error is not None:
        assert got.error.code == code, got.error
        return
    assert got.text is not None
    with pytest.raises(MessageError) as info:
        SCHEMAS[key].validate(parse_message(got.text).body)
    assert info.value.code == code


def test_the_example_of_xml_md_reads_as_its_legacy_text() -> None:
    doc = b"""<n2:NLETS n2:version="4.00"
    xmlns:n2="http://www.nlets.org/niem/1.0"
    xmlns:nh2="http://www.nlets.org/niem/nlets-hdr/1.0"
    xmlns:nc="http://niem.gov/niem/niem-core/2.0"
    xmlns:j="http://niem.gov/niem/domains/jxdm/4.0">
  <n2:NLETSMessageHeader>
    <nh2:MessageKeyCodeText>DQ</nh2:MessageKeyCodeText>
    <nh2:OriginatingORIID>AZNLETS20</nh2:OriginatingORIID>
    <nh2:DestinationORIID>TX</nh2:DestinationORIID>
    <nh2:DocumentControlFieldText>CASE12</nh2:DocumentControlFieldText>
  </n2:NLETSMessageHeader>
  <n2:NLETSInquiryData>
    <n2:Person>
      <nc:PersonName>
        <nc:PersonGivenName>JOHN</nc:PersonGivenName>
        <nc:PersonSurName>SMITH</nc:PersonSurName>
      </nc:PersonName>
      <nc:PersonBirthDate><nc:Date>1950-01-01</nc:Date></nc:PersonBirthDate>
      <nc:PersonSexCode>M</nc:PersonSexCode>
    </n2:Person>
  </n2:NLETSInquiryData>
</n2:NLETS>"""
    assert CODEC.input_to_text(doc) == (
        "DQ.AZNLETS20.TX.*CASE12.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M")
    assert XSD.validate(etree.fromstring(doc))


def test_any_prefixes_and_a_default_namespace_read_the_same() -> None:
    doc = CODEC.input_to_xml("RQ.AZNLETS20.AZ.TXT\nLIC/123456.LIY/2027.LIT/PC").decode()
    other = (doc.replace("n2:", "a:").replace("xmlns:n2", "xmlns:a")
             .replace("nc:", "b:").replace("xmlns:nc", "xmlns:b"))
    default = doc.replace("n2:", "").replace("xmlns:n2", "xmlns").replace(
        ' version="4.00"', ' xmlns:n2="http://www.nlets.org/niem/1.0" n2:version="4.00"')
    for variant in (other, default):
        assert CODEC.input_to_text(variant.encode()) == (
            "RQ.AZNLETS20.AZ.TXT\nLIC/123456.LIY/2027.LIT/PC")


# --------------------------------------------------------------------------
# The mapping.
# --------------------------------------------------------------------------


def data_of(text: str) -> etree._Element:
    return etree.fromstring(CODEC.input_to_xml(text))[1]


@pytest.mark.parametrize(("tag", "value", "path", "text"), [
    ("RSN", "T", "n2:ReasonCode", "T"),
    ("DOB", "19500101", "n2:Person/nc:PersonBirthDate/nc:Date", "1950-01-01"),
    ("SEX", "M", "n2:Person/nc:PersonSexCode", "M"),
    ("RAC", "W", "n2:Person/nc:PersonRaceCode", "W"),
    ("OLN", "D123", "n2:Person/nc:PersonDriverLicenseIdentification/nc:IdentificationID",
     "D123"),
    ("SOC", "123456789", "n2:Person/nc:PersonSSNIdentification/nc:IdentificationID",
     "123456789"),
    ("FBI", "123AB", "n2:Person/j:PersonFBIIdentification/nc:IdentificationID", "123AB"),
    ("SID", "AZ123", "n2:Person/j:PersonStateFingerprintIdentification/nc:IdentificationID",
     "AZ123"),
    ("LIC", "ABC123", "nc:Vehicle/nc:ConveyanceRegistrationPlateIdentification/"
     "nc:IdentificationID", "ABC123"),
    ("LIT", "PC", "nc:Vehicle/nc:ConveyanceRegistrationPlateIdentification/"
     "nc:IdentificationCategoryText", "PC"),
    ("LIY", "2027", "nc:Vehicle/nc:ConveyanceRegistrationPlateIdentification/"
     "nc:IdentificationExpirationDate/nc:Year", "2027"),
    ("VIN", "1HGCM82633A004352", "nc:Vehicle/nc:VehicleIdentification/nc:IdentificationID",
     "1HGCM82633A004352"),
])
def test_xml_md_table(tag: str, value: str, path: str, text: str) -> None:
    assert xm.FIELD_ELEMENTS[tag].xpath == path
    fe = xm.FIELD_ELEMENTS[tag]
    data = etree.Element(xm.qn("n2:NLETSInquiryData"), nsmap=dict(xm.NSMAP))
    data.append(etree.fromstring(
        f'<x {" ".join(f"xmlns:{p}={u!r}" for p, u in xm.NSMAP.items())}>'
        f"{xm.write_fields([(tag, value)])}</x>")[0])
    leaf = data.find("/".join(fe.path))
    assert leaf is not None and leaf.text == text
    assert xm.xml_to_fields(data) == [(tag, value)]


@pytest.mark.parametrize(("value", "given", "middle", "sur"), [
    ("SMITH,JOHN", "JOHN", None, "SMITH"),
    ("SMITH,JOHN A", "JOHN", "A", "SMITH"),
    ("VAN DYKE,MARY ANN JR", "MARY", "ANN JR", "VAN DYKE"),
])
def test_a_name_splits_into_its_three_elements(value: str, given: str, middle: str | None,
                                               sur: str) -> None:
    data = data_of(f"DNQ.AZNLETS20.TX.TXT\nNAM/{value}")
    name = data.find(f"{xm.qn('n2:Person')}/{xm.qn('nc:PersonName')}")
    assert name is not None
    assert name.findtext(xm.qn("nc:PersonGivenName")) == given
    assert name.findtext(xm.qn("nc:PersonMiddleName")) == middle
    assert name.findtext(xm.qn("nc:PersonSurName")) == sur


@pytest.mark.parametrize(("tag", "value"), [
    ("NAM", "DOE, JANE"),      # the blank after the comma would be lost
    ("NAM", "SMITH,JOHN "),    # so would a trailing blank
    ("DOB", "070485"),         # MMDDYY: the century is not known
    ("LIY", "NX"),             # not a year
    ("LIY", "27"),
])
def test_a_value_without_its_elements_form_travels_as_n2_field(tag: str, value: str) -> None:
    written = xm.write_fields([(tag, value)])
    assert written == f'<n2:Field n2:tag="{tag}">{value}</n2:Field>'


def test_fields_keep_their_order_however_they_interleave() -> None:
    fields = [("LIC", "ABC"), ("RSN", "T"), ("LIT", "PC"), ("VIN", "V1"), ("LIY", "2027"),
              ("SEX", "M"), ("NAM", "SMITH,JOHN"), ("SEX", "F")]
    data = etree.fromstring(
        f'<n2:NLETSInquiryData {" ".join(f"xmlns:{p}={u!r}" for p, u in xm.NSMAP.items())}>'
        f"{xm.write_fields(fields)}</n2:NLETSInquiryData>")
    assert xm.xml_to_fields(data) == fields


def test_one_person_holds_consecutive_person_fields() -> None:
    data = data_of("IAQ.AZNLETS20.AX.TXT\nPUR/C.ATN/DET ROE.PHN/6025550100.NAM/SMITH,JOHN."
                   "DOB/19800101.SEX/M.POB/MM.CUS/Y.OFF/0399")
    assert [xm.prefixed(str(c.tag)) for c in data] == [
        "n2:Field", "n2:Field", "n2:Field", "n2:Person", "n2:Field", "n2:Field", "n2:Field"]
    person = data[3]
    assert [etree.QName(c).localname for c in person] == [
        "PersonName", "PersonBirthDate", "PersonSexCode"]


def test_free_text_keeps_cr_lf_and_markup_characters() -> None:
    text = "AM.AZNLETS20.NY.TXT\nLINE 1 <B> & 'Q' \"R\"\r\nLINE 2\rLINE 3"
    doc, back = roundtrip(text)
    assert back == text
    assert b"&#13;" in doc


@pytest.mark.parametrize(("key", "element"), [
    ("DQ", "n2:NLETSInquiryData"), ("LQ", "n2:NLETSInquiryData"),
    ("DR", "n2:NLETSResponseData"), ("AM", "n2:NLETSMailData"), ("ER", "n2:NLETSMailData"),
    ("SM", "n2:NLETSMailData"),
])
def test_data_elements_by_key(key: str, element: str) -> None:
    ks = SCHEMAS[key]
    assert xm.prefixed(xm.data_element(key, ks.kind)) == element


def test_sm_carries_status_text_and_lq_its_description() -> None:
    sm = data_of("SM.NL0000000.AZNLETS20.TXT\n.02. USER OUT OF SERVICE")
    assert sm[0].tag == xm.qn("n2:StatusMessageText")
    lq = data_of("LQ.AZNLETS20.TX.TXT\nPLS ADVISE")
    assert lq[0].tag == xm.qn("n2:InquiryDescriptionText")
    assert lq[0].text == "PLS ADVISE"


# --------------------------------------------------------------------------
# Deliveries: the output header of PROTOCOL part 3 in the nh2: elements.
# --------------------------------------------------------------------------


def test_a_delivery_carries_the_output_header_and_reads_back() -> None:
    text = format_output("DR", "NYNLETS00", "08:00 01/02/2010", 1239, "08:01 01/02/2010", 17,
                         "AZNLETS20", "CASE12", "NAM/SMITH,JOHN\nNO RECORD")
    out = parse_output(text)
    doc = CODEC.output_to_xml(out)
    root = etree.fromstring(doc)
    assert XSD.validate(root), XSD.error_log
    hdr = {etree.QName(c).localname: c.text for c in root[0]}
    assert hdr == {
        "MessageKeyCodeText": "DR", "OriginatingORIID": "NYNLETS00",
        "DestinationORIID": "AZNLETS20", "DocumentControlFieldText": "CASE12",
        "MessageReceiveDate": "01/02/2010", "MessageReceiveTime": "08:00",
        "ReceiveMessageNumeric": "01239", "MessageSendDate": "01/02/2010",
        "MessageSendTime": "08:01", "SendMessageNumeric": "00017"}
    assert CODEC.read_output(doc) == out
    assert CODEC.to_text(doc) == text


def test_a_delivered_inquiry_has_its_fields_as_elements() -> None:
    out = OutputMessage("DQ", "AZNLETS20", "08:00 01/02/2010", 1, "08:00 01/02/2010", 2,
                        "TXNLETS00", None, "NAM/SMITH,JOHN.DOB/19500101.SEX/M")
    doc = CODEC.output_to_xml(out)
    assert b"<nc:Date>1950-01-01</nc:Date>" in doc
    assert CODEC.read_output(doc) == out


def test_an_input_document_must_not_carry_the_switchs_elements() -> None:
    out = parse_output(format_output("AM", "AZNLETS20", "08:00 01/02/2010", 1,
                                     "08:00 01/02/2010", 2, "NYNLETS00", None, "HI"))
    got = CODEC.read_input(CODEC.output_to_xml(out))
    assert got.error is not None and got.error.code == ErCode.HEADER
    assert "SET BY THE SWITCH" in got.error.detail


# --------------------------------------------------------------------------
# The XSD: generated from schemas/*.yaml, shipped, and the two agree.
# --------------------------------------------------------------------------


def test_the_shipped_xsd_is_the_one_the_schemas_generate() -> None:
    generated = xsd_documents(SCHEMAS)
    assert tuple(generated) == XSD_FILES
    for name, text in generated.items():
        assert (SHIPPED / name).read_text(encoding="utf-8") == text, (
            f"schemas/xml/{name} is stale: run `nlets-switch xml xsd schemas/xml`")


def _enumeration(file: str, type_name: str) -> set[str]:
    root = etree.parse(str(SHIPPED / file)).getroot()
    ns = {"xs": "http://www.w3.org/2001/XMLSchema"}
    return set(root.xpath(f"xs:simpleType[@name='{type_name}']//xs:enumeration/@value",
                          namespaces=ns))


def test_the_xsd_names_every_key_and_every_tag_of_the_yaml() -> None:
    assert _enumeration("nlets-hdr.xsd", "MessageKeyCodeType") == set(SCHEMAS)
    tags = {t for ks in SCHEMAS.values() for t in ks.fields}
    assert _enumeration("nlets.xsd", "FieldTagType") == tags


def test_every_mapped_tag_exists_in_the_yaml_catalogue() -> None:
    tags = {t for ks in SCHEMAS.values() for t in ks.fields}
    assert set(xm.FIELD_ELEMENTS) <= tags


def test_a_document_with_every_mapped_element_validates() -> None:
    fields = [(fe.tag, {"DOB": "19500101", "LIY": "2027", "NAM": "SMITH,JOHN A"}.get(
        fe.tag, "X1")) for fe in xm.FIELD_ELEMENTS.values()]
    doc = (b'<n2:NLETS ' + " ".join(f'xmlns:{p}="{u}"' for p, u in xm.NSMAP.items()).encode()
           + b' n2:version="4.00"><n2:NLETSMessageHeader>'
           b"<nh2:MessageKeyCodeText>DQ</nh2:MessageKeyCodeText>"
           b"<nh2:OriginatingORIID>AZNLETS20</nh2:OriginatingORIID>"
           b"<nh2:DestinationORIID>TX</nh2:DestinationORIID></n2:NLETSMessageHeader>"
           b"<n2:NLETSInquiryData>" + xm.write_fields(fields).encode()
           + b"</n2:NLETSInquiryData></n2:NLETS>")
    assert XSD.validate(etree.fromstring(doc)), XSD.error_log


def test_an_extra_schema_directory_extends_the_codecs_xsd(tmp_path: Path) -> None:
    (tmp_path / "ZQ.yaml").write_text(
        "key: ZQ\nkind: inquiry\ndescription: test key\n"
        "fields: {ZZZ: {description: a new tag, format: alnum}}\n"
        "destinations: {min: 1, max: 1, kinds: [state]}\n")
    codec = XmlCodec(load_schemas([tmp_path]))
    doc = codec.input_to_xml("ZQ.AZNLETS20.TX.TXT\nZZZ/ABC")
    assert codec.input_to_text(doc) == "ZQ.AZNLETS20.TX.TXT\nZZZ/ABC"
    got = CODEC.read_input(doc)  # the bundled codec does not know ZQ
    assert got.error is not None and got.error.code == ErCode.HEADER


# --------------------------------------------------------------------------
# Presentation helpers.
# --------------------------------------------------------------------------


def test_canonical_ignores_prefixes_attribute_order_and_indentation() -> None:
    doc = CODEC.input_to_xml("DQ.AZNLETS20.TX.TXT\nOLN/D1.IMQ/N")
    alike = pretty(doc).replace("n2:", "p:").replace("xmlns:n2=", "xmlns:p=").encode()
    assert alike != doc
    assert canonical(alike) == canonical(doc)
    different = doc.replace(b">D1<", b">D2<")
    assert canonical(different) != canonical(doc)


# --------------------------------------------------------------------------
# Property: generated valid messages go to XML and back unchanged.
# --------------------------------------------------------------------------

_PRINTABLE_NO_PERIOD = "".join(c for c in string.printable[:95] if c != ".")


def _value(spec: FieldSpec) -> st.SearchStrategy[str]:
    if spec.enum is not None:
        return st.sampled_from(sorted(spec.enum))
    if spec.pattern is not None:
        return st.from_regex(spec.pattern, fullmatch=True)
    hi = spec.max_len or 20
    if spec.format == "date":
        return st.dates().map(lambda d: d.strftime("%Y%m%d"))
    if spec.format == "datetime":
        return st.datetimes().map(lambda d: d.strftime("%Y%m%d%H%M"))
    if spec.format == "name":
        part = st.from_regex(r"[A-Z][A-Z' -]{0,8}[A-Z]|[A-Z]", fullmatch=True)
        return st.tuples(part, st.sampled_from([",", ", "]), part).map("".join)
    alphabet = {"digits": string.digits, "alnum": string.ascii_uppercase + string.digits,
                "letters": string.ascii_uppercase}.get(spec.format or "", _PRINTABLE_NO_PERIOD)
    return st.text(alphabet, min_size=spec.min_len, max_size=hi)


@st.composite
def messages(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(sorted(SCHEMAS)))
    ks = SCHEMAS[key]
    origin = draw(st.from_regex(r"[A-Z]{2}[A-Z0-9]{7}", fullmatch=True))
    addresses = {"state": st.sampled_from(["AZ", "NY", "TX"]), "nl": st.just("NL"),
                 "ax": st.just("AX"), "help": st.just("NLNLEHELP"),
                 "region": st.sampled_from(["RA", "RG"]), "orion": st.just("OD"),
                 "ori": st.from_regex(r"[A-Z]{2}[A-Z0-9]{7}", fullmatch=True)}
    kind = st.sampled_from(sorted(ks.destinations.kinds)).flatmap(lambda k: addresses[k])
    dests = draw(st.lists(kind, min_size=ks.destinations.min, max_size=ks.destinations.max))
    control = draw(st.none() | st.from_regex(r"[\x21-\x2d\x2f-\x7e]{1,10}", fullmatch=True))
    if ks.free_text:
        body = draw(st.text(string.printable[:95] + "\r\n", max_size=200))
    else:
        chosen = set(ks.required)
        if ks.options:
            chosen |= set(draw(st.sampled_from(ks.options)))
        if ks.data_sets is not None:
            s = draw(st.sampled_from(ks.data_sets.sets))
            chosen |= {ks.data_sets.selector, *s.required}
        free = [t for t in ks.fields if t not in chosen
                and not any(t in o for o in ks.options)
                and (ks.data_sets is None or t not in ks.data_sets.tags)]
        chosen |= set(draw(st.lists(st.sampled_from(free), unique=True)) if free else [])
        order = draw(st.permutations(sorted(chosen)))
        fields = [(t, draw(_value(ks.fields[t]))) for t in order]
        if ks.data_sets is not None:
            fields = [(t, draw(st.sampled_from(sorted(s.when)))) if t == ks.data_sets.selector
                      else (t, v) for t, v in fields]
        body = ".".join(f"{t}/{v}" for t, v in fields)
    ctl = f".*{control}" if control else ""
    text = f"{key}.{origin}.{','.join(dests)}{ctl}.TXT\n{body}"
    msg = parse_message(text)
    try:
        ks.validate(msg.body)
    except MessageError:
        assume(False)
    return text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow,
                                                    HealthCheck.filter_too_much])
@given(messages())
def test_generated_valid_messages_go_to_xml_and_back(text: str) -> None:
    doc, back = roundtrip(text)
    assert XSD.validate(etree.fromstring(doc)), XSD.error_log
    a, b = parse_message(text), parse_message(back)
    ks = SCHEMAS[a.key]
    assert header(b) == header(a)
    assert content(ks, b) == content(ks, a)
    assert ks.validate(b.body) == ks.validate(a.body)
    assert re.fullmatch(rb"[\x20-\x7e\r\n\t]*", doc)


def test_the_xml_codec_imports_no_io_layer() -> None:
    code = ("import sys, nlets_switch.wire.xml; "
            "print(' '.join(m for m in ('asyncio', 'socket', 'ssl', 'sqlite3', 'logging', "
            "'structlog') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == ""


def test_a_refused_document_still_tells_its_header_when_it_was_read() -> None:
    doc = CODEC.input_to_xml("DQ.AZNLETS20.TX.*C1.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M")
    got = CODEC.read_input(doc.replace(b"1950-01-01", b"1950/01/01"))
    assert got.error is not None and got.header is not None
    assert (got.header.key, got.header.origin, got.header.control) == ("DQ", "AZNLETS20", "C1")
    broken = CODEC.read_input(doc.replace(b"</nh2:OriginatingORIID>", b""))
    assert broken.error is not None and broken.header is None
    fine = CODEC.read_input(doc)
    assert fine.header is not None and fine.header.destinations == ("TX",)


@pytest.mark.parametrize(("body", "xml"), [
    (b"<n2:NLETS/>", True), (b"\xef\xbb\xbf\n  <?xml version='1.0'?><a/>", True),
    (b"DQ.AZNLETS20.TX.TXT\nOLN/D1", False), (b"", False), (b" AM.X", False),
])
def test_is_xml_tells_a_document_from_legacy_text(body: bytes, xml: bool) -> None:
    assert is_xml(body) is xml
