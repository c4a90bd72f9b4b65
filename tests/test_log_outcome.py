"""`nlets-switch log search` and `log show` show every refused message as refused, with the
ER it caused, against the journal of a switch that ran real traffic."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from nlets_switch.commands.log import outcome
from tests.conftest import ClientFactory, SwitchFactory


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", "log", *args,
                           "--data-dir", str(data)], capture_output=True, text=True, timeout=30)


def _row(search: str, key: str) -> str:
    return next(line for line in search.splitlines() if f"  {key}  " in line)


async def _traffic(make_switch: SwitchFactory, connect: ClientFactory, tmp_path: Path,
                   *texts: tuple[str, str]) -> Path:
    sw = await make_switch(build=True)
    for ori, text in texts:
        c = await connect(sw, ori)
        assert (await c.send(text)).ok
        await c.receive(5)  # the ER
    await sw.journal.barrier()
    await asyncio.sleep(0.05)  # the ER's acknowledgement
    await sw.journal.barrier()
    return tmp_path / "data"


async def test_message_refused_on_receipt_shows_refused_with_its_er(
        make_switch: SwitchFactory, connect: ClientFactory, tmp_path: Path) -> None:
    data = await _traffic(make_switch, connect, tmp_path,
                          ("AZNLETS20", "RQ.AZNLETS20.AZ.TXT\nLIC/123456.LIT/PC"))
    search, show = await asyncio.to_thread(
        lambda: (_cli(data, "search"), _cli(data, "show", "1")))
    row = _row(search.stdout, "RQ")
    assert "refused: .22. INVALID MESSAGE FORMAT" in row and "(ER 2)" in row
    assert "accepted" not in row
    assert "  status     refused: .22. INVALID MESSAGE FORMAT" in show.stdout
    assert "(ER 2)" in show.stdout


async def test_refused_help_file_update_shows_refused_with_its_er(
        make_switch: SwitchFactory, connect: ClientFactory, tmp_path: Path) -> None:
    data = await _traffic(make_switch, connect, tmp_path,
                          ("NYNLETS00", "AM.NYNLETS00.AZNLEUPDT.TXT\nNEW HELP TEXT"))
    search, show = await asyncio.to_thread(
        lambda: (_cli(data, "search", "--key", "AM"), _cli(data, "show", "1")))
    row = _row(search.stdout, "AM")
    assert "refused: .02. MESSAGE TYPE NOT ALLOWED TO DESTINATION" in row, search.stdout
    assert "  status     refused: .02." in show.stdout
    assert "caused     ER" in show.stdout


def test_outcome_wording() -> None:
    ok = {"status": "accepted", "reason": None}
    assert outcome(ok) == "accepted"
    bad = {"status": "rejected", "reason": ".19. INVALID DESTINATION ORIS"}
    assert outcome(bad) == "refused: .19. INVALID DESTINATION ORIS"
    assert outcome({**bad, "caused": [{"key": "ER", "id": 9, "code": ".19. X"}]}) == (
        "refused: .19. INVALID DESTINATION ORIS (ER 9)")
    # Accepted at first, then refused by one of the switch's services: its ER says why.
    later = {**ok, "caused": [{"key": "ER", "id": 7, "code": ".02. MESSAGE TYPE NOT ALLOWED"}]}
    assert outcome(later) == "refused: .02. MESSAGE TYPE NOT ALLOWED (ER 7)"
    # An SM is a status, not a refusal.
    assert outcome({**ok, "caused": [{"key": "SM", "id": 8, "code": ".02. HELD"}]}) == "accepted"


@pytest.mark.parametrize(("ori", "text", "reason"), [
    ("NYNLETS00", "AM.NYNLETS00.NYXYZHELP.TXT\nSEND IT", ".19. INVALID DESTINATION ORIS"),
    ("NYNLETS00", "AM.NYNLETS00.NYXYZCNCL.TXT\nDROP IT", ".19. INVALID DESTINATION ORIS"),
    ("NYNLETS00", "TD.NYNLETS00.OD.TXT\nORI/AZNLETS20", ".02."),
    ("AZNLETS20", "NLQ.AZNLETS20.NL.TXT\nMKE/DQ.CTL/DQ0001", ".14. FIELDS MISSING MISSING: TYP"),
], ids=["help-missing", "cancel-missing", "orion-change", "nlq-old-fields"])
async def test_every_message_a_service_refuses_shows_refused_with_its_er(
        make_switch: SwitchFactory, connect: ClientFactory, tmp_path: Path,
        ori: str, text: str, reason: str) -> None:
    data = await _traffic(make_switch, connect, tmp_path, (ori, text))
    search, show = await asyncio.to_thread(
        lambda: (_cli(data, "search"), _cli(data, "show", "1")))
    row = _row(search.stdout, text.split(".")[0])
    assert f"refused: {reason}" in row and "(ER 2)" in row, search.stdout
    assert "accepted" not in row
    assert f"  status     refused: {reason}" in show.stdout
    assert "caused     ER 2" in show.stdout
