"""The operator console through the HTTP API: roles, remove status, broadcasts, the
intervention queue and held queues; every action audited with the token's name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
import pytest

from nlets_switch.config import config_from_dict
from nlets_switch.core.events import Audit
from nlets_switch.errors import ConfigError
from nlets_switch.ops.console import OperatorConsole, broadcast_text
from nlets_switch.ops.monitor import http_settings
from nlets_switch.tools.client import Client

if TYPE_CHECKING:
    from nlets_switch.server.switch import Switch
    from tests.conftest_monitoring import MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]

READER = "reader-token-0123456789"
OFFICER = "officer-token-0123456789"
OPERATOR = "operator-token-0123456789"
ADMIN = "admin-token-0123456789ab"
BLIND = "blind-operator-token-012345"
TOKENS = {"tokens": [
    {"name": "ops", "token": READER},                                  # today's kind: read
    {"name": "records", "token": OFFICER, "see_text": True},           # today's see_text
    {"name": "jane", "token": OPERATOR, "permissions": ["operate", "see_text"]},
    {"name": "root", "token": ADMIN, "permissions": ["admin"]},
    {"name": "night", "token": BLIND, "permissions": ["operate"]},
]}
RULES = {"rules": [{"name": "am-to-ny", "key": "AM", "destination": "NYNLETS00"},
                   {"name": "watch-word", "text": "CONTRABAND"}]}


async def call(addr: tuple[str, int] | None, method: str, path: str, token: str | None = None,
               body: dict[str, Any] | None = None) -> tuple[int, Any]:
    assert addr is not None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.request(
            method, f"http://{addr[0]}:{addr[1]}{path}", headers=headers, json=body) as r:
        return r.status, await r.json()


def actions(audits: list[dict[str, Any]]) -> list[tuple[str, str, str, str]]:
    return [(a["subject"], a["outcome"], a["action"], a.get("reason", "")) for a in audits
            if a["type"] == "operator_action"]


def watch(sw: Switch) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    audits: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    sw.observers.append(lambda e: audits.append(e.to_dict()) if isinstance(e, Audit) else None)
    sw.observers.append(lambda e: events.append(e.to_dict())
                        if e.to_dict().get("event") == "operator" else None)
    return audits, events


# -- roles ----------------------------------------------------------------------------


def test_permissions_are_configured_per_token_and_older_tokens_keep_working() -> None:
    cfg = config_from_dict({"api": TOKENS})
    toks = {t.name: t for t in http_settings(cfg, None).tokens}
    assert toks["ops"].may("read") and not toks["ops"].may("see_text")
    assert not toks["ops"].may("operate")
    assert toks["records"].may("see_text") and not toks["records"].may("operate")
    assert toks["jane"].may("operate") and toks["jane"].may("read")
    # admin: every action and lifting lock-outs, but the text is a grant of its own.
    assert toks["root"].may("operate") and toks["root"].may("admin")
    assert not toks["root"].may("see_text") and toks["root"].admin
    assert toks["night"].may("operate") and not toks["night"].may("see_text")
    with pytest.raises(ConfigError) as e:
        config_from_dict({"api": {"tokens": [
            {"name": "x", "token": READER, "permissions": ["read", "fly"]}]}})
    assert list(e.value.problems) == [
        "api.tokens[0].permissions: expected a list of read, see_text, operate, admin"]


async def test_an_operate_action_with_a_read_token_is_refused_and_audited(
        monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS})
    audits, _ = watch(sw)
    addr = mon.http_address
    for path, body in [("/api/queue/1/release", {}), ("/api/queue/1/purge", {"reason": "x"}),
                       ("/api/held/NYNLETS00/purge", {"reason": "x"}),
                       ("/api/messages/1/resend", {}),
                       ("/api/remove-status", {"ori": "NYNLETS00"}),
                       ("/api/broadcast", {"kind": "in-service"})]:
        for token in (READER, OFFICER):
            status, answer = await call(addr, "POST", path, token, body)
            assert status == 403, path
            assert "needs a token with operate" in answer["error"]
    status, _ = await call(addr, "POST", "/api/queue/1/release", None, {})
    assert status == 401
    denied = actions(audits)
    assert len(denied) == 12
    assert {(s, o) for s, o, _, _ in denied} == {("ops", "denied"), ("records", "denied")}
    assert {a for _, _, a, _ in denied} == {"release", "purge", "resend", "remove_status",
                                            "broadcast"}
    # Reading still works for the reader; an edit needs see_text as well as operate.
    status, _ = await call(addr, "GET", "/api/queue", READER)
    assert status == 200
    status, answer = await call(addr, "POST", "/api/queue/1/edit", BLIND, {"text": "X"})
    assert status == 403 and "see_text" in answer["error"]
    assert actions(audits)[-1] == ("night", "denied", "edit", "")


async def test_loopback_without_tokens_reads_but_does_not_act(
        monitored: MonitoredFactory) -> None:
    _sw, mon = await monitored()
    status, _ = await call(mon.http_address, "GET", "/api/queue")
    assert status == 200
    status, _ = await call(mon.http_address, "POST", "/api/broadcast", None,
                           {"kind": "in-service"})
    assert status == 403


# -- remove status and broadcasts ----------------------------------------------------------


async def test_remove_status_answers_sm_04_until_lifted_and_survives_a_restart(
        monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS})
    audits, events = watch(sw)
    addr = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    status, _ = await call(addr, "POST", "/api/remove-status", OPERATOR,
                           {"ori": "nynlets00", "keys": ["AM"], "reason": "line work"})
    assert status == 200
    assert (await az.send("AM.AZNLETS20.NY.TXT ARE YOU THERE")).ok
    sm = await az.receive(5)
    assert sm.startswith("SM.NL0000000")
    assert ".04. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD" in sm
    assert "DESTINATION: NY" in sm
    assert await ny.drain(0.3) == []
    # Only AM: a DQ to NY still goes.
    assert (await az.send("DQ.AZNLETS20.NY.TXT OLN/A1234567")).ok
    assert (await ny.receive(5)).startswith("DQ.AZNLETS20")
    _, listed = await call(addr, "GET", "/api/remove-status", READER)
    assert [(r["ori"], r["keys"], r["operator"], r["reason"])
            for r in listed["remove_status"]] == [("NYNLETS00", ["AM"], "jane", "line work")]

    # A switch started again on the same journal still has NY removed.
    await az.close()
    await ny.close()
    await sw.stop()
    await mon.stop()
    sw2, mon2 = await monitored({"api": TOKENS})
    assert sw2.engine.controls.removed == {}  # the fixture's switch does not load it...
    await OperatorConsole(sw2)._load()        # ...serve's does (server/app.py installs it)
    assert sw2.engine.controls.removed == {"NYNLETS00": frozenset({"AM"})}
    audits2, _ = watch(sw2)
    host, port = sw2.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    status, _ = await call(mon2.http_address, "POST", "/api/remove-status", OPERATOR,
                           {"ori": "NYNLETS00", "lift": True, "reason": "done"})
    assert status == 200
    assert (await az.send("AM.AZNLETS20.NY.TXT BACK AGAIN")).ok
    assert "BACK AGAIN" in await ny.receive(5)
    status, answer = await call(mon2.http_address, "POST", "/api/remove-status", OPERATOR,
                                {"ori": "NYNLETS00", "lift": True})
    assert status == 409 and "not on remove status" in answer["error"]
    _, listed = await call(mon2.http_address, "GET", "/api/remove-status", READER)
    assert listed["remove_status"] == []
    assert actions(audits) == [("jane", "success", "remove_status", "line work")]
    assert actions(audits2) == [("jane", "success", "lift_remove_status", "done"),
                                ("jane", "failure", "lift_remove_status", "")]
    assert events[0]["action"] == "remove_status" and events[0]["to"] == "NYNLETS00"
    await az.close()
    await ny.close()


async def test_broadcasts_reach_every_signed_on_terminal(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS})
    audits, _ = watch(sw)
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    status, answer = await call(mon.http_address, "POST", "/api/broadcast", ADMIN,
                                {"kind": "out-of-service", "until": "0300",
                                 "reason": "maintenance"})
    assert status == 200 and answer["to"] == ["AZNLETS20", "NYNLETS00"]
    for c in (az, ny):
        text = await c.receive(5)
        assert text.startswith("SM.NL0000000")
        assert "NLETS TEMPORARILY OUT OF SERVICE UNTIL 0300 UTC" in text
    status, _ = await call(mon.http_address, "POST", "/api/broadcast", ADMIN,
                           {"kind": "in-service"})
    assert status == 200
    for c in (az, ny):
        assert (await c.receive(5)).rstrip().endswith("NLETS IN SERVICE")
    status, answer = await call(mon.http_address, "POST", "/api/broadcast", ADMIN,
                                {"kind": "out-of-service", "until": "2500"})
    assert status == 400 and "HHMM" in answer["error"]
    assert actions(audits) == [("root", "success", "broadcast", "maintenance"),
                               ("root", "success", "broadcast", "")]
    await az.close()
    await ny.close()


def test_broadcast_text_names_the_switch_time_zone() -> None:
    from zoneinfo import ZoneInfo

    july = 1_783_000_000.0  # 2026-07-02
    assert broadcast_text("out-of-service", "0300", ZoneInfo("America/New_York"), july) == (
        "NLETS TEMPORARILY OUT OF SERVICE UNTIL 0300 EDT")
    assert broadcast_text("in-service", None, ZoneInfo("UTC")) == "NLETS IN SERVICE"
    with pytest.raises(ValueError):
        broadcast_text("out-of-service", None, ZoneInfo("UTC"))


# -- the intervention queue ----------------------------------------------------------------


async def _held_for_review(sw: Switch, addr: tuple[str, int] | None, az: Client,
                           text: str) -> dict[str, Any]:
    assert (await az.send(text)).ok
    await sw.journal.barrier()
    status, q = await call(addr, "GET", "/api/queue", READER)
    assert status == 200
    return dict(q["queue"][-1])


async def test_a_held_message_is_released_after_review(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS, "intervention": RULES})
    audits, events = watch(sw)
    addr = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    item = await _held_for_review(sw, addr, az, "AM.AZNLETS20.NY.TXT PLEASE CALL")
    assert item["key"] == "AM" and item["to"] == "NY" and item["state"] == "review"
    assert "text" not in item
    assert await ny.drain(0.3) == []  # NY is signed on, but the message waits
    assert await az.drain(0.1) == []  # no SM: the sender's message is in custody
    status, one = await call(addr, "GET", f"/api/queue/{item['id']}", READER)
    assert one["text_withheld"] is True and "PLEASE" not in str(one)
    status, one = await call(addr, "GET", f"/api/queue/{item['id']}", OPERATOR)
    assert "PLEASE CALL" in one["text"]
    status, _ = await call(addr, "POST", f"/api/queue/{item['id']}/release", OPERATOR,
                           {"reason": "looked fine"})
    assert status == 200
    assert "PLEASE CALL" in await ny.receive(5)
    status, again = await call(addr, "POST", f"/api/queue/{item['id']}/release", OPERATOR, {})
    assert "already acted on" in again["error"]
    assert status == 409
    await sw.journal.barrier()
    _, q = await call(addr, "GET", "/api/queue", READER)
    assert q["count"] == 0
    _, log = await call(addr, "GET", f"/api/messages/{item['msg_id']}", READER)
    assert [d["state"] for d in log["deliveries"]] == ["released", "acked"]
    assert actions(audits) == [("jane", "success", "release", "looked fine"),
                               ("jane", "failure", "release", "")]
    assert [e["action"] for e in events] == ["release"]
    assert events[0]["operator"] == "jane" and "text" not in events[0]
    await az.close()
    await ny.close()


async def test_an_edit_is_kept_beside_the_original_and_delivered(
        monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS, "intervention": RULES})
    audits, _ = watch(sw)
    addr = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    item = await _held_for_review(sw, addr, az, "AM.AZNLETS20.NY.TXT MEET AT 1O00")
    status, answer = await call(addr, "POST", f"/api/queue/{item['id']}/edit", OPERATOR,
                                {"text": "MEET AT 1000", "reason": "typo"})
    assert status == 200
    edited = answer["edited_msg_id"]
    await sw.journal.barrier()
    _, q = await call(addr, "GET", "/api/queue", READER)
    assert [(i["msg_id"], i["state"]) for i in q["queue"]] == [(edited, "review")]
    assert await ny.drain(0.3) == []  # an edit is reviewed again before it goes
    status, _ = await call(addr, "POST", f"/api/queue/{q['queue'][0]['id']}/release",
                           OPERATOR, {})
    got = await ny.receive(5)
    assert "MEET AT 1000" in got and "1O00" not in got and got.startswith("AM.AZNLETS20")
    _, orig = await call(addr, "GET", f"/api/messages/{item['msg_id']}", OFFICER)
    assert orig["text"] == "AM.AZNLETS20.NY.TXT MEET AT 1O00"
    _, new = await call(addr, "GET", f"/api/messages/{edited}", OFFICER)
    assert new["text"] == "AM.AZNLETS20.NY.TXT MEET AT 1000"
    _, shown = await call(addr, "GET", f"/api/queue/{item['id']}", READER)
    assert [e["msg_id"] for e in shown["edits"]] == [edited]
    assert actions(audits) == [("jane", "success", "edit", "typo"),
                               ("jane", "success", "release", "")]
    await az.close()
    await ny.close()


async def test_reroute_and_purge_from_the_queue(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS, "intervention": RULES})
    audits, _ = watch(sw)
    addr = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    agency = await Client.connect(host, port, "AZ0070500")
    first = await _held_for_review(sw, addr, az, "AM.AZNLETS20.NY.TXT FOR THE AGENCY")
    status, answer = await call(addr, "POST", f"/api/queue/{first['id']}/reroute", BLIND,
                                {"to": "XX0000000"})
    assert status == 409 and "unknown destination" in answer["error"]
    status, _ = await call(addr, "POST", f"/api/queue/{first['id']}/reroute", BLIND,
                           {"to": "az0070500", "reason": "wrong state"})
    assert status == 200
    got = await agency.receive(5)
    assert "FOR THE AGENCY" in got and "AZ0070500" in got.splitlines()[2]
    second = await _held_for_review(sw, addr, ny, "AM.NYNLETS00.AZ.TXT CONTRABAND LIST")
    status, answer = await call(addr, "POST", f"/api/queue/{second['id']}/purge", BLIND, {})
    assert status == 400 and "reason" in answer["error"]
    status, _ = await call(addr, "POST", f"/api/queue/{second['id']}/purge", BLIND,
                           {"reason": "not for the wire"})
    assert status == 200
    sm = await ny.receive(5)
    assert ".04. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD" in sm
    assert "DESTINATION: AZ" in sm
    assert await az.drain(0.3) == []
    # ICE LESC (AX) takes IAQ, GPQ and AM: a DQ is not rerouted there (SM .01.'s rule).
    third = await _held_for_review(sw, addr, az, "DQ.AZNLETS20.NY.TXT OLN/CONTRABAND")
    status, answer = await call(addr, "POST", f"/api/queue/{third['id']}/reroute", BLIND,
                                {"to": "AX"})
    assert status == 409 and answer["error"] == "AX does not take DQ"
    assert actions(audits) == [("night", "failure", "reroute", ""),
                               ("night", "success", "reroute", "wrong state"),
                               ("night", "success", "purge", "not for the wire"),
                               ("night", "failure", "reroute", "")]
    for c in (az, ny, agency):
        await c.close()


# -- held queues ----------------------------------------------------------------------------


async def test_held_queue_purge_reroute_and_resend(monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS})
    audits, _ = watch(sw)
    addr = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    for i in range(3):  # NY is not signed on: held (SM .02.)
        assert (await az.send(f"AM.AZNLETS20.NY.TXT HELD {i}")).ok
        assert ".02." in await az.receive(5)
    await sw.journal.barrier()
    _, held = await call(addr, "GET", "/api/held/NYNLETS00", READER)
    assert held["count"] == 3 and "text" not in held["held"][0]
    one = held["held"][0]["id"]
    agency = await Client.connect(host, port, "AZ0070500")
    status, _ = await call(addr, "POST", f"/api/deliveries/{one}/reroute", OPERATOR,
                           {"to": "AZ0070500"})
    assert status == 200
    assert "HELD 0" in await agency.receive(5)
    status, answer = await call(addr, "POST", "/api/held/NYNLETS00/purge", OPERATOR,
                                {"reason": "stale"})
    assert status == 200 and len(answer["deliveries"]) == 2
    sms = [await az.receive(5) for _ in range(2)]
    assert all(".04." in s and "DESTINATION: NY" in s for s in sms)
    await sw.journal.barrier()
    _, held = await call(addr, "GET", "/api/held/NYNLETS00", READER)
    assert held["count"] == 0
    ny = await Client.connect(host, port, "NYNLETS00")
    assert await ny.drain(0.3) == []  # nothing purged comes back at sign-on
    # A signed-on link's queue is on its way: not touched.
    assert (await az.send("AM.AZNLETS20.NY.TXT DELIVERED ONCE")).ok
    assert "DELIVERED ONCE" in await ny.receive(5)
    await sw.journal.barrier()
    _, found = await call(addr, "GET", "/api/messages?key=AM&ori=NYNLETS00&limit=1", READER)
    msg_id = found["messages"][0]["id"]
    status, answer = await call(addr, "POST", f"/api/messages/{msg_id}/resend", OPERATOR,
                                {"reason": "terminal lost it"})
    assert status == 200
    assert "DELIVERED ONCE" in await ny.receive(5)
    status, _ = await call(addr, "POST", "/api/messages/999999/resend", OPERATOR, {})
    assert status == 404
    assert actions(audits) == [("jane", "success", "reroute", ""),
                               ("jane", "success", "purge", "stale"),
                               ("jane", "success", "resend", "terminal lost it")]
    for c in (az, ny, agency):
        await c.close()


async def test_the_switch_keeps_the_charts_last_hour(monitored: MonitoredFactory) -> None:
    import asyncio

    sw, mon = await monitored()
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    for i in range(5):
        assert (await az.send(f"DQ.AZNLETS20.NY.TXT OLN/A{i:07d}")).ok
        await ny.receive(5)
    assert (await az.send("ZZ.AZNLETS20.NY.TXT NOT A KEY")).ok  # an ER
    for _ in range(100):  # until the snapshots after the traffic are in
        status, h = await call(mon.http_address, "GET", "/dashboard/history.json")
        assert status == 200
        if sum(h["keys"].get("DQ", [0])) > 0 and sum(h["er"]) > 0:
            break
        await asyncio.sleep(0.1)
    assert len(h["t"]) >= 2 and h["t"] == sorted(h["t"])
    assert sum(h["keys"]["DQ"]) > 0 and sum(h["er"]) > 0
    assert any(v is not None and v > 0 for v in h["p99"])
    assert "OLN" not in str(h)
    await az.close()
    await ny.close()


async def test_serve_loads_the_remove_status_kept_in_the_journal(tmp_path: Any) -> None:
    from nlets_switch.config import with_overrides
    from nlets_switch.server.app import build_switch
    from nlets_switch.store import console as store
    from nlets_switch.store import journal

    cfg = with_overrides(config_from_dict({}), ["127.0.0.1:0"], str(tmp_path / "data"))
    first = await build_switch(cfg)
    await first.start()
    await first.stop()
    conn = journal.connect(first.journal.path)
    store.save_removed(conn, "NYNLETS00", None, 0.0, "jane", "storm")
    conn.close()
    sw = await build_switch(cfg)
    await sw.start()
    try:
        assert sw.engine.controls.removed == {"NYNLETS00": None}
        host, port = sw.addresses[0]
        az = await Client.connect(host, port, "AZNLETS20")
        assert (await az.send("DQ.AZNLETS20.NY.TXT OLN/A1234567")).ok
        assert ".04." in await az.receive(5)
        await az.close()
    finally:
        await sw.stop()


async def test_a_held_queue_is_released_per_delivery_and_per_destination(
        monitored: MonitoredFactory) -> None:
    sw, mon = await monitored({"api": TOKENS, "intervention": {"rules": [
        {"name": "watch-word", "text": "CONTRABAND"}]}})
    audits, events = watch(sw)
    addr = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT PLAIN OWED")).ok
    assert ".02." in await az.receive(5)  # NY is not signed on: owed, SM .02.
    for word in ("ONE", "TWO"):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT CONTRABAND {word}")).ok
    assert await az.drain(0.2) == []  # held for review: custody's A, no SM
    await sw.journal.barrier()
    # What is held for New York: the owed delivery and the two held for review.
    _, held = await call(addr, "GET", "/api/held/NYNLETS00", READER)
    assert [h["state"] for h in held["held"]] == ["held", "review", "review"]
    owed, one, two = (h["id"] for h in held["held"])
    status, answer = await call(addr, "POST", "/api/held/NYNLETS00/release", READER, {})
    assert status == 403 and "needs a token with operate" in answer["error"]
    # The owed one has nothing to release: it goes when NY signs on.
    status, answer = await call(addr, "POST", f"/api/deliveries/{owed}/release", OPERATOR, {})
    assert status == 409
    assert answer["error"] == ("nothing is held for review; 1 delivery wait for NYNLETS00 to "
                               "sign on and go then")
    # Released while NY is away: it stays owed to NY.
    status, answer = await call(addr, "POST", f"/api/deliveries/{one}/release", OPERATOR,
                                {"reason": "looked fine"})
    assert status == 200
    assert (answer["released"], answer["delivered"], answer["owed"]) == ([one], [], [])
    ny = await Client.connect(host, port, "NYNLETS00")
    got = [await ny.receive(5), await ny.receive(5)]
    assert "PLAIN OWED" in got[0] and "CONTRABAND ONE" in got[1]
    # Not to a destination on remove status for the key.
    status, _ = await call(addr, "POST", "/api/remove-status", OPERATOR,
                           {"ori": "NYNLETS00", "keys": ["AM"], "reason": "line work"})
    assert status == 200
    status, answer = await call(addr, "POST", "/api/held/NYNLETS00/release", OPERATOR, {})
    assert status == 409 and "on remove status: NYNLETS00 AM" in answer["error"]
    status, answer = await call(addr, "POST", f"/api/deliveries/{two}/reroute", OPERATOR,
                                {"to": "NY"})
    assert status == 409 and answer["error"] == "NY is on remove status for AM"
    await call(addr, "POST", "/api/remove-status", OPERATOR, {"ori": "NYNLETS00", "lift": True})
    # NY is signed on now: the rest goes at once.
    status, answer = await call(addr, "POST", "/api/held/NYNLETS00/release", OPERATOR,
                                {"reason": "cleared"})
    assert status == 200 and answer["delivered"] == [two] == answer["deliveries"]
    assert "CONTRABAND TWO" in await ny.receive(5)
    await sw.journal.barrier()
    status, answer = await call(addr, "POST", "/api/held/NYNLETS00/release", OPERATOR, {})
    assert status == 404 and answer["error"] == "nothing is held for NYNLETS00"
    _, log = await call(addr, "GET", f"/api/messages/{held['held'][1]['msg_id']}", READER)
    assert [d["state"] for d in log["deliveries"]] == ["released", "acked"]
    assert [a for a in actions(audits) if a[2] == "release"] == [
        ("ops", "denied", "release", ""), ("jane", "failure", "release", ""),
        ("jane", "success", "release", "looked fine"), ("jane", "failure", "release", ""),
        ("jane", "success", "release", "cleared")]
    assert ("jane", "failure", "reroute", "") in actions(audits)
    releases = [e for e in events if e["action"] == "release"]
    assert [(e["operator"], e["deliveries"]) for e in releases] == [("jane", [one]),
                                                                   ("jane", [two])]
    await az.close()
    await ny.close()
