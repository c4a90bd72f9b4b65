"""XML links end to end on a real `serve` (issue 12, XML.md): an XML agency and
text terminals talk to each other, to LEIS (`AX`) and to `NL`; every bad input
gets its ER over the link and the link stays up; attacks are refused or
answered with the switch's memory flat; `send`, `log show --as` as a user runs them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml

from nlets_switch.tools.client import Client
from nlets_switch.wire.message import OutputMessage, parse_output
from nlets_switch.wire.schema import load_schemas
from nlets_switch.wire.xml import XmlCodec, is_xml
from tests.conftest import free_port
from tests.test_durability import start_switch

XML_ORI = "AZ0070500"
LINKS = [
    {"ori": "AZNLETS20", "role": "control_terminal"},
    {"ori": "NYNLETS00", "role": "control_terminal"},
    {"ori": XML_ORI, "role": "agency", "format": "xml"},
    {"ori": "NY0303000", "signon": "control_terminal"},
    {"ori": "VTICE0900", "role": "service", "keys": ["IAQ", "GPQ", "AM"]},
]
CODEC = XmlCodec(load_schemas(), max_bytes=None)


class Serve:
    """A `serve` process with an XML agency in its directory."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.data = tmp / "data"
        self.config = tmp / "switch.yaml"
        self.config.write_text(yaml.safe_dump({
            "links": LINKS,
            "services": {"nl": {"gather_s": 1}, "states": {"simulate": ["TX", "CA"]}},
        }))
        self.proc = start_switch(self.data, self.port, "--config", str(self.config))

    async def client(self, ori: str) -> Client:
        return await Client.connect("127.0.0.1", self.port, ori)

    def rss_kb(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nlets_switch", *args],
                              capture_output=True, text=True, timeout=60)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(15)


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    s = Serve(tmp_path_factory.mktemp("xml_e2e"))
    yield s
    s.stop()


@pytest.fixture
async def xml_link(serve: Serve) -> AsyncIterator[Client]:
    c = await serve.client(XML_ORI)
    await c.drain(0.2)
    yield c
    await c.close()


@pytest.fixture
async def ny(serve: Serve) -> AsyncIterator[Client]:
    c = await serve.client("NYNLETS00")
    await c.drain(0.2)
    yield c
    await c.close()


def doc(text: str) -> bytes:
    return CODEC.input_to_xml(text)


async def xml_answer(c: Client, timeout: float = 10) -> OutputMessage:
    """The next delivery on the XML link: a valid document, read as an output message."""
    raw = await c.receive(timeout)
    assert is_xml(raw.encode()), raw[:200]
    return CODEC.read_output(raw.encode())


async def send_ok(c: Client, body: str | bytes) -> None:
    a = await c.send(body)
    assert a.ok, a.text


# -- the exchanges --------------------------------------------------------------


async def test_am_both_ways(xml_link: Client, ny: Client) -> None:
    await send_ok(xml_link, doc("AM.AZ0070500.NYNLETS00.*AM1.TXT\nHELLO NEW YORK"))
    got = parse_output(await ny.receive())
    assert (got.key, got.sender, got.receiver, got.control, got.text) == (
        "AM", XML_ORI, "NYNLETS00", "AM1", "HELLO NEW YORK")
    await send_ok(ny, "AM.NYNLETS00.AZ0070500.*AM2.TXT\nHELLO ARIZONA\nLINE TWO")
    back = await xml_answer(xml_link)
    assert (back.key, back.sender, back.receiver, back.control) == (
        "AM", "NYNLETS00", XML_ORI, "AM2")
    assert back.text == "HELLO ARIZONA\nLINE TWO"


async def test_dq_dr_and_rq_rr_from_the_xml_agency(xml_link: Client, ny: Client) -> None:
    await send_ok(xml_link, doc("DQ.AZ0070500.NY.*DQ1.TXT\n"
                                "NAM/SMITH,JOHN.DOB/19500101.SEX/M"))
    dq = parse_output(await ny.receive())
    assert (dq.key, dq.sender, dq.receiver, dq.control) == ("DQ", XML_ORI, "NYNLETS00", "DQ1")
    assert dq.text == "NAM/SMITH,JOHN.DOB/19500101.SEX/M"
    await send_ok(ny, "DR.NYNLETS00.AZ0070500.*DQ1.TXT\nNAM/SMITH,JOHN\nOLN/S1234 & <VALID>")
    dr = await xml_answer(xml_link)
    assert (dr.key, dr.sender, dr.control) == ("DR", "NYNLETS00", "DQ1")
    assert dr.text == "NAM/SMITH,JOHN\nOLN/S1234 & <VALID>"

    await send_ok(xml_link, doc("RQ.AZ0070500.NY.*RQ1.TXT\nLIC/ABC123.LIY/2027.LIT/PC"))
    rq = parse_output(await ny.receive())
    assert (rq.key, rq.control, rq.text) == ("RQ", "RQ1", "LIC/ABC123.LIY/2027.LIT/PC")
    await send_ok(ny, "RR.NYNLETS00.AZ0070500.*RQ1.TXT\nNO RECORD")
    rr = await xml_answer(xml_link)
    assert (rr.key, rr.control, rr.text) == ("RR", "RQ1", "NO RECORD")


async def test_dq_dr_and_rq_rr_from_the_text_terminal(xml_link: Client, ny: Client) -> None:
    await send_ok(ny, "DQ.NYNLETS00.AZ0070500.*TQ1.TXT\nNAM/DOE,JANE.DOB/19700202.SEX/F")
    dq = await xml_answer(xml_link)
    assert (dq.key, dq.sender, dq.receiver, dq.control, dq.text) == (
        "DQ", "NYNLETS00", XML_ORI, "TQ1", "NAM/DOE,JANE.DOB/19700202.SEX/F")
    await send_ok(xml_link, doc("DR.AZ0070500.NYNLETS00.*TQ1.TXT\nDOE, JANE  DOB 02/02/1970"))
    dr = parse_output(await ny.receive())
    assert (dr.key, dr.sender, dr.control, dr.text) == (
        "DR", XML_ORI, "TQ1", "DOE, JANE  DOB 02/02/1970")

    await send_ok(ny, "RQ.NYNLETS00.AZ0070500.*TQ2.TXT\nLIC/XYZ987.LIY/2026.LIT/PC")
    rq = await xml_answer(xml_link)
    assert (rq.key, rq.control, rq.text) == ("RQ", "TQ2", "LIC/XYZ987.LIY/2026.LIT/PC")
    await send_ok(xml_link, doc("RR.AZ0070500.NYNLETS00.*TQ2.TXT\nNO RECORD"))
    rr = parse_output(await ny.receive())
    assert (rr.key, rr.control, rr.text) == ("RR", "TQ2", "NO RECORD")


async def test_gpq_to_ax_comes_back_as_xml(xml_link: Client) -> None:
    await send_ok(xml_link, doc("GPQ.AZ0070500.AX.*GP1.TXT\nNAM/GARSIA,MARIA"))
    gpr = await xml_answer(xml_link, 20)
    assert (gpr.key, gpr.sender, gpr.receiver, gpr.control) == (
        "GPR", "VTICE0900", XML_ORI, "GP1")
    assert gpr.text.startswith("DIN/D000000001.NAM/GARCIA,MARIA.DOB/19850312")


async def test_dq_to_nl_comes_back_as_xml(xml_link: Client) -> None:
    await send_ok(xml_link, doc("DQ.AZ0070500.NL.*ALL1.TXT\nOLN/D11111111"))
    got = [await xml_answer(xml_link, 15) for _ in range(3)]
    assert all((m.key, m.sender, m.control) == ("DR", "NL0000000", "ALL1") for m in got)
    hits = sorted(m.text.splitlines()[0] for m in got[:2])
    assert hits == ["NL ALL-STATE DQ HIT FROM CA (CANLETS00)",
                    "NL ALL-STATE DQ HIT FROM TX (TXNLETS00)"]
    assert got[2].text.startswith("NL ALL-STATE DQ SUMMARY")


async def test_sm_for_a_held_message_is_xml(xml_link: Client) -> None:
    # AZNLETS20 is not signed on: AM is held, and the SM .02. comes as a document.
    await send_ok(xml_link, doc("AM.AZ0070500.AZNLETS20.*SM1.TXT\nWHEN YOU ARE BACK"))
    sm = await xml_answer(xml_link)
    assert (sm.key, sm.sender, sm.control) == ("SM", "NL0000000", "SM1")
    assert sm.text.startswith(".02. USER OUT OF SERVICE")
    assert "ORIGINAL MESSAGE\n<?xml" in sm.text


# -- bad input: each its ER, and the link stays up ----------------------------------

GOOD = doc("DQ.AZ0070500.TX.*BAD.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M").decode()
BAD_INPUT = [
    ("not well-formed", "<n2:NLETS", ".01."),
    ("wrong root", GOOD.replace("n2:NLETS ", "n2:NLETZ ", 1).replace("</n2:NLETS>",
                                                                     "</n2:NLETZ>"), ".01."),
    ("wrong namespace", GOOD.replace("http://www.nlets.org/niem/1.0", "urn:other"), ".01."),
    ("wrong version", GOOD.replace('n2:version="4.00"', 'n2:version="3.00"'), ".01."),
    ("unknown key", GOOD.replace(">DQ<", ">ZZ<"), ".01."),
    ("missing origin", GOOD.replace("<nh2:OriginatingORIID>AZ0070500</nh2:OriginatingORIID>",
                                    ""), ".01."),
    ("header set by the switch", GOOD.replace(
        "</n2:NLETSMessageHeader>",
        "<nh2:SendMessageNumeric>00001</nh2:SendMessageNumeric></n2:NLETSMessageHeader>"),
     ".01."),
    ("malformed destination", GOOD.replace(">TX<", ">T-X<"), ".19."),
    ("invalid field", GOOD.replace("1950-01-01", "1950-02-30"), ".05."),
    ("invalid element", GOOD.replace("<nc:PersonSexCode>", "<nc:Bogus>X</nc:Bogus>"
                                     "<nc:PersonSexCode>"), ".22."),
    ("DTD", '<?xml version="1.0"?><!DOCTYPE n2:NLETS [<!ELEMENT a ANY>]>' + GOOD[38:], ".01."),
    ("entity declaration", '<!ENTITY x "y">' + GOOD, ".01."),
]


@pytest.mark.parametrize(("what", "body", "code"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
async def test_bad_input_gets_its_er_and_the_link_stays_up(
        xml_link: Client, what: str, body: str, code: str) -> None:
    await send_ok(xml_link, body)
    er = await xml_answer(xml_link)
    assert (er.key, er.sender) == ("ER", "NL0000000")
    assert er.text.startswith(code), er.text
    # The ER quotes the first 100 characters of the document as sent.
    quoted = er.text.split("ORIGINAL MESSAGE\n", 1)[1]
    assert quoted == body[:100].replace("\t", " ")
    await send_ok(xml_link, doc("AM.AZ0070500.AZ0070500.TXT\nSTILL HERE"))
    assert (await xml_answer(xml_link)).text == "STILL HERE"


async def test_characters_outside_the_set_are_n_and_the_link_stays_up(
        xml_link: Client) -> None:
    for body in (GOOD.replace("SMITH", "SM\x01TH"), GOOD.replace("SMITH", "SM&#233;TH"),
                 GOOD.replace("SMITH", "SMÏTH")):
        a = await xml_link.send(body.encode("utf-8"))
        assert not a.ok and a.text.startswith(".02."), a.text
    await send_ok(xml_link, doc("AM.AZ0070500.AZ0070500.TXT\nSTILL HERE"))
    assert (await xml_answer(xml_link)).text == "STILL HERE"


# -- attacks over a live link: refused or answered, memory flat --------------------

XXE_FILE = ('<?xml version="1.0"?><!DOCTYPE n2:NLETS [<!ENTITY xxe SYSTEM '
            '"file:///etc/passwd">]>' + GOOD[GOOD.index("<n2:NLETS"):].replace("SMITH", "&xxe;"))
XXE_NET = XXE_FILE.replace("file:///etc/passwd", "http://127.0.0.1:9/x")
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
          + ']><lolz>&lol9;</lolz>')


async def test_attacks_are_refused_and_memory_stays_flat(serve: Serve,
                                                         xml_link: Client) -> None:
    before = serve.rss_kb()
    for body in (XXE_FILE, XXE_NET, LAUGHS):
        for _ in range(20):
            await send_ok(xml_link, body)
            er = await xml_answer(xml_link)
            assert er.key == "ER" and er.text.startswith(".01."), er.text
            assert "DECLARATIONS ARE NOT ALLOWED" in er.text
            assert "root:" not in er.text
    # A document at the frame limit (its comment is layout): read whole, translated,
    # and answered by the simulated state.
    pad = "X" * (65_531 - len(GOOD) - 60)
    big = GOOD.replace("<nc:PersonSexCode>M</nc:PersonSexCode>",
                       f"<nc:PersonSexCode>M</nc:PersonSexCode><!-- {pad} -->")
    assert 60_000 < len(big) <= 65_531
    for _ in range(20):
        await send_ok(xml_link, big)
        m = await xml_answer(xml_link)
        assert (m.key, m.sender, m.control) == ("DR", "TXNLETS00", "BAD"), m
    after = serve.rss_kb()
    assert after - before < 20_000, (before, after)
    await send_ok(xml_link, doc("AM.AZ0070500.AZ0070500.TXT\nSTILL HERE"))
    assert (await xml_answer(xml_link)).text == "STILL HERE"


async def test_a_text_message_too_long_as_xml_is_refused_at_input(
        xml_link: Client, ny: Client) -> None:
    # A DR that fits a text frame but not a document for the XML receiver
    # (escaping grows '&' to '&amp;'): ER .22. to its sender, nothing delivered.
    body = "&" * 60_000
    await send_ok(ny, f"DR.NYNLETS00.AZ0070500.*BIG1.TXT\n{body}")
    er = parse_output(await ny.receive())
    assert er.key == "ER" and er.text.startswith(".22. INVALID MESSAGE FORMAT\n"
                                                 "TOO LONG AS XML FOR AZ0070500"), er.text
    # One that fits is delivered.
    await send_ok(ny, f"DR.NYNLETS00.AZ0070500.*BIG2.TXT\n{body[:12_000]}")
    dr = await xml_answer(xml_link)
    assert (dr.control, dr.text) == ("BIG2", body[:12_000])
    with pytest.raises(TimeoutError):
        await xml_link.receive(0.5)


# -- redelivery: a held document is translated again from the journal --------------


async def test_held_for_the_xml_agency_then_delivered_as_xml(serve: Serve,
                                                             ny: Client) -> None:
    # Not signed on: the AM waits in the journal and comes as a document at sign-on.
    await send_ok(ny, "AM.NYNLETS00.AZ0070500.*HELD1.TXT\nWAITING FOR YOU")
    sm = parse_output(await ny.receive())
    assert sm.key == "SM" and sm.text.startswith(".02.")
    az = await serve.client(XML_ORI)
    try:
        got = await xml_answer(az)
        assert (got.key, got.control, got.text) == ("AM", "HELD1", "WAITING FOR YOU")
    finally:
        await az.close()


async def test_an_xml_message_held_for_a_text_terminal_is_delivered_as_text(
        serve: Serve, xml_link: Client) -> None:
    await send_ok(xml_link, doc("AM.AZ0070500.AZNLETS20.*HELD2.TXT\nFROM XML, HELD"))
    assert (await xml_answer(xml_link)).key == "SM"
    az = await serve.client("AZNLETS20")
    try:
        for _ in range(5):
            got = parse_output(await az.receive(5))
            if got.control == "HELD2":
                break
        assert (got.key, got.sender, got.text) == ("AM", XML_ORI, "FROM XML, HELD")
    finally:
        await az.close()


# -- tools ------------------------------------------------------------------------


async def test_send_prints_xml_answers_pretty(serve: Serve, tmp_path: Path) -> None:
    f = tmp_path / "dq.xml"
    f.write_bytes(CODEC.input_to_xml("DQ.AZ0070500.TX.*CLI1.TXT\nOLN/D11111111",
                                     pretty=True))
    r = await asyncio.to_thread(serve.cli, "send", "--connect", f"127.0.0.1:{serve.port}",
                                "--ori", XML_ORI, "--file", str(f), "--count", "1",
                                "--timeout", "10")
    assert r.returncode == 0, r.stderr
    assert "accepted" in r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("<n2:NLETS ")
    assert "  <n2:NLETSMessageHeader>" in lines
    assert "    <nh2:MessageKeyCodeText>DR</nh2:MessageKeyCodeText>" in lines
    assert "    <nh2:DocumentControlFieldText>CLI1</nh2:DocumentControlFieldText>" in lines
    # An ER about the document sent: exit 3, as for text.
    f.write_text("<n2:NLETS")
    r = await asyncio.to_thread(serve.cli, "send", "--connect", f"127.0.0.1:{serve.port}",
                                "--ori", XML_ORI, "--file", str(f))
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "refused: ER .01. INVALID HEADER INFORMATION" in r.stderr
    # Legacy text on an XML link: refused, and send says what the link wants.
    r = await asyncio.to_thread(serve.cli, "send", "--connect", f"127.0.0.1:{serve.port}",
                                "--ori", XML_ORI, "AM.AZ0070500.AZ0070500.TXT HI")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "the link of AZ0070500 speaks XML: send a document" in r.stderr


async def test_log_keeps_the_document_and_shows_either_form(serve: Serve,
                                                            xml_link: Client) -> None:
    sent = doc("AM.AZ0070500.AZ0070500.*LOG1.TXT\nKEEP ME")
    await send_ok(xml_link, sent)
    await xml_answer(xml_link)
    args = ("--config", str(serve.config), "--data-dir", str(serve.data))
    found = await asyncio.to_thread(serve.cli, "log", "search", "--control", "LOG1",
                                    "--json", *args)
    assert found.returncode == 0, found.stderr
    mid = str(yaml.safe_load(found.stdout.splitlines()[0])["id"])
    as_sent = await asyncio.to_thread(serve.cli, "log", "show", mid, "--text", "--json", *args)
    assert yaml.safe_load(as_sent.stdout)["text"] == sent.decode()
    as_text = await asyncio.to_thread(serve.cli, "log", "show", mid, "--as", "text", *args)
    assert as_text.returncode == 0, as_text.stderr
    assert "  text (text)\n    AM.AZ0070500.AZ0070500.*LOG1.TXT\n    KEEP ME\n" in as_text.stdout
    as_xml = await asyncio.to_thread(serve.cli, "log", "show", mid, "--as", "xml", *args)
    assert "      <n2:MailMessageText>KEEP ME</n2:MailMessageText>" in as_xml.stdout
    # A text message shown as XML, and the switch's own ER as XML.
    found = await asyncio.to_thread(serve.cli, "log", "search", "--key", "ER", "--json",
                                    "--limit", "1", *args)
    er_id = str(yaml.safe_load(found.stdout.splitlines()[0])["id"])
    er = await asyncio.to_thread(serve.cli, "log", "show", er_id, "--as", "xml", *args)
    assert er.returncode == 0, er.stderr
    assert "<nh2:OriginatingORIID>NL0000000</nh2:OriginatingORIID>" in er.stdout


# -- configuration and the benchmark ----------------------------------------------


def test_format_is_checked_and_names_its_key() -> None:
    from nlets_switch.config import config_from_dict
    from nlets_switch.errors import ConfigError

    with pytest.raises(ConfigError) as e:
        config_from_dict({"links": [{"ori": "AZ0070500", "format": "json"}]})
    assert any(p.startswith("links[0].format: expected text or xml") for p in e.value.problems)
    # A served ORI's messages travel on its control terminal's link, in that link's format.
    with pytest.raises(ConfigError) as e:
        config_from_dict({"links": [
            {"ori": "AZNLETS20", "role": "control_terminal"},
            {"ori": "AZ0070500", "signon": "control_terminal", "format": "xml"}]})
    assert any(p.startswith("links[1].format: only an ORI that signs on")
               for p in e.value.problems), e.value.problems
    cfg = config_from_dict({"links": LINKS})
    assert [e.ori for e in cfg.entries if e.xml] == [XML_ORI]


def test_benchmark_with_xml_inquirers_reports_both_runs() -> None:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "bench_switch.py"), "--json", "--format",
         "xml", "--skip-relay", "--messages", "200", "--warmup", "0.2", "--links", "4",
         "--inflight", "4", "--max-seconds", "30"],
        capture_output=True, text=True, timeout=120, cwd=root, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert r["msgs_per_s"] > 0 and r["xml_msgs_per_s"] > 0 and r["xml_cost"] > 0
    assert r["xml"]["messages"] >= 200
    assert (r["xml"]["errors"], r["xml"]["naks"], r["xml"]["unanswered"]) == (0, 0, 0)
