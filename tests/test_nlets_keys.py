"""Issue 13's keys and destinations: SOQ/SOR, DNQ/DNR, IQ and SOQ through NL,
DQG/RQG to a region, AML for law enforcement only, help-file APND and CNCL."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from nlets_switch.config import demo_config
from nlets_switch.core.directory import Directory
from nlets_switch.core.regions import REGIONS
from nlets_switch.core.router import Router
from nlets_switch.errors import ErCode, MessageError
from nlets_switch.server.switch import Switch
from nlets_switch.tools.client import Client
from nlets_switch.wire.domain import US_STATES
from nlets_switch.wire.message import OutputMessage, parse_message, parse_output
from nlets_switch.wire.schema import load_schemas
from tests.conftest_services import FAST, world

SMITH = "NAM/SMITH,JOHN.DOB/19500101.SEX/M"
SCHEMAS = load_schemas()


async def client(sw: Switch, ori: str = "AZNLETS20") -> Client:
    host, port = sw.addresses[0]
    return await Client.connect(host, port, ori)


async def ask(c: Client, text: str) -> OutputMessage:
    ans = await c.send(text)
    assert ans.ok, ans
    return parse_output(await c.receive(5))


async def until_summary(c: Client, answer_as: str) -> list[OutputMessage]:
    """Everything delivered until the NL summary; answers NL's own inquiry NO RECORD."""
    got = []
    while True:
        m = parse_output(await c.receive(10))
        got.append(m)
        if m.sender == "NL0000000" and m.key in ("DQ", "RQ", "IQ", "SOQ"):
            rkey = SCHEMAS[m.key].response
            await c.send(f"{rkey}.{answer_as}.NL0000000.*{m.control}.TXT\nNO RECORD")
        if "SUMMARY" in m.text:
            return got


# -- the route step, pure -----------------------------------------------------------


def router(**agency_types: str) -> Router:
    entries = [replace(e, agency_type=agency_types.get(e.ori, e.agency_type))
               for e in demo_config().entries]
    return Router(Directory(entries), SCHEMAS)


def refused(r: Router, text: str, link: str = "AZNLETS20") -> MessageError:
    with pytest.raises(MessageError) as info:
        r.check(parse_message(text), link)
    return info.value


@pytest.mark.parametrize(("text", "code", "detail"), [
    # A region that does not exist, or a state where a region belongs: .19.
    ("DQG.AZNLETS20.RZ.TXT\n" + SMITH, ErCode.DESTINATION, "UNKNOWN: RZ"),
    ("DQG.AZNLETS20.RG,AZ.TXT\n" + SMITH, ErCode.DESTINATION, "UNKNOWN: AZ"),
    ("RQG.AZNLETS20.RG.TXT\nLIC/123456.LIT/PC", ErCode.FORMAT, "LIC, LIY, LIT OR VIN"),
    # A region is not a destination of other keys.
    ("DQ.AZNLETS20.RG.TXT\n" + SMITH, ErCode.KEY_NOT_ALLOWED, "RG"),
    # IQ still never goes to a 9-character ORI; SOQ needs its search fields.
    ("IQ.AZNLETS20.TX0000000.TXT\n" + SMITH, ErCode.KEY_NOT_ALLOWED, "TX0000000"),
    ("SOQ.AZNLETS20.NL.TXT\nNAM/SMITH,JOHN", ErCode.FORMAT, "NAM, DOB OR SOC OR FBI OR SID"),
    ("DNQ.AZNLETS20.TX.TXT\nDOB/19500101", ErCode.FIELDS_MISSING, "NAM"),
])
def test_bad_input_gets_the_er_protocol_names(text: str, code: ErCode, detail: str) -> None:
    err = refused(router(), text)
    assert err.code == code and detail in err.detail, (err.code, err.detail)


@pytest.mark.parametrize("text", [
    "DQG.AZNLETS20.RG.TXT\n" + SMITH,
    "DQG.AZNLETS20.RA,RB,RK.*G1.TXT\nOLN/D11111111",
    "RQG.AZNLETS20.RH.TXT\nVIN/1FTEW1EP5KFA00001",
    "IQ.AZNLETS20.NL.TXT\n" + SMITH,
    "SOQ.AZNLETS20.NL.TXT\nFBI/123456AA1",
    "DNQ.AZNLETS20.TX.TXT\nNAM/SMITH,JOHN",
    "AML.AZNLETS20.NY,TX,NY0303000.TXT\nOFFICER SAFETY",
])
def test_new_keys_route(text: str) -> None:
    plan = router().route(parse_message(text), "AZNLETS20", lambda ori: True)
    assert plan.routes and not plan.statuses


def test_regional_inquiry_goes_to_nl_once_per_region() -> None:
    plan = router().route(parse_message("DQG.AZNLETS20.RA,RB.TXT\n" + SMITH), "AZNLETS20",
                          lambda ori: True)
    assert [(r.target.link, r.target.receiver) for r in plan.routes] == [
        ("NL0000000", "RA"), ("NL0000000", "RB")]


def test_regions_cover_every_state_once() -> None:
    members = [s for _, states in REGIONS.values() for s in states]
    assert sorted(members) == sorted(US_STATES)


def test_aml_is_for_law_enforcement_only() -> None:
    r = router(AZ0070500="NC", NY0303000="CJ")
    text = "AML.AZNLETS20.NY0303000,TX.TXT\nOFFICER SAFETY"
    err = refused(r, text)
    assert err.code == ErCode.KEY_NOT_ALLOWED and err.detail.endswith(": NY0303000")
    err = refused(r, "AML.AZ0070500.TX.TXT\nOFFICER SAFETY", link="AZ0070500")
    assert err.code == ErCode.KEY_NOT_ALLOWED and "LAW ENFORCEMENT" in err.detail
    # The same messages as AM are fine: the rule is AML's.
    r.check(parse_message("AM.AZ0070500.TX.TXT\nHELLO"), "AZ0070500")
    r.check(parse_message("AM.AZNLETS20.NY0303000.TXT\nHELLO"), "AZNLETS20")


def test_agency_type_is_configuration_with_its_key_path() -> None:
    from nlets_switch.config import config_from_dict
    from nlets_switch.errors import ConfigError
    cfg = config_from_dict({"links": [{"ori": "AZ0070500", "agency_type": "NC"}]})
    assert {e.ori: e.agency_type for e in cfg.entries}["AZ0070500"] == "NC"
    with pytest.raises(ConfigError) as info:
        config_from_dict({"links": [{"ori": "AZ0070500", "agency_type": "XX"}]})
    assert any(p.startswith("links[0].agency_type") for p in info.value.problems)


# -- end to end ---------------------------------------------------------------------


async def test_soq_and_dnq_to_a_simulated_state(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        c = await client(sw)
        sor = await ask(c, "SOQ.AZNLETS20.TX.*SO1.TXT\nFBI/123456AA1")
        assert (sor.key, sor.sender, sor.receiver, sor.control) == (
            "SOR", "TXNLETS00", "AZNLETS20", "SO1")
        assert sor.text.startswith("TX SEX OFFENDER REGISTRY") and "NAME: SMITH,JOHN" in sor.text
        dnr = await ask(c, "DNQ.AZNLETS20.CA.*DN1.TXT\nNAM/SMITH,JOHN")
        assert (dnr.key, dnr.control) == ("DNR", "DN1")
        assert "NAM/SMITH,JOHN.DOB/19500101.SEX/M.OLN/D11111111" in dnr.text
        await c.close()


@pytest.mark.parametrize(("key", "fields", "answer"), [
    ("IQ", SMITH, "IR"),
    ("SOQ", "FBI/123456AA1", "SOR"),
])
async def test_iq_and_soq_go_to_every_state_through_nl(tmp_path: Path, key: str, fields: str,
                                                        answer: str) -> None:
    async with world(tmp_path, {**FAST, "nl": {"gather_s": 8}}) as sw:
        c = await client(sw)
        assert (await c.send(f"{key}.AZNLETS20.NL.*ALL1.TXT\n{fields}")).ok
        got = await until_summary(c, "AZNLETS20")
        hits = [m for m in got if m.key == answer and "HIT FROM" in m.text]
        assert len(hits) == 49 and all(m.control == "ALL1" for m in hits)
        summary = got[-1]
        assert summary.key == answer and summary.text.startswith(
            f"NL ALL-STATE {key} SUMMARY, 51 STATES ASKED")
        assert "NO RECORD IN (1): AZ" in summary.text and "OUT OF SERVICE (1): NY" in summary.text
        await c.close()


async def test_dqg_asks_the_states_of_the_region_only(tmp_path: Path) -> None:
    async with world(tmp_path, {**FAST, "nl": {"gather_s": 8}}) as sw:
        c = await client(sw)
        assert (await c.send(f"DQG.AZNLETS20.RG.*REG1.TXT\n{SMITH}")).ok
        got = await until_summary(c, "AZNLETS20")
        asked = [m for m in got if m.key == "DQ"]  # a DQG becomes a DQ for each state
        assert len(asked) == 1 and asked[0].text.strip() == SMITH
        hits = [m for m in got if m.key == "DR" and "HIT FROM" in m.text]
        assert sorted(m.text.split()[7] for m in hits) == ["CA", "HI", "NV"]
        assert hits[0].text.startswith("NL REGION RG PACIFIC DQ HIT FROM")
        summary = got[-1]
        assert summary.text.splitlines()[:3] == [
            "NL REGION RG PACIFIC DQ SUMMARY, 4 STATES ASKED",
            "HIT (3): CA HI NV", "NO RECORD IN (1): AZ"]
        assert summary.control == "REG1" and summary.key == "DR"
        await c.close()


async def test_help_file_append_and_cancel(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        az = await client(sw)
        ny = await client(sw, "NYNLETS00")
        assert "UPDATED" in (await ask(ny, "AM.NYNLETS00.NYSORUPDT.TXT\nLINE ONE")).text
        ok = await ask(ny, "AM.NYNLETS00.NYSORAPND.*A1.TXT\nLINE TWO")
        assert (ok.key, ok.control) == ("AM", "A1") and ok.text.endswith("NYSOR APPENDED")
        got = await ask(az, "AM.AZNLETS20.NYSORHELP.TXT\nSEND")
        assert got.text.splitlines()[-2:] == ["LINE ONE", "LINE TWO"]
        # Only New York's ORIs change New York's files.
        for func in ("APND", "CNCL"):
            er = await ask(az, f"AM.AZNLETS20.NYSOR{func}.TXT\nX")
            assert er.key == "ER" and ".02." in er.text and "ONLY ORIS OF NY" in er.text
        ok = await ask(ny, "AM.NYNLETS00.NYSORCNCL.TXT\nREMOVE")
        assert ok.text.endswith("NYSOR CANCELLED")
        er = await ask(az, "AM.AZNLETS20.NYSORHELP.TXT\nSEND")
        assert er.key == "ER" and ".19." in er.text
        er = await ask(ny, "AM.NYNLETS00.NYSORCNCL.TXT\nREMOVE")  # nothing left to cancel
        assert er.key == "ER" and ".19." in er.text
        await az.close()
        await ny.close()
        await sw.journal.barrier()
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute(
        "SELECT count(*) FROM help_files WHERE state = 'NY' AND file = 'SOR'").fetchall()
    assert rows == [(0,)]


# -- Canada, INTERPOL, Mexico ----------------------------------------------------------


@pytest.mark.parametrize(("address", "ori"), [
    ("CN", "CNNLETS00"), ("ON", "CNNLETS00"), ("PQ", "CNNLETS00"), ("NK", "CNNLETS00"),
    ("IP", "IPNLETS00"), ("MX", "MXNLETS00"),
])
def test_foreign_addresses_reach_their_counterpart(address: str, ori: str) -> None:
    plan = router().route(parse_message(f"RQ.AZNLETS20.{address}.TXT\nVIN/1FTEW1EP5KFA00001"),
                          "AZNLETS20", lambda o: True)
    assert [r.target.link for r in plan.routes] == [ori] and not plan.statuses


def test_foreign_counterparts_take_their_own_keys() -> None:
    # KQ is not a key Canada takes: SM .01., not delivered.
    plan = router().route(parse_message("KQ.AZNLETS20.CN.TXT\nOLN/D11111111"), "AZNLETS20",
                          lambda o: True)
    assert not plan.routes and [s.code.value for s in plan.statuses] == [1]


def test_canada_takes_at_most_14400_characters() -> None:
    r = router()
    at_limit = "AM.AZNLETS20.CN.TXT\n" + "X" * 14_400
    r.check(parse_message(at_limit), "AZNLETS20")
    err = refused(r, at_limit + "X")
    assert err.code == ErCode.FORMAT and "CN TAKE AT MOST 14400" in err.detail
    err = refused(r, "AM.AZNLETS20.TX,ON.TXT\n" + "X" * 14_401)  # a province is Canada too
    assert err.code == ErCode.FORMAT
    r.check(parse_message("AM.AZNLETS20.TX,MX.TXT\n" + "X" * 14_401), "AZNLETS20")


@pytest.mark.parametrize(("text", "key", "sender", "line"), [
    ("DQ.AZNLETS20.CN.*C1.TXT\n" + SMITH, "DR", "CNNLETS00",
     "CPIC RESPONSE - DRIVER LICENCE (ONTARIO MTO)"),
    ("RQ.AZNLETS20.ON.*C1.TXT\nLIC/123456.LIY/2027.LIT/PC", "RR", "CNNLETS00",
     "CPIC STOLEN VEHICLE CHECK: NOT STOLEN"),
    ("IQ.AZNLETS20.IP.*C1.TXT\n" + SMITH, "IR", "IPNLETS00",
     "FBI: 123456AA1   NOTICES: NONE   DIFFUSIONS: NONE"),
    ("RQ.AZNLETS20.MX.*C1.TXT\nVIN/1FTEW1EP5KFA00001", "RR", "MXNLETS00",
     "MEXICO - REGISTRO PUBLICO VEHICULAR"),
])
async def test_foreign_round_trips(tmp_path: Path, text: str, key: str, sender: str,
                                   line: str) -> None:
    async with world(tmp_path) as sw:
        c = await client(sw)
        ans = await ask(c, text)
        assert (ans.key, ans.sender, ans.receiver, ans.control) == (key, sender, "AZNLETS20",
                                                                    "C1")
        assert line in ans.text.splitlines()
        miss = await ask(c, text.replace("SMITH,JOHN", "DOE,JANE").replace(
            "123456", "999999").replace("KFA00001", "KFA99999"))
        assert miss.text.splitlines()[-1] == "NO RECORD"
        await c.close()
