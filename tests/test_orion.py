"""ORION on the wire: TQ to OD answered with TR; TA, TU, TD from a control terminal
for its own state only, effective at once for routing and sign-on, kept, audited."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nlets_switch.config import demo_config
from nlets_switch.core.directory import Directory
from nlets_switch.errors import ErCode, MessageError
from nlets_switch.server.switch import Switch
from nlets_switch.services import orion
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import OutputMessage, parse_output
from tests.conftest_services import world

TEMPE = ("TA.AZNLETS20.OD.*T1.TXT\nORI/AZ0071100.ANM/TEMPE POLICE DEPT.ADR/120 E 5th St."
         "CTY/Tempe.ZIP/85281.PHN/4803508311.TYP/LE")


async def client(sw: Switch, ori: str = "AZNLETS20") -> Client:
    host, port = sw.addresses[0]
    return await Client.connect(host, port, ori)


async def ask(c: Client, text: str) -> OutputMessage:
    ans = await c.send(text)
    assert ans.ok, ans
    return parse_output(await c.receive(5))


def directory() -> Directory:
    return Directory(demo_config().entries)


@pytest.mark.parametrize(("fields", "oris"), [
    ({"ORI": "AZ0070500"}, ["AZ0070500"]),
    ({"ORI": "AZ0099999"}, []),
    ({"TYP": "LE", "STA": "NY"}, ["NYNLETS00", "NY0303000"]),
    ({"TYP": "CJ"}, []),
    ({"STA": "AZ", "CTY": "PHOENIX"}, []),
])
def test_tq_searches(fields: dict[str, str], oris: list[str]) -> None:
    assert sorted(e.ori for e in orion.search(directory(), fields)) == sorted(oris)


def test_tr_lists_records_or_not_on_file() -> None:
    d = directory()
    assert orion.answer([]) == "ORION\nNOT ON FILE"
    text = orion.answer(orion.search(d, {"ORI": "AZ0070500"}))
    assert text.splitlines() == ["ORION: 1 RECORD",
                                 "ORI/AZ0070500.ANM/ARIZONA AGENCY.STA/AZ.TYP/LE.ACT/Y"]


@pytest.mark.parametrize(("key", "sender", "fields", "detail"), [
    ("TA", "NYNLETS00", {"ORI": "AZ0071100", "ANM": "X", "CTY": "Y"}, "OF NY ONLY"),
    ("TA", "AZ0070500", {"ORI": "AZ0071100", "ANM": "X", "CTY": "Y"}, "CONTROL TERMINAL"),
    ("TA", "AZNLETS20", {"ORI": "AZ0070500", "ANM": "X", "CTY": "Y"}, "ALREADY ON FILE"),
    ("TU", "AZNLETS20", {"ORI": "AZ0099999", "ACT": "N"}, "NOT ON FILE"),
    ("TD", "AZNLETS20", {"ORI": "AZNLETS20"}, "IS A CONTROL TERMINAL"),
    ("TD", "NYNLETS00", {"ORI": "AZ0070500"}, "OF NY ONLY"),
])
def test_changes_are_refused_with_an_er(key: str, sender: str, fields: dict[str, str],
                                        detail: str) -> None:
    d = directory()
    with pytest.raises(MessageError) as info:
        orion.change(d, key, sender, fields)
    assert detail in info.value.detail
    assert info.value.code in (ErCode.KEY_NOT_ALLOWED, ErCode.FORMAT, ErCode.DESTINATION)
    assert len(d) == len(directory())  # nothing changed


async def test_orion_round_trip_routing_signon_restart_audit(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        az = await client(sw)
        tr = await ask(az, "TQ.AZNLETS20.OD.*Q1.TXT\nORI/AZ0071100")
        assert (tr.key, tr.sender, tr.control) == ("TR", "NL0000000", "Q1")
        assert tr.text.splitlines()[-1] == "NOT ON FILE"
        added = await ask(az, TEMPE)
        assert added.key == "TR" and added.text.splitlines() == [
            "ORION RECORD AZ0071100 ADDED",
            "ORI/AZ0071100.ANM/TEMPE POLICE DEPT.ADR/120 E 5TH ST.CTY/TEMPE.STA/AZ."
            "ZIP/85281.PHN/4803508311.TYP/LE.ACT/Y"]
        found = await ask(az, "TQ.AZNLETS20.OD.TXT\nSTA/AZ.CTY/TEMPE")
        assert found.text.splitlines()[0] == "ORION: 1 RECORD"
        # New York may not touch Arizona's records.
        ny = await client(sw, "NYNLETS00")
        er = await ask(ny, "TD.NYNLETS00.OD.TXT\nORI/AZ0071100")
        assert er.key == "ER" and er.text.startswith(".02.")
        # Inactive: no traffic to it (ER .19.), at once.
        assert "UPDATED" in (await ask(az, "TU.AZNLETS20.OD.TXT\nORI/AZ0071100.ACT/N")).text
        er = await ask(az, "AM.AZNLETS20.AZ0071100.TXT\nHELLO")
        assert er.key == "ER" and ".19." in er.text
        # An agency that signs on for itself, made inactive, may no longer sign on.
        assert "UPDATED" in (await ask(az, "TU.AZNLETS20.OD.TXT\nORI/AZ0070500.ACT/N")).text
        host, port = sw.addresses[0]
        with pytest.raises(Exception, match="SIGN-ON REJECTED"):
            await Client.connect(host, port, "AZ0070500")
        await az.close()
        await ny.close()
    # The changes outlive a restart.
    async with world(tmp_path) as sw:
        e = sw.directory.entry("AZ0071100")
        assert e is not None and e.city == "TEMPE" and not e.active
        a = sw.directory.entry("AZ0070500")
        assert a is not None and not a.active and a.signs_on
        az = await client(sw)
        assert "DELETED" in (await ask(az, "TD.AZNLETS20.OD.TXT\nORI/AZ0071100")).text
        assert sw.directory.entry("AZ0071100") is None
        await az.close()
    rows = sqlite3.connect(tmp_path / "journal.sqlite").execute(
        "SELECT type, subject, outcome FROM audit WHERE type LIKE 'orion%' ORDER BY id"
    ).fetchall()
    assert rows == [("orion_add", "AZ0071100", "success"),
                    ("orion_delete", "AZ0071100", "failure"),
                    ("orion_update", "AZ0071100", "success"),
                    ("orion_update", "AZ0070500", "success"),
                    ("orion_delete", "AZ0071100", "success")]
