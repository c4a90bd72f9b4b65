"""``nlets-switch xml``: to-text, to-xml, validate and xsd, as a user runs them."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from nlets_switch.cli import main

DQ = "DQ.AZNLETS20.TX.*CASE12.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["xml", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def dq_xml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    src = tmp_path / "dq.txt"
    src.write_text(DQ + "\n")
    code, out, _ = run(capsys, "to-xml", str(src))
    assert code == 0
    path = tmp_path / "dq.xml"
    path.write_text(out)
    return path


def test_to_xml_prints_an_indented_document(dq_xml: Path) -> None:
    text = dq_xml.read_text()
    assert "    <nh2:MessageKeyCodeText>DQ</nh2:MessageKeyCodeText>\n" in text
    assert "<nc:Date>1950-01-01</nc:Date>" in text


def test_to_xml_compact_is_one_document_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "am.txt"
    src.write_text("AM.AZNLETS20.NY.TXT\nHELLO")
    code, out, _ = run(capsys, "to-xml", "--compact", str(src))
    assert code == 0
    assert out.count("\n") == 2  # the XML declaration's line, the document's line
    assert "<n2:MailMessageText>HELLO</n2:MailMessageText>" in out


def test_to_text_gives_back_the_message(dq_xml: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "to-text", str(dq_xml)) == (0, DQ + "\n", "")


def test_validate_says_what_it_found(dq_xml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", str(dq_xml))
    assert code == 0
    assert out == f"{dq_xml}: valid DQ from AZNLETS20 to TX (3 field(s): NAM, DOB, SEX)\n"


def test_validate_runs_the_keys_rules_and_prints_the_er(
        dq_xml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dq_xml.write_text(dq_xml.read_text().replace("1950-01-01", "1950-02-30"))
    code, out, err = run(capsys, "validate", str(dq_xml))
    assert code == 1 and out == ""
    assert err == f"{dq_xml}: refused: ER .05. DOB INVALID OR MISSING\n  INVALID FIELD: DOB\n"


def test_validate_checks_destination_limits(dq_xml: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    extra = "".join(f"<nh2:DestinationORIID>{s}</nh2:DestinationORIID>"
                    for s in ("AZ", "NY", "CA", "NV", "UT"))
    dq_xml.write_text(dq_xml.read_text().replace(
        "<nh2:DestinationORIID>TX</nh2:DestinationORIID>",
        "<nh2:DestinationORIID>TX</nh2:DestinationORIID>" + extra))
    code, _, err = run(capsys, "validate", str(dq_xml))
    assert code == 1
    assert "ER .01. INVALID HEADER INFORMATION\n  DQ TAKES 1 TO 5 DESTINATION(S)" in err


def test_validate_reads_standard_input(dq_xml: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    raw = dq_xml.read_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    code, out, _ = run(capsys, "validate", "-")
    assert code == 0 and out.startswith("standard input: valid DQ")


def test_a_doctype_is_refused_with_its_er(dq_xml: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    text = dq_xml.read_text()
    i = text.index("<n2:NLETS")
    dq_xml.write_text(text[:i] + '<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
                      + text[i:])
    for sub in ("validate", "to-text"):
        code, out, err = run(capsys, sub, str(dq_xml))
        assert (code, out) == (1, "")
        assert "ER .01. INVALID HEADER INFORMATION" in err
        assert "DECLARATIONS ARE NOT ALLOWED" in err


def test_bad_characters_are_reported_as_the_link_level_n(
        dq_xml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dq_xml.write_text(dq_xml.read_text().replace("SMITH", "SMÏTH"), encoding="utf-8")
    code, _, err = run(capsys, "to-text", str(dq_xml))
    assert code == 1
    assert err == f"{dq_xml}: refused at link level: N .02. INVALID CHARACTERS IN MESSAGE\n"


def test_a_delivery_translates_in_the_output_layout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = ("DR.NYNLETS00\n08:00 01/01/2010 01239\n08:00 01/01/2010 01233 AZNLETS20\n"
            "*CASE12\nTXT\nNO RECORD")
    (tmp_path / "dr.txt").write_text(text)
    code, out, _ = run(capsys, "to-xml", str(tmp_path / "dr.txt"))
    assert code == 0 and "<nh2:ReceiveMessageNumeric>01239</nh2:ReceiveMessageNumeric>" in out
    (tmp_path / "dr.xml").write_text(out)
    assert run(capsys, "to-text", str(tmp_path / "dr.xml")) == (0, text + "\n", "")
    code, out, _ = run(capsys, "validate", str(tmp_path / "dr.xml"))
    assert code == 0 and "valid delivery of DR from NYNLETS00 to AZNLETS20" in out


def test_an_invalid_text_message_is_refused_by_to_xml(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "bad.txt").write_text("DQ.AZNLETS20.TX.TXT\nOLN/D1.")
    code, out, err = run(capsys, "to-xml", str(tmp_path / "bad.txt"))
    assert (code, out) == (1, "")
    assert "ER .22. INVALID MESSAGE FORMAT\n  TEXT ENDS WITH A PERIOD" in err


def test_a_missing_file_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "to-text", "/nonexistent/dq.xml")
    assert code == 2
    assert "cannot read /nonexistent/dq.xml: No such file or directory" in err


def test_xsd_writes_the_shipped_files(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "xsd", str(tmp_path / "xsd"))
    assert code == 0
    shipped = Path(__file__).resolve().parent.parent / "schemas" / "xml"
    written = sorted(p.name for p in (tmp_path / "xsd").iterdir())
    assert written == sorted(p.name for p in shipped.glob("*.xsd"))
    for name in written:
        assert (tmp_path / "xsd" / name).read_text() == (shipped / name).read_text()
    assert out.splitlines()[0].endswith("nlets.xsd")


def test_extra_schema_directories_are_taken(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "ZQ.yaml").write_text(
        "key: ZQ\nkind: inquiry\ndescription: test key\n"
        "fields: {ZZZ: {description: a new tag, format: alnum}}\n"
        "destinations: {min: 1, max: 1, kinds: [state]}\n")
    (tmp_path / "zq.txt").write_text("ZQ.AZNLETS20.TX.TXT\nZZZ/ABC")
    assert run(capsys, "to-xml", str(tmp_path / "zq.txt"))[0] == 1
    code, out, _ = run(capsys, "to-xml", "--schemas", str(tmp_path), str(tmp_path / "zq.txt"))
    assert code == 0 and '<n2:Field n2:tag="ZZZ">ABC</n2:Field>' in out


def test_help_describes_the_commands() -> None:
    r = subprocess.run([sys.executable, "-m", "nlets_switch", "xml", "--help"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    for words in ("to-text", "to-xml", "validate", "xsd", "exit status", "docs/xml.md"):
        assert words in r.stdout
    r = subprocess.run([sys.executable, "-m", "nlets_switch", "xml"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "SUBCOMMAND" in r.stderr
