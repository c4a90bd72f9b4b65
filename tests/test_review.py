"""Review of the switch against PROTOCOL.md: rules no other test covers, and deviations found.

The review found three deviations, fixed since and kept here as tests: the
sign-off's A went out before the A of earlier messages, an ER .19. for a
malformed destination lost the control field, and a replaced responder link
woke the in-process standby.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from nlets_switch.tools.client import Client
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import SERVICE_CREDENTIAL, ClientFactory, SwitchFactory
from tests.conftest_security import raw_link, read_frames, read_to_close, signed_on, still_serving

# -- sign-on (part 1) ----------------------------------------------------------------


@pytest.mark.parametrize("body", [b"AZNLETS20X", b"AZNLETS20SECRET", b"AZNLETS2", b"AZNLETS20\x00"])
async def test_sign_on_body_that_is_not_ori_space_credential_is_rejected(
        make_switch: SwitchFactory, body: bytes) -> None:
    """Part 1: the body is the 9-character ORI, optionally a space and a credential."""
    sw = await make_switch()
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 3, body))
    got = await read_to_close(r)
    assert [(f.letter, f.seq, f.body) for f in got] == [("N", 3, b".01. SIGN-ON REJECTED")]
    assert "AZNLETS20" not in sw.links
    w.close()


async def test_second_sign_on_on_a_signed_on_link_gets_n_and_link_is_kept(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    r, w = await signed_on(sw, "AZ0070500")
    w.write(fr.encode_frame(fr.SIGN_ON, 9, b"AZNLETS20"))
    [f] = await read_frames(r)
    assert (f.letter, f.seq) == ("N", 9) and f.body.startswith(b".01.")
    # Still signed on as the first ORI, and it still takes traffic.
    assert "AZNLETS20" not in sw.links
    ny = await connect(sw, "NYNLETS00")
    assert (await ny.send("AM.NYNLETS00.AZ0070500.TXT STILL YOURS")).ok
    [m] = await read_frames(r)
    assert m.letter == "M" and parse_output(m.body.decode()).receiver == "AZ0070500"
    w.close()


# -- window and redelivery (part 1) ----------------------------------------------------


async def test_default_window_is_32(make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00", auto_ack=False)
    answers = await asyncio.gather(*(az.send_nowait(f"AM.AZNLETS20.NY.TXT N{i}")
                                     for i in range(40)))
    assert all(a.ok for a in answers)
    await asyncio.sleep(0.3)
    assert ny.inbox.qsize() == 32


async def test_new_sign_on_takes_over_what_was_outstanding_on_the_old_link_in_order(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """Part 1: the old link is closed, and what it had not acknowledged goes to the new one."""
    sw = await make_switch({"limits": {"window": 3}})
    old = await connect(sw, "NYNLETS00", auto_ack=False)
    az = await connect(sw, "AZNLETS20")
    for i in range(6):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT MSG {i}")).ok
    await asyncio.sleep(0.2)
    assert old.inbox.qsize() == 3  # outstanding on the old link, never acknowledged
    new = await connect(sw, "NYNLETS00")
    await asyncio.wait_for(old.closed.wait(), 3)
    got = [parse_output(await new.receive()) for _ in range(6)]
    assert [g.text for g in got] == [f"MSG {i}" for i in range(6)]
    assert [g.output_no for g in got] == [1, 2, 3, 4, 5, 6]
    assert await new.drain(0.2) == []


async def test_sign_off_with_outstanding_messages_keeps_them_for_the_next_sign_on(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    r, w = await signed_on(sw, "NYNLETS00")
    assert (await az.send("AM.AZNLETS20.NY.TXT OWED")).ok
    [m] = await read_frames(r)
    assert m.letter == "M"
    w.write(fr.encode_frame(fr.SIGN_OFF, 2))  # sign off without acknowledging the M
    got = await read_to_close(r)
    assert [(f.letter, f.seq) for f in got] == [("A", 2)]
    ny = await connect(sw, "NYNLETS00")
    again = await ny.receive()
    assert again == m.body.decode()  # byte for byte the same: same numbers


async def test_sign_off_answers_earlier_messages_before_the_sign_off(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    r, w = await signed_on(sw, "AZNLETS20")
    w.write(fr.encode_frame(fr.MESSAGE, 2, b"AM.AZNLETS20.AZ0070500.TXT LAST WORDS")
            + fr.encode_frame(fr.SIGN_OFF, 3))
    got = await read_to_close(r)
    assert [(f.letter, f.seq) for f in got if f.letter != "M"] == [("A", 2), ("A", 3)]


# -- output numbers (part 3) --------------------------------------------------------------


async def test_output_numbers_wrap_after_99999_per_receiving_link(
        make_switch: SwitchFactory, connect: ClientFactory, tmp_path: Path) -> None:
    data = tmp_path / "wrap"
    sw = await make_switch(data_dir=data)
    await sw.stop()
    conn = sqlite3.connect(data / "journal.sqlite")
    with conn:
        conn.executemany("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)",
                         [("out:NYNLETS00", 99_998), ("in:AZNLETS20", 99_999)])
    conn.close()
    sw = await make_switch(data_dir=data)
    ny = await connect(sw, "NYNLETS00")
    ag = await connect(sw, "AZ0070500")
    az = await connect(sw, "AZNLETS20")
    for _ in range(2):
        assert (await az.send("AM.AZNLETS20.NY,AZ0070500.TXT WRAP")).ok
    to_ny = [parse_output(await ny.receive()) for _ in range(2)]
    to_ag = [parse_output(await ag.receive()) for _ in range(2)]
    assert [(o.input_no, o.output_no) for o in to_ny] == [(1, 99_999), (2, 1)]
    assert [o.output_no for o in to_ag] == [1, 2]  # another receiving link counts apart
    assert "00001 NYNLETS00" in to_ny[1].format().split("\n")[2]


# -- destination limits per key (part 2) ------------------------------------------------------


@pytest.mark.parametrize(("msg", "code"), [
    ("AM.AZNLETS20.NY,TX,CA,NV,UT,CO.TXT HI", ".01."),               # AM at most 5
    ("RQ.AZNLETS20.NY,TX,CA,NV,UT,CO.TXT\nVIN/1HGCM82633A004352", ".01."),  # RQ at most 5
    ("IQ.AZNLETS20.NY,TX,CA,NV,UT,CO.TXT\nSOC/123456789", ".01."),  # IQ at most 5
    ("IQ.AZNLETS20.NL.TXT\nSOC/123456789", ".02."),                 # IQ: states only
    ("YQ.AZNLETS20.NY0303000,TX0000000,CA0000000,NV0000000.TXT\n"
     "RTY/SL.RNO/1.PRI/U.OCA/1.NIC/A111110000.LIC/ABC123.LIS/NY", ".01."),  # YQ at most 3
    ("FQ.AZNLETS20.NY,TX.TXT\nSID/NY01234567", ".01."),             # FQ exactly one
    ("FQ.AZNLETS20.NY0303000.TXT\nSID/NY01234567", ".02."),         # FQ: a state
    ("KQ.AZNLETS20.NY0303000.TXT\nOLN/D1", ".02."),                 # KQ: a state
    ("LQ.AZNLETS20.NY,TX.TXT\nANY NEWS", ".01."),                   # LQ exactly one
    ("DR.NYNLETS00.AZNLETS20,AZ0070500.TXT\nNO RECORD", ".01."),    # response: exactly one
    ("DR.NYNLETS00.AZ.TXT\nNO RECORD", ".02."),                     # response: an ORI
    ("RR.NYNLETS00.NLNLEHELP.TXT\nNO RECORD", ".02."),              # response: an ORI
])
async def test_destination_limits_per_key(make_switch: SwitchFactory, connect: ClientFactory,
                                          msg: str, code: str) -> None:
    sw = await make_switch()
    origin = msg.split(".")[1]
    c = await connect(sw, origin)
    assert (await c.send(msg)).ok  # well framed: A, then the ER (part 1)
    er = parse_output(await c.receive())
    assert (er.key, er.sender) == ("ER", "NL0000000")
    assert er.text.startswith(code), er.text.split("\n")[0]


async def test_lq_to_one_ori_and_response_to_one_ori_are_routed(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    assert (await az.send("LQ.AZNLETS20.NY0303000.*L1.TXT\nANY NEWS ON CASE 12.")).ok
    lq = parse_output(await ny.receive())
    # Free text: not edited, may end with a period; line 3 names the ORI as addressed.
    assert (lq.key, lq.receiver, lq.control, lq.text) == (
        "LQ", "NY0303000", "L1", "ANY NEWS ON CASE 12.")
    assert (await ny.send("LR.NY0303000.AZNLETS20.*L1.TXT\nNONE")).ok
    lr = parse_output(await az.receive())
    assert (lr.key, lr.sender, lr.receiver, lr.control) == ("LR", "NY0303000", "AZNLETS20", "L1")


# -- text (part 2) ----------------------------------------------------------------------------


async def test_field_text_ending_with_a_period_gets_er_22(make_switch: SwitchFactory,
                                                         connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    assert (await az.send("DQ.AZNLETS20.NY.TXT\nOLN/D11111111.")).ok
    er = parse_output(await az.receive())
    assert (er.key, er.text[:5]) == ("ER", ".22. ")
    assert await ny.drain(0.2) == []


async def test_line_breaks_in_text_are_delivered_as_sent(make_switch: SwitchFactory,
                                                         connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT\r\nLINE ONE\r\nLINE TWO\nLINE THREE")).ok
    assert parse_output(await ny.receive()).text == "LINE ONE\r\nLINE TWO\nLINE THREE"


@pytest.mark.parametrize("bad", [b"\x7f", b"\x00", b"\x1b[2J", b"\x80"])
async def test_characters_outside_printable_ascii_get_link_level_n(
        make_switch: SwitchFactory, connect: ClientFactory, bad: bytes) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    ans = await az.send(b"AM.AZNLETS20.NY.TXT BAD " + bad + b" BYTE")
    assert not ans.ok and ans.text.startswith(".02.")
    assert await ny.drain(0.2) == []


# -- control field echo (parts 2 to 4) ------------------------------------------------------------


async def test_sm_and_er_echo_the_control_field(make_switch: SwitchFactory,
                                                connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    await az.send("DQ.AZNLETS20.NY.*S1.TXT\nOLN/D1")            # NY not signed on: SM .04
    await az.send("DQ.AZNLETS20.NY.*E1.TXT\nOLN/D1.ZZZ/1")      # unknown field: ER .22
    await az.send("AM.AZNLETS20.ZZ.*E2.TXT HI")                 # unknown state: ER .19
    got = [parse_output(await az.receive()) for _ in range(3)]
    assert sorted((g.key, g.control) for g in got) == [("ER", "E1"), ("ER", "E2"), ("SM", "S1")]


async def test_er_for_a_malformed_destination_echoes_the_control_field(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    await az.send("AM.AZNLETS20.N1,NY.*Q7.TXT HI")
    er = parse_output(await az.receive())
    assert er.text.startswith(".19.")
    assert er.control == "Q7"


# -- responders replaced by a new sign-on (part 1) ------------------------------------------


async def test_replacing_a_responder_link_does_not_wake_the_in_process_standby(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch(build=True)
    az = await connect(sw, "AZNLETS20")
    # An out-of-process TX responder (a service ORI: it signs on with the service credential).
    r1, w1 = await signed_on(sw, "TXNLETS00", credential=SERVICE_CREDENTIAL)
    assert sw.links["TXNLETS00"].kind == "tcp"
    assert (await az.send("DQ.AZNLETS20.TX.*R1.TXT\nOLN/D11111111")).ok
    [m] = await read_frames(r1)
    assert m.letter == "M"  # outstanding, never acknowledged
    # A new responder replaces it.
    r2, w2 = await signed_on(sw, "TXNLETS00", credential=SERVICE_CREDENTIAL)
    [again] = await read_frames(r2)
    assert again.body == m.body
    assert sw.links["TXNLETS00"].kind == "tcp"
    # Nobody but the new responder may answer; it has not.
    assert await az.drain(0.5) == []
    w1.close()
    w2.close()


# -- robustness -------------------------------------------------------------------------------


async def test_odd_but_well_framed_frames_do_not_disturb_the_link(
        make_switch: SwitchFactory) -> None:
    """A and N for frames never sent, bodies on H, binary in N: ignored or answered."""
    sw = await make_switch()
    r, w = await signed_on(sw, "AZNLETS20")
    w.write(fr.encode_frame(fr.ACK, 12345)
            + fr.encode_frame(fr.NAK, 0xFFFFFFFF, b"\xff\x00\xfe")
            + fr.encode_frame(fr.ACK, 7, b"\x80" * 100)
            + fr.encode_frame(fr.HEARTBEAT, 0, b"BODY ON H")
            + fr.encode_frame(fr.MESSAGE, 8, b"")
            + fr.encode_frame(fr.MESSAGE, 9, b"TXT"))
    got = await read_frames(r, 5)
    assert sorted((f.letter, f.seq) for f in got) == [
        ("A", 8), ("A", 9), ("H", 0), ("M", 1), ("M", 2)]
    ers = [parse_output(f.body.decode()) for f in got if f.letter == "M"]
    assert {e.text.split("\n")[0][:4] for e in ers} <= {".01.", ".03."}
    await still_serving(sw)
    w.close()


async def test_peer_that_vanishes_mid_frame_leaves_the_switch_serving(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    _r, w = await signed_on(sw, "AZNLETS20")
    frame = fr.encode_frame(fr.MESSAGE, 2, b"AM.AZNLETS20.NY.TXT CUT SHORT")
    w.write(frame[:12])
    await w.drain()
    w.transport.abort()
    for _ in range(50):
        if "AZNLETS20" not in sw.links:
            break
        await asyncio.sleep(0.02)
    assert "AZNLETS20" not in sw.links
    await still_serving(sw)
    host, port = sw.addresses[0]
    c = await Client.connect(host, port, "AZNLETS20")
    assert await c.drain(0.2) == []  # the half frame was never a message
    await c.close()
