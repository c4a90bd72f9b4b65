"""The YQ/YR hit-confirmation clock: 10 minutes urgent, 1 hour routine; past it
the requester gets an SM and the holder a reminder. Time is driven, never slept."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from nlets_switch.server.switch import Switch
from nlets_switch.services.hitclock import HitClock
from nlets_switch.services.nl import YQ_LATE, NlService
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest_services import FAST, world

YQ_U = ("YQ.AZNLETS20.NY0303000.*HC1.TXT\nRTY/WP.PRI/U.OCA/1.NIC/A111110000."
        "NAM/SMITH,JOHN.DOB/19500101")


@pytest.mark.parametrize(("pri", "seconds"), [("U", 600), ("R", 3600), ("X", 3600)])
def test_deadline_follows_the_priority(pri: str, seconds: int) -> None:
    clock = HitClock()
    clock.start(1, "AZNLETS20", "TX0000000", "C1", pri, 1000.0)
    assert clock.next_due() == 1000.0 + seconds
    assert clock.due(1000.0 + seconds - 1) == []
    [late] = clock.due(1000.0 + seconds)
    assert (late.msg_id, late.holder, late.requester) == (1, "TX0000000", "AZNLETS20")
    assert clock.due(1e12) == [] and len(clock) == 0  # told once


def test_a_yr_from_the_holder_or_its_state_stops_the_clock() -> None:
    clock = HitClock({"U": 10.0, "R": 20.0})
    clock.start(1, "AZNLETS20", "TX0000000", "C1", "U", 0.0)
    clock.start(2, "AZNLETS20", "NY0303000", "C2", "R", 0.0)
    assert clock.start(1, "AZNLETS20", "TX0000000", "C1", "U", 5.0) is None  # redelivery
    # Not an answer: wrong control field, another requester, another state.
    assert clock.answered("TX0000000", ("AZNLETS20",), "C9") == []
    assert clock.answered("TX0000000", ("AZ0070500",), "C1") == []
    assert clock.answered("CA0000000", ("AZNLETS20",), "C1") == []
    # New York's control terminal answers for its agency.
    assert [p.msg_id for p in clock.answered("NYNLETS00", ("AZNLETS20",), "C2")] == [2]
    assert [p.msg_id for p in clock.due(100.0)] == [1]


def _nl(sw: Switch) -> NlService:
    return next(o.__self__ for o in sw.observers  # type: ignore[attr-defined]
                if isinstance(getattr(o, "__self__", None), NlService))


async def test_unanswered_yq_gets_sm_to_requester_and_reminder_to_holder(
        tmp_path: Path) -> None:
    async with world(tmp_path, {**FAST, "nl": {"gather_s": 0.5, "yq_urgent_s": 300}}) as sw:
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        ny = await Client.connect(host, port, "NYNLETS00")  # takes the YQ, never answers
        assert (await az.send(YQ_U)).ok
        assert parse_output(await ny.receive(5)).receiver == "NY0303000"
        nl = _nl(sw)
        for _ in range(100):  # the acknowledgement, then the clock starts
            if len(nl.clock):
                break
            await asyncio.sleep(0.02)
        [p] = nl.clock.pending()
        assert (p.requester, p.holder, p.control, p.priority) == (
            "AZNLETS20", "NY0303000", "HC1", "U")
        assert await nl.check_clock(time.time() + 60) == []  # not yet: 300 s configured
        [late] = await nl.check_clock(time.time() + 301)
        assert late.msg_id == p.msg_id
        sm = parse_output(await az.receive(5))
        assert (sm.key, sm.sender, sm.receiver, sm.control) == (
            "SM", "NL0000000", "AZNLETS20", "HC1")
        assert sm.text.splitlines()[:4] == [
            YQ_LATE, "DESTINATION: NY0303000", "PRIORITY U: NO YR WITHIN 5 MINUTES",
            "ORIGINAL MESSAGE"]
        assert sm.text.splitlines()[4].startswith("YQ.AZNLETS20.NY0303000.*HC1.TXT")
        reminder = parse_output(await ny.receive(5))
        assert (reminder.key, reminder.sender, reminder.receiver, reminder.control) == (
            "AM", "NL0000000", "NY0303000", "HC1")
        assert reminder.text.startswith("REMINDER: HIT CONFIRMATION REQUEST FROM AZNLETS20")
        assert await nl.check_clock(time.time() + 7200) == []  # told once
        await az.close()
        await ny.close()


async def test_answered_yq_raises_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as sw:
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        ny = await Client.connect(host, port, "NYNLETS00")
        assert (await az.send(YQ_U)).ok
        yq = parse_output(await ny.receive(5))
        assert yq.receiver == "NY0303000"
        nl = _nl(sw)
        for _ in range(100):
            if len(nl.clock):
                break
            await asyncio.sleep(0.02)
        assert len(nl.clock) == 1
        assert (await ny.send("YR.NY0303000.AZNLETS20.*HC1.TXT\nCONFIRMED")).ok
        assert parse_output(await az.receive(5)).key == "YR"
        assert len(nl.clock) == 0
        assert await nl.check_clock(time.time() + 7200) == []
        assert await az.drain(0.3) == []
        await az.close()
        await ny.close()
