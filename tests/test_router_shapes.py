"""The router keeps what a header's checks decided per shape (issue 9: speed);
the answers must stay those of the directory and the controls in force."""

from __future__ import annotations

from dataclasses import replace

import pytest

from nlets_switch.config import demo_config
from nlets_switch.core import router as rt
from nlets_switch.core.directory import Directory
from nlets_switch.core.router import Router
from nlets_switch.errors import ErCode, MessageError, SmCode
from nlets_switch.wire.message import parse_message
from nlets_switch.wire.schema import load_schemas

SCHEMAS = load_schemas()
AM = "AM.AZNLETS20.AZ0070500.TXT\nHELLO"


def online(ori: str) -> bool:
    return True


def make() -> tuple[Router, Directory]:
    d = Directory(demo_config().entries)
    return Router(d, SCHEMAS), d


def test_an_orion_change_is_seen_by_the_next_message_of_the_same_shape() -> None:
    r, d = make()
    assert [x.target.receiver for x in r.route(parse_message(AM), "AZNLETS20", online).routes] \
        == ["AZ0070500"]
    entry = d.entry("AZ0070500")
    assert entry is not None
    # ORION TU: the ORI stops taking AM -> SM .01. at once.
    d.put(replace(entry, keys=frozenset({"DQ"})))
    plan = r.route(parse_message(AM), "AZNLETS20", online)
    assert plan.routes == () and [s.code for s in plan.statuses] == [SmCode.NOT_TAKEN]
    # ORION TD: gone -> served through its state's control terminal.
    d.remove("AZ0070500")
    plan = r.route(parse_message(AM), "AZNLETS20", online)
    assert [(x.target.link, x.target.receiver) for x in plan.routes] == \
        [("AZNLETS20", "AZ0070500")]


def test_text_and_link_state_are_judged_for_every_message() -> None:
    r, _ = make()
    dq = "DQ.AZNLETS20.NY.TXT\nOLN/D11111111"
    assert r.route(parse_message(dq), "AZNLETS20", online).routes
    with pytest.raises(MessageError) as info:
        r.route(parse_message("DQ.AZNLETS20.NY.TXT\nBAD/FIELD"), "AZNLETS20", online)
    assert info.value.code == ErCode.FORMAT
    plan = r.route(parse_message(dq), "AZNLETS20", lambda ori: False)
    assert [s.code for s in plan.statuses] == [SmCode.DROPPED]
    # An operator's remove status counts from the next message.
    r.controls.set_removed("NYNLETS00", None)
    plan = r.route(parse_message(dq), "AZNLETS20", online)
    assert plan.routes == () and [s.code for s in plan.statuses] == [SmCode.DROPPED]


def test_a_refused_header_is_refused_every_time_and_not_kept() -> None:
    r, _ = make()
    for _ in range(2):
        with pytest.raises(MessageError) as info:
            r.route(parse_message("AM.NYNLETS00.AZ0070500.TXT\nHI"), "AZNLETS20", online)
        assert "NOT ALLOWED ON THIS LINK" in info.value.detail
    assert not r._shapes


def test_made_up_destinations_cannot_grow_the_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rt, "MAX_SHAPES", 10)
    r, _ = make()
    for i in range(25):
        r.route(parse_message(f"AM.AZNLETS20.AZ{i:07d}.TXT\nHI"), "AZNLETS20", online)
        assert len(r._shapes) <= 10
