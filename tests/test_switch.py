"""The switch end to end over real sockets on 127.0.0.1 (PROTOCOL parts 1 to 4 and 8)."""

from __future__ import annotations

import asyncio
import struct

import pytest

from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import raw_link, read_frames

TIME = r"\d\d:\d\d \d\d/\d\d/\d{4}"



# -- sign-on (part 1) -----------------------------------------------------------


async def test_sign_on_accepted_with_switch_ori(make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20"))
    [f] = await read_frames(r)
    assert (f.letter, f.seq, f.body) == ("A", 1, b"NL0000000")
    w.close()


@pytest.mark.parametrize("ori", ["ZZ0000000", "NY0303000", "NOTANORI", ""])
async def test_sign_on_refused_and_closed(make_switch: SwitchFactory, ori: str) -> None:
    """Unknown ORIs and ORIs served through a control terminal cannot sign on (part 8)."""
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 5, ori.encode()))
    [f] = await read_frames(r)
    assert (f.letter, f.seq, f.body) == ("N", 5, b".01. SIGN-ON REJECTED")
    assert await r.read() == b""  # closed


async def test_anything_before_sign_on_gets_n_and_close(make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.MESSAGE, 1, b"AM.AZNLETS20.NY.TXT HI"))
    [f] = await read_frames(r)
    assert f.letter == "N" and f.body.startswith(b".01.")
    assert await r.read() == b""


async def test_framing_error_gets_n_invalid_frame_and_close(make_switch: SwitchFactory,
                                                            connect: ClientFactory) -> None:
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20") + struct.pack(">I", 70_000))
    got = await read_frames(r, 2)
    assert [f.letter for f in got] == ["A", "N"]
    assert got[1].body == b".01. INVALID FRAME"
    assert await r.read() == b""
    # The switch keeps serving everyone else.
    ny = await connect(sw, "NYNLETS00")
    assert (await ny.send("AM.NYNLETS00.AZ0070500.TXT STILL HERE")).ok


async def test_sign_on_timeout_closes_the_link(make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": {"signon_timeout": 0.3}})
    r, _w = await raw_link(sw)
    async with asyncio.timeout(3):
        data = await r.read()
        while data and not data.endswith(b"REQUIRED"):
            more = await r.read()
            if not more:
                break
            data += more
    assert b"SIGN-ON REQUIRED" in data


async def test_credential_checked_when_configured(make_switch: SwitchFactory) -> None:
    from nlets_switch.server.credentials import hash_credential

    sw = await make_switch({"links": [
        {"ori": "AZNLETS20", "role": "control_terminal", "credential":
         hash_credential("s3cret", n=2**10)}]})
    host, port = sw.addresses[0]
    with pytest.raises(SignOnError):
        await Client.connect(host, port, "AZNLETS20")
    with pytest.raises(SignOnError):
        await Client.connect(host, port, "AZNLETS20", credential="wrong")
    c = await Client.connect(host, port, "AZNLETS20", credential="s3cret")
    await c.close()


# -- routing (parts 2, 3, 8) ----------------------------------------------------


async def test_am_from_az_to_ny_with_output_header(make_switch: SwitchFactory,
                                                   connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    ans = await az.send("AM.AZNLETS20.NY.TXT HELLO NEW YORK")
    assert ans.ok and ans.text == ""
    text = await ny.receive()
    lines = text.split("\n")
    assert lines[0] == "AM.AZNLETS20"
    assert lines[1][:-6] and lines[1].endswith(" 00001")
    assert lines[2].endswith(" 00001 NYNLETS00")
    assert lines[3:] == ["TXT", "HELLO NEW YORK"]
    import re

    assert re.fullmatch(TIME + r" \d{5}", lines[1])
    assert re.fullmatch(TIME + r" \d{5} NYNLETS00", lines[2])
    assert await az.drain(0.2) == []  # nothing comes back to the sender


async def test_numbers_count_per_link(make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    ag = await connect(sw, "AZ0070500")
    for c, o in ((az, "AZNLETS20"), (az, "AZNLETS20"), (ag, "AZ0070500")):
        assert (await c.send(f"AM.{o}.NY.TXT HI")).ok
    outs = [parse_output(await ny.receive()) for _ in range(3)]
    assert [(o.sender, o.input_no, o.output_no) for o in outs] == [
        ("AZNLETS20", 1, 1), ("AZNLETS20", 2, 2), ("AZ0070500", 1, 3)]


async def test_control_field_echoed_on_line_4(make_switch: SwitchFactory,
                                              connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    await az.send("DQ.AZNLETS20.NY.*Q42.TXT\nOLN/D11111111")
    q = parse_output(await ny.receive())
    assert (q.key, q.control, q.text) == ("DQ", "Q42", "OLN/D11111111")
    # New York answers, addressing the inquirer and repeating the control field.
    assert (await ny.send("DR.NYNLETS00.AZNLETS20.*Q42.TXT\nNAM/SMITH,JOHN")).ok
    r = parse_output(await az.receive())
    assert (r.key, r.sender, r.receiver, r.control) == ("DR", "NYNLETS00", "AZNLETS20", "Q42")


async def test_state_code_and_served_ori_reach_the_control_terminal(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.NY,NY0303000,NY0999999.TXT HI")
    receivers = sorted([parse_output(await ny.receive()).receiver for _ in range(3)])
    # Line 3 names the ORI as addressed, or the terminal's own where a state was addressed.
    assert receivers == ["NY0303000", "NY0999999", "NYNLETS00"]


async def test_agency_signed_on_itself_gets_its_own_traffic(make_switch: SwitchFactory,
                                                            connect: ClientFactory) -> None:
    sw = await make_switch()
    ag = await connect(sw, "AZ0070500")
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00")
    await ny.send("AM.NYNLETS00.AZ0070500.TXT FOR THE AGENCY")
    assert parse_output(await ag.receive()).receiver == "AZ0070500"
    assert await az.drain(0.2) == []


async def test_control_terminal_speaks_for_its_state(make_switch: SwitchFactory,
                                                     connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    await ny.send("AM.NY0303000.AZNLETS20.TXT FROM A NY AGENCY")
    assert parse_output(await az.receive()).sender == "NY0303000"


async def test_origin_the_link_may_not_speak_for_gets_er_01(make_switch: SwitchFactory,
                                                            connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    ag = await connect(sw, "AZ0070500")
    ans = await ag.send("AM.AZNLETS20.NY.TXT SPOOFED")
    assert ans.ok  # well framed: A, then the ER (part 1)
    er = parse_output(await ag.receive())
    assert (er.key, er.sender, er.receiver) == ("ER", "NL0000000", "AZ0070500")
    assert er.text.startswith(".01. INVALID HEADER INFORMATION\n")
    assert await ny.drain(0.2) == []


async def test_several_destinations(make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    ag = await connect(sw, "AZ0070500")
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.NY,AZ0070500.TXT TO BOTH")
    assert parse_output(await ny.receive()).text == "TO BOTH"
    assert parse_output(await ag.receive()).text == "TO BOTH"


# -- ER (part 4) -------------------------------------------------------------------


@pytest.mark.parametrize(("msg", "first", "names"), [
    ("RQ.AZNLETS20.NY.TXT\nLIC/123456.LIT/PC", ".22. INVALID MESSAGE FORMAT", "LIC, LIY, LIT"),
    ("AM.AZNLETS20.NY.HELLO", ".03. TXT NOT FOUND", ""),
    ("ZQ.AZNLETS20.NY.TXT HI", ".01. INVALID HEADER INFORMATION", "ZQ"),
    ("AM.AZNLETS20.ZZ,NY,AB0000000.TXT HI", ".19. INVALID DESTINATION ORIS", "ZZ, AB0000000"),
    ("DQ.AZNLETS20.NY.TXT\nNAM/SMITH,JOHN.DOB/19501301.SEX/M", ".05. DOB INVALID OR MISSING",
     "DOB"),
    ("RQ.AZNLETS20.NY.TXT\nLIC/123456.LIY/20X7.LIT/PC", ".10. A YEAR FIELD IS INVALID OR MISSING",
     "LIY"),
    ("IAQ.AZNLETS20.AX.TXT\nPUR/C.ATN/SGT.NAM/DOE,JOHN.DOB/19800101.SEX/M.CUS/N.OFF/0399",
     ".14. FIELDS MISSING", "PHN, POB"),
    ("KQ.AZNLETS20.NY.TXT\nOLN/D1.PUR/C.ATN/" + "A" * 31, ".16. ATN FIELD INVALID", "ATN"),
    ("DQ.AZNLETS20.NY,AZ,TX,CA,NV,UT.TXT\nOLN/D1", ".01. INVALID HEADER INFORMATION", "5"),
    ("KQ.AZNLETS20.NY,AZ.TXT\nOLN/D1", ".01. INVALID HEADER INFORMATION", "1"),
    ("IQ.AZNLETS20.NY0303000.TXT\nSOC/123456789", ".02. MESSAGE TYPE NOT ALLOWED TO DESTINATION",
     "NY0303000"),
    ("YQ.AZNLETS20.NY.TXT\nRTY/SS.PRI/R.OCA/1.NIC/A111110000", ".02.", "NY"),
    ("IAQ.AZNLETS20.NY.TXT\nPUR/C", ".02.", "NY"),
    ("SM.AZNLETS20.NYNLETS00.TXT\n.02. FAKE STATUS", ".01. INVALID HEADER INFORMATION",
     "ONLY NL0000000 SENDS SM"),
    ("ER.AZNLETS20.NYNLETS00.TXT\n.22. FAKE ERROR", ".01.", "ONLY NL0000000 SENDS ER"),
])
async def test_malformed_messages_get_a_and_the_named_er(
        make_switch: SwitchFactory, connect: ClientFactory, msg: str, first: str,
        names: str) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    ans = await az.send(msg)
    assert ans.ok
    er = parse_output(await az.receive())
    assert (er.key, er.sender, er.receiver) == ("ER", "NL0000000", "AZNLETS20")
    lines = er.text.split("\n")
    assert lines[0].startswith(first)
    assert names in er.text
    i = lines.index("ORIGINAL MESSAGE")
    assert "\n".join(lines[i + 1:]) == msg[:100]


async def test_er_echoes_the_control_field(make_switch: SwitchFactory,
                                           connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    await az.send("RQ.AZNLETS20.NY.*R9.TXT\nLIC/123456")
    assert parse_output(await az.receive()).control == "R9"


@pytest.mark.parametrize(("body", "code"), [
    (b"AM.AZNLETS20.NY.TXT caf\xc3\xa9", b".02."),
    (b"AM.AZNLETS20.NY.TXT TAB\tHERE", b".02."),
    (b"AM.AZNLETS20.NY.TXT " + b"X" * 2000, b".03."),
])
async def test_link_level_n_for_bad_characters_and_oversize(
        make_switch: SwitchFactory, connect: ClientFactory, body: bytes, code: bytes) -> None:
    sw = await make_switch({"limits": {"max_message": 1000}})
    az = await connect(sw, "AZNLETS20")
    ans = await az.send(body)
    assert not ans.ok and ans.text.startswith(code.decode())
    # Not journaled as a message, and the link stays up.
    assert (await az.send("AM.AZNLETS20.AZ0070500.TXT OK")).ok


# -- SM and holding (parts 4 and 8) ---------------------------------------------------


async def test_sm_02_then_delivery_when_ny_signs_on(make_switch: SwitchFactory,
                                                    connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.NY.*H1.TXT FIRST")
    await az.send("AM.AZNLETS20.NY.TXT SECOND")
    sms = [parse_output(await az.receive()) for _ in range(2)]
    assert [s.key for s in sms] == ["SM", "SM"]
    assert sms[0].text.split("\n")[0] == (
        ".02. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL FORWARD")
    assert sms[0].control == "H1" and "DESTINATION: NY" in sms[0].text
    ny = await connect(sw, "NYNLETS00")
    got = [parse_output(await ny.receive()) for _ in range(2)]
    assert [g.text for g in got] == ["FIRST", "SECOND"]


async def test_sm_04_inquiry_to_a_state_not_signed_on(make_switch: SwitchFactory,
                                                      connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    await az.send("DQ.AZNLETS20.NY.TXT\nOLN/D11111111")
    sm = parse_output(await az.receive())
    assert sm.text.startswith(".04. USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD")
    ny = await connect(sw, "NYNLETS00")
    assert await ny.drain(0.3) == []  # dropped, not held


async def test_sm_01_destination_does_not_take_the_key(make_switch: SwitchFactory,
                                                       connect: ClientFactory) -> None:
    sw = await make_switch({"links": [
        {"ori": "AZNLETS20", "role": "control_terminal"},
        {"ori": "NYNLETS00", "role": "control_terminal", "keys": ["AM", "DR"]}]})
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00")
    await az.send("DQ.AZNLETS20.NY.TXT\nOLN/D11111111")
    sm = parse_output(await az.receive())
    assert sm.text.startswith(".01. USER DOES NOT RESPOND TO MSG TYPE, NLETS WILL NOT FORWARD")
    assert await ny.drain(0.2) == []


async def test_hold_expiry_gives_sm_04(make_switch: SwitchFactory,
                                       connect: ClientFactory) -> None:
    sw = await make_switch({"hold": {"AM": {"expire": 1}}})
    sw.expiry_interval = 0.2
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.NY.TXT WILL EXPIRE")
    first = parse_output(await az.receive())
    assert first.text.startswith(".02.")
    second = parse_output(await az.receive(timeout=5))
    assert second.text.startswith(".04.") and "DESTINATION: NY" in second.text
    ny = await connect(sw, "NYNLETS00")
    assert await ny.drain(0.3) == []


async def test_sm_goes_ahead_of_other_traffic(make_switch: SwitchFactory,
                                              connect: ClientFactory) -> None:
    """With a window of 1 and a backlog, an SM overtakes the queued messages."""
    sw = await make_switch({"limits": {"window": 1}})
    az = await connect(sw, "AZNLETS20", auto_ack=False, keep_frames=True)
    ny = await connect(sw, "NYNLETS00")
    for i in range(3):
        await ny.send(f"AM.NYNLETS00.AZNLETS20.TXT BACKLOG {i}")
    await asyncio.sleep(0.2)
    await az.send("DQ.AZNLETS20.CA.TXT\nOLN/D1")  # CA has no link: SM .04
    seen: list[str] = []
    assert az.frames is not None
    while len(seen) < 4:
        f = await asyncio.wait_for(az.frames.get(), 3)
        if f.type == fr.MESSAGE:
            seen.append(parse_output(f.body.decode()).key)
            az.send_frame(fr.ACK, seq=f.seq)
    assert seen == ["AM", "SM", "AM", "AM"]


# -- window, redelivery, replacement (part 1) ------------------------------------------


async def test_window_limits_outstanding_and_unacked_are_redelivered(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch({"limits": {"window": 4}})
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00", auto_ack=False, keep_frames=True)
    for i in range(10):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT MSG {i}")).ok
    await asyncio.sleep(0.3)
    assert ny.inbox.qsize() == 4  # the window: at most 4 outstanding
    await ny.close(sign_off=False)
    ny2 = await connect(sw, "NYNLETS00")
    texts = [parse_output(await ny2.receive()).text for _ in range(10)]
    assert texts == [f"MSG {i}" for i in range(10)]  # all, in order
    # Redelivered bytes carry the same output numbers, so a receiver can drop duplicates.
    assert await ny2.drain(0.2) == []


async def test_new_sign_on_replaces_the_old_link(make_switch: SwitchFactory,
                                                 connect: ClientFactory) -> None:
    sw = await make_switch()
    old = await connect(sw, "NYNLETS00")
    new = await connect(sw, "NYNLETS00")
    await asyncio.wait_for(old.closed.wait(), 3)
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.NY.TXT TO THE NEW LINK")
    assert parse_output(await new.receive()).text == "TO THE NEW LINK"


async def test_sign_off_is_acknowledged_and_closed(make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20") + fr.encode_frame(fr.SIGN_OFF, 2))
    got = await read_frames(r, 2)
    assert [(f.letter, f.seq) for f in got] == [("A", 1), ("A", 2)]
    assert await r.read() == b""
    assert "AZNLETS20" not in sw.links


# -- heartbeats (part 1) -----------------------------------------------------------------


async def test_switch_answers_heartbeat_with_same_seq(make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20") + fr.encode_frame(fr.HEARTBEAT, 77))
    got = await read_frames(r, 2)
    assert [(f.letter, f.seq) for f in got] == [("A", 1), ("H", 77)]
    w.close()


async def test_idle_link_gets_h_and_is_closed_without_answer(make_switch: SwitchFactory) -> None:
    sw = await make_switch({"limits": {"heartbeat_interval": 0.3, "heartbeat_timeout": 0.3}})
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20"))
    got = await read_frames(r, 2, timeout=3)
    assert [f.letter for f in got] == ["A", "H"]
    async with asyncio.timeout(3):
        assert await r.read() == b""  # no answer to H: closed
    assert "AZNLETS20" not in sw.links


async def test_answered_heartbeats_keep_the_link(make_switch: SwitchFactory,
                                                 connect: ClientFactory) -> None:
    sw = await make_switch({"limits": {"heartbeat_interval": 0.2, "heartbeat_timeout": 0.2}})
    az = await connect(sw, "AZNLETS20")  # the client answers H
    await asyncio.sleep(1.2)
    assert not az.closed.is_set()
    assert sw.online("AZNLETS20")


async def test_the_journal_records_a_held_message_life(make_switch: SwitchFactory,
                                                       connect: ClientFactory) -> None:
    """Received, routed, held, sent, acknowledged: every step stays in the journal."""
    import sqlite3

    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.NY.TXT LIFE")
    await az.receive()  # SM .02
    ny = await connect(sw, "NYNLETS00")
    await ny.receive()
    await asyncio.sleep(0.2)
    await sw.journal.barrier()
    await sw.journal.barrier()
    conn = sqlite3.connect(sw.journal.path)
    row = conn.execute(
        "SELECT m.status, d.receiver, d.held, d.state, d.created_at <= d.sent_at, "
        "d.sent_at <= d.done_at FROM messages m JOIN deliveries d ON d.msg_id = m.id "
        "WHERE m.key = 'AM'").fetchone()
    conn.close()
    assert row == ("accepted", "NYNLETS00", 1, "acked", 1, 1)


async def test_a_client_that_does_not_read_holds_the_switch_back(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """Client: past max_inbox unread messages nothing more is acknowledged, so the
    switch's window keeps the rest in the journal; reading lets them come."""
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    ny.max_inbox = 5
    az = await connect(sw, "AZNLETS20")
    for i in range(60):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT M{i}")).ok
    await asyncio.sleep(0.5)
    assert ny.inbox.qsize() == 5 + 32  # what it could take, plus one window
    texts = [parse_output(await ny.receive()).text for _ in range(60)]
    assert texts == [f"M{i}" for i in range(60)]


async def test_an_acknowledged_message_is_not_sent_again_after_a_quick_reconnect(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """The read-back on sign-on sees the A that came just before the link closed."""
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    for i in range(5):
        r, w = await raw_link(sw)
        w.write(fr.encode_frame(fr.SIGN_ON, 1, b"NYNLETS00"))
        assert (await read_frames(r))[0].letter == "A"
        assert (await az.send(f"AM.AZNLETS20.NY.TXT ONCE {i}")).ok
        [m] = await read_frames(r)
        # Acknowledge and sign off in one write, then sign on again at once.
        w.write(fr.encode_frame(fr.ACK, m.seq) + fr.encode_frame(fr.SIGN_OFF, 2))
        await read_frames(r)
        w.close()
        ny = await connect(sw, "NYNLETS00")
        assert await ny.drain(0.3) == []
        await ny.close()


# -- the audit sink (required) and typed events -------------------------------------


def test_a_switch_cannot_be_built_without_an_audit_sink() -> None:
    from nlets_switch.config import demo_config
    from nlets_switch.server.switch import Switch

    with pytest.raises(TypeError, match="audit"):
        Switch(demo_config())  # type: ignore[call-arg]


async def test_sign_ons_reach_the_audit_sink_and_observers_get_typed_events(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    from nlets_switch.core.events import Audit, LinkChanged, MemoryAudit, SwitchEvent

    sw = await make_switch()
    assert isinstance(sw.audit_sink, MemoryAudit)
    seen: list[SwitchEvent] = []
    sw.observers.append(seen.append)
    await connect(sw, "AZNLETS20")
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"ZZ0000000"))
    await read_frames(r)
    w.close()
    kept = [(a.type, a.subject, a.outcome) for a in sw.audit_sink.events]
    assert kept == [("sign_on", "AZNLETS20", "success"), ("sign_on", "ZZ0000000", "failure")]
    assert [e for e in seen if isinstance(e, Audit)] == sw.audit_sink.events
    [up] = [e for e in seen if isinstance(e, LinkChanged)]
    assert (up.ori, up.state, up.kind) == ("AZNLETS20", "online", "tcp")
