"""Message schemas (schemas/*.yaml) and the field validator (nlets_switch/wire/schema.py)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlets_switch.errors import ConfigError, ErCode, MessageError
from nlets_switch.wire.schema import KeySchema, SchemaSet, is_no_record, load_schemas, parse_fields

SCHEMAS = load_schemas()

# The input header of PROTOCOL part 2, just enough to split samples here (the
# codec owns the real parser and its byte-for-byte round trips).
_HEADER = re.compile(
    r"(?P<key>[A-Z]{2,3})\.(?P<origin>[A-Z0-9]{9})\.(?P<dests>[A-Z0-9,]+)"
    r"(?:\.\*(?P<ctl>[^.\r\n]{1,10}))?\.TXT"
)


def split(message: str) -> tuple[str, list[str], str]:
    """(key, destinations, text after TXT without leading blanks/line breaks)."""
    m = _HEADER.match(message)
    assert m, message
    return m["key"], m["dests"].split(","), message[m.end():].lstrip(" \r\n")


def kind_of(address: str) -> str:
    if address in ("NL", "AX"):
        return address.lower()
    if address == "OD":
        return "orion"
    if re.fullmatch(r"R[A-HJK]", address):
        return "region"
    if re.fullmatch(r"[A-Z]{2}", address):
        return "state"
    if re.fullmatch(r"[A-Z]{5}(?:HELP|UPDT|APND|CNCL)", address):
        return "help"
    assert re.fullmatch(r"[A-Z]{2}[A-Z0-9]{7}", address), address
    return "ori"


def error_of(key: str, text: str) -> MessageError:
    with pytest.raises(MessageError) as info:
        SCHEMAS[key].validate(text)
    return info.value


ALL_SAMPLES = [(k, s) for k in SCHEMAS for s in SCHEMAS[k].samples]
ALL_INVALID = [(k, m, c) for k in SCHEMAS for m, c in SCHEMAS[k].invalid_samples]


# --------------------------------------------------------------------------
# The bundled data.
# --------------------------------------------------------------------------


def test_every_key_of_the_brief_is_bundled() -> None:
    wanted = ("DQ DR RQ RR KQ KR AM SM ER YQ YR LQ LR IQ IR FQ FR AQ AR IAQ IAR GPQ GPR "
              "NLQ NFQ NLR NFR SOQ SOR DNQ DNR DQG RQG AML").split()
    assert isinstance(SCHEMAS, SchemaSet)
    for key in wanted:
        assert key in SCHEMAS
        schema = SCHEMAS.get(key)
        assert isinstance(schema, KeySchema) and schema.key == key
    assert SCHEMAS.get("ZZ") is None and "ZZ" not in SCHEMAS
    assert list(SCHEMAS) == sorted(SCHEMAS.keys())


@pytest.mark.parametrize(("inquiry", "response"), [
    ("DQ", "DR"), ("RQ", "RR"), ("KQ", "KR"), ("IQ", "IR"), ("FQ", "FR"), ("AQ", "AR"),
    ("YQ", "YR"), ("LQ", "LR"), ("IAQ", "IAR"), ("GPQ", "GPR"), ("NLQ", "NLR"),
    ("NFQ", "NFR"), ("SOQ", "SOR"), ("DNQ", "DNR"), ("DQG", "DR"), ("RQG", "RR"),
])
def test_inquiries_name_their_response(inquiry: str, response: str) -> None:
    assert SCHEMAS[inquiry].kind == "inquiry"
    assert SCHEMAS[inquiry].response == response
    assert SCHEMAS[response].kind == "response"
    assert SCHEMAS[response].free_text


def test_kinds_free_text_and_hold_defaults() -> None:
    for key in SCHEMAS:
        s = SCHEMAS[key]
        if s.kind == "response":
            # PROTOCOL part 2: exactly one 9-character ORI; part 8: held.
            assert (s.destinations.min, s.destinations.max) == (1, 1)
            assert s.destinations.kinds == {"ori"}
            assert s.hold.held and s.hold.expire_s > 0
            assert s.response is None
        elif s.kind == "inquiry" and key != "YQ":
            assert not s.hold.held
    for key in ("AM", "SM", "ER", "LQ"):
        assert SCHEMAS[key].free_text and SCHEMAS[key].validate("ANY TEXT. AT ALL.") == ()
    assert SCHEMAS["AM"].hold.held and SCHEMAS["YQ"].hold.held


@pytest.mark.parametrize(("key", "lo", "hi", "kinds"), [
    ("DQ", 1, 5, {"state", "ori", "nl"}),
    ("RQ", 1, 5, {"state", "ori", "nl"}),
    ("AM", 1, 5, {"state", "ori", "help"}),
    # Nlets sends IQ to every state through NL; never to a 9-character ORI.
    ("IQ", 1, 5, {"state", "nl"}),
    ("SOQ", 1, 5, {"state", "ori", "nl"}),
    ("DNQ", 1, 5, {"state", "ori"}),
    ("DQG", 1, 5, {"region"}),
    ("RQG", 1, 5, {"region"}),
    ("AML", 1, 5, {"state", "ori"}),
    ("YQ", 1, 3, {"ori"}),
    ("KQ", 1, 1, {"state"}),
    ("FQ", 1, 1, {"state"}),
    ("AQ", 1, 1, {"state"}),
    ("LQ", 1, 1, {"state", "ori"}),
    ("IAQ", 1, 1, {"ax"}),
    ("GPQ", 1, 1, {"ax"}),
    ("NLQ", 1, 1, {"nl"}),
    ("NFQ", 1, 1, {"nl"}),
])
def test_destination_rules_follow_protocol_part_2(key: str, lo: int, hi: int,
                                                  kinds: set[str]) -> None:
    rule = SCHEMAS[key].destinations
    assert (rule.min, rule.max, set(rule.kinds)) == (lo, hi, kinds)
    assert rule.allows(["ori"] * lo) == ("ori" in kinds)
    assert not rule.allows([next(iter(kinds))] * (hi + 1))


@pytest.mark.parametrize(("key", "sample"), ALL_SAMPLES)
def test_every_sample_is_valid(key: str, sample: str) -> None:
    mke, dests, text = split(sample)
    schema = SCHEMAS[key]
    assert mke == key
    assert schema.destinations.allows([kind_of(d) for d in dests]), sample
    fields = schema.validate(text)
    if not schema.free_text:
        assert fields and all(tag in schema.fields for tag, _ in fields)


@pytest.mark.parametrize(("key", "message", "code"), ALL_INVALID)
def test_every_invalid_sample_gives_its_code(key: str, message: str, code: int) -> None:
    mke, dests, text = split(message)
    assert mke == key
    # The header is valid: the error must come from the text.
    assert SCHEMAS[key].destinations.allows([kind_of(d) for d in dests])
    assert error_of(key, text).code == code


def test_every_keyed_inquiry_has_invalid_samples() -> None:
    for key in SCHEMAS:
        s = SCHEMAS[key]
        if s.kind == "inquiry" and not s.free_text:
            assert s.invalid_samples, key


# --------------------------------------------------------------------------
# The field grammar (PROTOCOL part 2).
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "fields"), [
    ("NAM/SMITH,JOHN.DOB/19500101.SEX/M",
     (("NAM", "SMITH,JOHN"), ("DOB", "19500101"), ("SEX", "M"))),
    ("NAM/SMITH, JOHN.\r\nDOB/19500101.\nSEX/M\r\n",
     (("NAM", "SMITH, JOHN"), ("DOB", "19500101"), ("SEX", "M"))),
    ("NAM/SMITH,JOHN\nDOB/19500101\r\nSEX/M\r",
     (("NAM", "SMITH,JOHN"), ("DOB", "19500101"), ("SEX", "M"))),
    ("REM/PLS CONFIRM STILL STOLEN", (("REM", "PLS CONFIRM STILL STOLEN"),)),
    ("REM/A/B", (("REM", "A/B"),)),
    ("", ()),
    ("\r\n", ()),
])
def test_parse_fields(text: str, fields: tuple[tuple[str, str], ...]) -> None:
    assert parse_fields(text) == fields


@pytest.mark.parametrize(("text", "detail"), [
    ("NAM/SMITH,JOHN.", "TEXT ENDS WITH A PERIOD"),
    ("NAM/SMITH,JOHN.\n", "TEXT ENDS WITH A PERIOD"),
    ("NAM/SMITH,JOHN..SEX/M", "EMPTY FIELD 2"),
    ("NAM/SMITH,JOHN.SMITH", "NO TAG/ IN FIELD 2"),
    ("nam/SMITH,JOHN", "NO TAG/ IN FIELD 1"),
    ("NAME/SMITH", "NO TAG/ IN FIELD 1"),
    ("NAM/.SEX/M", "EMPTY FIELD: NAM"),
    ("SEX/M.SEX/F", "DUPLICATE FIELD: SEX"),
])
def test_parse_fields_rejects_bad_grammar(text: str, detail: str) -> None:
    with pytest.raises(MessageError) as info:
        parse_fields(text)
    assert info.value.code is ErCode.FORMAT
    assert info.value.detail == detail


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200) | st.text(max_size=50))
def test_parse_fields_only_returns_or_raises_message_error(text: str) -> None:
    try:
        fields = parse_fields(text)
    except MessageError as exc:
        assert exc.code is ErCode.FORMAT
    else:
        for tag, value in fields:
            assert re.fullmatch(r"[A-Z]{3}", tag) and value and "." not in value


# --------------------------------------------------------------------------
# ER rules (PROTOCOL part 4 and docs/schemas.md).
# --------------------------------------------------------------------------

IAQ_OK = ("PUR/C.ATN/DET J ROE.PHN/6025550100.NAM/SMITH,JOHN.DOB/19500101.SEX/M."
          "POB/MM.CUS/Y.OFF/0399")


def iaq(**change: str | None) -> str:
    """The valid IAQ text with fields replaced (value) or removed (None)."""
    fields = dict(f.split("/", 1) for f in IAQ_OK.split("."))
    for tag, value in change.items():
        if value is None:
            del fields[tag]
        else:
            fields[tag] = value
    return ".".join(f"{t}/{v}" for t, v in fields.items())


@pytest.mark.parametrize(("key", "text", "code", "detail"), [
    # .05: a bad DOB, and a missing one among IAQ's fixed fields.
    ("DQ", "NAM/SMITH,JOHN.DOB/19500230.SEX/M", ErCode.DOB, "INVALID FIELD: DOB"),
    ("DQ", "NAM/SMITH,JOHN.DOB/1950011.SEX/M", ErCode.DOB, "INVALID FIELD: DOB"),
    ("DQ", "NAM/SMITH,JOHN.DOB/023100.SEX/M", ErCode.DOB, "INVALID FIELD: DOB"),
    ("IAQ", iaq(DOB="13011950"), ErCode.DOB, "INVALID FIELD: DOB"),
    ("IAQ", iaq(DOB=None), ErCode.DOB, "MISSING: DOB"),
    ("IAQ", iaq(DOB=None, PHN=None), ErCode.DOB, "MISSING: PHN, DOB"),
    # .10: a bad year field.
    ("RQ", "LIC/123456.LIY/20X7.LIT/PC", ErCode.YEAR, "INVALID FIELD: LIY"),
    ("RQ", "LIC/123456.LIY/202.LIT/PC", ErCode.YEAR, "INVALID FIELD: LIY"),
    ("RQ", "VIN/1HGCM82633A004352.VYR/19", ErCode.YEAR, "INVALID FIELD: VYR"),
    # .14: missing fixed fields, all named.
    ("IAQ", iaq(PHN=None, POB=None), ErCode.FIELDS_MISSING, "MISSING: PHN, POB"),
    ("NFQ", "", ErCode.FIELDS_MISSING, "MISSING: MID"),
    # .16: ATN too long.
    ("IAQ", iaq(ATN="A" * 31), ErCode.ATN, "INVALID FIELD: ATN"),
    ("KQ", "OLN/1.ATN/" + "B" * 31, ErCode.ATN, "INVALID FIELD: ATN"),
    # .22: bad values, unknown tags, options.
    ("IAQ", iaq(PUR="E"), ErCode.FORMAT, "INVALID FIELD: PUR"),
    ("KQ", "OLN/1.PUR/E", None, None),
    ("RQ", "LIC/123456.LIT/PC", ErCode.FORMAT, "FIELD OPTIONS: LIC, LIY, LIT OR VIN"),
    ("RQ", "LIC/12-456.LIY/2027.LIT/PC", ErCode.FORMAT, "INVALID FIELD: LIC"),
    ("DQ", "NAM/SMITH,JOHN.DOB/19500101", ErCode.FORMAT, "FIELD OPTIONS: OLN OR NAM, DOB, SEX"),
    ("DQ", "NAM/SMITH.DOB/19500101.SEX/M", ErCode.FORMAT, "INVALID FIELD: NAM"),
    ("DQ", "NAM/" + "A" * 20 + "," + "B" * 10 + ".DOB/19500101.SEX/M", ErCode.FORMAT,
     "INVALID FIELD: NAM"),
    ("DQ", "OLN/1.XYZ/1.LIC/2", ErCode.FORMAT, "UNKNOWN FIELD: XYZ, LIC"),
    ("GPQ", "NAM/SMITH,JOHN.SOC/123456789", ErCode.FORMAT,
     "FIELD OPTIONS: NAM [DOB] OR SOC OR PPN OR ARN OR ADR OR DIN"),
    ("GPQ", "SOC/123456789.DOB/19500101", ErCode.FORMAT,
     "FIELD OPTIONS: NAM [DOB] OR SOC OR PPN OR ARN OR ADR OR DIN"),
    # RAND as Nlets has it (issue 13): TYP, BEG, END, then exactly one of FND or NAM.
    ("NLQ", "TYP/DQ.BEG/202402301200.END/202403010000.FND/X", ErCode.FORMAT,
     "INVALID FIELD: BEG"),
    ("NLQ", "TYP/DQ.BEG/202402010000.END/202403010000", ErCode.FORMAT,
     "FIELD OPTIONS: FND OR NAM"),
    ("NLQ", "LIM/5", ErCode.FIELDS_MISSING, "MISSING: TYP, BEG, END"),
])
def test_er_rules(key: str, text: str, code: ErCode | None, detail: str | None) -> None:
    if code is None:
        SCHEMAS[key].validate(text)  # KQ's PUR takes E (FIELDS.md)
        return
    err = error_of(key, text)
    assert (err.code, err.detail) == (code, detail)


def test_check_order_values_before_required_before_options() -> None:
    # A bad DOB outranks the missing fields; an unknown tag outranks a bad value.
    assert error_of("IAQ", iaq(DOB="0", PHN=None)).code is ErCode.DOB
    assert error_of("IAQ", iaq(PHN=None, ATN="A" * 31)).code is ErCode.ATN
    assert error_of("RQ", "LIY/X.ZZZ/1").detail == "UNKNOWN FIELD: ZZZ"
    # Values are checked in field order: the first bad one answers.
    assert error_of("RQ", "LIY/X.LIC/1-2.LIT/PC").code is ErCode.YEAR
    assert error_of("RQ", "LIC/1-2.LIY/X.LIT/PC").code is ErCode.FORMAT


PROTOCOL_YQ = (
    "RTY/SS.PRI/R.OCA/10000000000.NIC/A111110000.\n"
    "SER/110011001100.DEN/123456789.\n"
    "RNA/NLETS_ANALYST.RAG/NLETS.PHO/8005284020.\n"
    "REM/PLS CONFIRM STILL STOLEN"
)


def test_protocol_yq_example_validates() -> None:
    fields = dict(SCHEMAS["YQ"].validate(PROTOCOL_YQ))
    assert fields["RTY"] == "SS" and fields["REM"] == "PLS CONFIRM STILL STOLEN"
    assert "YQ.AZNLETS20.AZ0000000.TXT\n" + PROTOCOL_YQ in SCHEMAS["YQ"].samples


@pytest.mark.parametrize(("text", "code", "detail"), [
    ("RTY/SL.RNO/1.PRI/U.OCA/1.NIC/NONE.LIC/ABC123.LIS/AZ", None, None),
    ("RTY/SV.RNO/1.PRI/U.OCA/1.NIC/NONE.LIC/ABC123.LIS/AZ.LIY/27.LIT/PC", None, None),
    ("RTY/PO.RNO/3.PRI/R.OCA/1.NIC/NONE.NAM/SMITH,JOHN.DOB/010150.SEX/M", None, None),
    ("RTY/SL.RNO/1.PRI/U.OCA/1.NIC/NONE.NAM/SMITH,JOHN.DOB/010150", ErCode.FORMAT,
     "NOT FOR RTY/SL: NAM, DOB"),
    ("RTY/WP.RNO/1.PRI/U.OCA/1.NIC/NONE.NAM/SMITH,JOHN.DOB/010150.LIT/PC", ErCode.FORMAT,
     "NOT FOR RTY/WP: LIT"),
    ("RTY/SG.RNO/1.PRI/U.OCA/1.NIC/NONE.SEX/M", ErCode.FORMAT, "NOT FOR RTY/SG: SEX"),
    ("RTY/MP.RNO/1.PRI/U.OCA/1.NIC/NONE.NAM/SMITH,JOHN", ErCode.DOB, "MISSING: DOB"),
    ("RTY/SL.RNO/1.PRI/U.OCA/1.NIC/NONE.LIS/AZ", ErCode.FIELDS_MISSING, "MISSING: LIC"),
    ("RTY/SL.RNO/1.OCA/1.LIC/ABC123.LIS/AZ", ErCode.FIELDS_MISSING, "MISSING: PRI, NIC"),
    ("RTY/XX.PRI/U.OCA/1.NIC/NONE", ErCode.FORMAT, "INVALID FIELD: RTY"),
    ("RTY/SS.PRI/U.OCA/1.NIC/A11111000", ErCode.FORMAT, "INVALID FIELD: NIC"),
])
def test_yq_data_sets(text: str, code: ErCode | None, detail: str | None) -> None:
    if code is None:
        SCHEMAS["YQ"].validate(text)
        return
    err = error_of("YQ", text)
    assert (err.code, err.detail) == (code, detail)


@pytest.mark.parametrize(("dob", "ok"), [
    ("19500101", True), ("010150", True), ("02292000", False), ("20000229", True),
    ("19000229", False), ("022900", True), ("022901", False), ("123199", True),
    ("00000000", False), ("1950-01-01", False), ("１９５００１０１", False),
])
def test_dob_is_a_real_date(dob: str, ok: bool) -> None:
    text = f"NAM/SMITH,JOHN.DOB/{dob}.SEX/M"
    if ok:
        SCHEMAS["DQ"].validate(text)
    else:
        assert error_of("DQ", text).code is ErCode.DOB


# --------------------------------------------------------------------------
# No-record answers (PROTOCOL part 6).
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "no_record"), [
    ("NO RECORD", True),
    ("NOT ON FILE", True),
    ("NAM/SMITH,JOHN\r\nNO RECORD\r\n", True),
    ("HEADER\rNOT ON FILE.\r", True),
    ("  NO RECORD  ", True),
    ("NO RECORD FOUND FOR SMITH,JOHN", False),
    ("REMARKS: NOT ON FILE IN 2019", False),
    ("NAM/SMITH,JOHN.DOB/19500101", False),
    ("", False),
])
def test_is_no_record(text: str, no_record: bool) -> None:
    assert is_no_record(text) is no_record


# --------------------------------------------------------------------------
# Loading errors and extra directories.
# --------------------------------------------------------------------------

DQ_YAML = """\
key: DQ
kind: inquiry
response: DR
fields:
  NAM: ~
  DOB: {format: dat}
"""


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text))
    return path


def test_malformed_schema_names_file_and_key_path(tmp_path: Path) -> None:
    write(tmp_path, "DQ.yaml", DQ_YAML)
    with pytest.raises(ConfigError) as info:
        load_schemas([tmp_path])
    assert str(info.value).startswith("DQ.yaml: fields.DOB.format: unknown format 'dat'")
    assert info.value.source == "DQ.yaml"


@pytest.mark.parametrize(("text", "problem"), [
    ("key: [unclosed\n", "invalid YAML"),
    ("- a list\n", "the file must hold a mapping"),
    ("kind: inquiry\nfields: {OFF: ~}\n", "fields: key False is not a string (quote it)"),
    ("kind: inquiry\nrequired: [NAM]\n", "required[0]: tag 'NAM' is not among the key's fields"),
    ("kind: inquiry\nfields: {NAM: ~}\noptions: [[SOC]]\n",
     "options[0][0]: tag 'SOC' is not among the key's fields"),
    ("kind: query\n", "kind: must be one of admin, inquiry, response"),
    ("kind: inquiry\nresponse: QQ\n", "response: 'QQ' is not a response key with a schema"),
    ("kind: inquiry\ndestinations: {max: 3, kinds: [planet]}\n",
     "destinations.kinds[0]: unknown address kind 'planet'"),
    ("kind: inquiry\nfields: {QQQ: ~}\n", "fields.QQQ: tag QQQ is not in _tags.yaml"),
    ("kind: inquiry\nfields: {QQQ: {regex: '[A-'}}\n", "fields.QQQ.regex: bad regular expression"),
    ("kind: inquiry\nfields: {NAM: {max: 0}}\n", "fields.NAM.max: must be an integer >= 1"),
    ("kind: inquiry\nhold: {held: maybe}\n", "hold.held: must be true or false"),
    ("kind: inquiry\nsampels: []\n", "sampels: unknown setting"),
    ("key: ZZ\nkind: inquiry\n", "key: 'ZZ' does not match the file name"),
    ("kind: inquiry\ninvalid: [{message: x, er: 99}]\n", "invalid[0].er: not an ER code"),
])
def test_malformed_schemas(tmp_path: Path, text: str, problem: str) -> None:
    write(tmp_path, "QQ.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_schemas([tmp_path])
    assert info.value.source == "QQ.yaml"
    assert any(p.startswith(problem) for p in info.value.problems), info.value.problems


def test_extra_directories_add_and_override(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    write(first, "ZQ.yaml", """\
        kind: inquiry
        description: a third-party key
        fields: {PLN: {description: planet, enum: [EARTH, MARS]}, NAM: ~}
        required: [PLN]
        destinations: {max: 2, kinds: [state]}
        """)
    write(second, "DQ.yaml", """\
        kind: inquiry
        response: DR
        fields: {OLN: {max: 8}}
        required: [OLN]
        """)
    schemas = load_schemas([first, second])
    assert "ZQ" in schemas and "RQ" in schemas
    zq = schemas["ZQ"]
    assert zq.validate("PLN/MARS.NAM/DOE,JANE") == (("PLN", "MARS"), ("NAM", "DOE,JANE"))
    assert not zq.hold.held and zq.destinations.max == 2
    with pytest.raises(MessageError):
        zq.validate("PLN/VENUS")
    # The later DQ replaced the bundled one, and inherits OLN's catalogue format.
    assert schemas["DQ"].required == ("OLN",)
    assert schemas["DQ"].validate("OLN/D1234567") == (("OLN", "D1234567"),)
    assert error_of_in(schemas, "DQ", "OLN/D12345678").detail == "INVALID FIELD: OLN"
    assert error_of_in(schemas, "DQ", "OLN/D-1").detail == "INVALID FIELD: OLN"


def test_missing_extra_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_schemas([tmp_path / "nowhere"])


def error_of_in(schemas: SchemaSet, key: str, text: str) -> MessageError:
    with pytest.raises(MessageError) as info:
        schemas[key].validate(text)
    return info.value
