"""Attack class: header injection (PROTOCOL parts 2 to 4).

An input header is one line: CR or LF inside the key, origin, destinations
or control field would let a sender forge lines of the output header its
receiver parses (a second sender, a fake ``TXT``). The switch answers every
such message with ``A`` and an ``ER .01. INVALID HEADER INFORMATION`` back
to the sender, and delivers nothing. Control characters anywhere in a
message are a link-level ``N .02.``, and the link stays up. Line breaks in
the text are allowed, and a forged header in the text stays text.
"""

from __future__ import annotations

from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import raw_link, read_to_close, still_serving

ER_01 = ".01. INVALID HEADER INFORMATION"

#: Messages whose header carries a line break; each must get exactly ER .01.
INJECTED = {
    "LF in the key": "A\nM.AZNLETS20.NYNLETS00.TXT HI",
    "CR LF before the origin": "AM.\r\nAZNLETS20.NYNLETS00.TXT HI",
    "LF in the origin": "AM.AZNLETS20\n.NYNLETS00.TXT HI",
    "forged sender line after the origin": "AM.AZNLETS20\nAM.NL0000000.NYNLETS00.TXT HI",
    "CR in the destinations": "AM.AZNLETS20.NYNLETS00\r,AZ0070500.TXT HI",
    "LF in the destinations": "AM.AZNLETS20.NY\nNYNLETS00.TXT HI",
    "LF in the control field": "AM.AZNLETS20.NYNLETS00.*AB\nCD.TXT HI",
    "CR LF in the control field": "AM.AZNLETS20.NYNLETS00.*AB\r\nCD.TXT HI",
    "forged TXT line in the control field": "AM.AZNLETS20.NYNLETS00.*X\nTXT\nFAKE.TXT HI",
    "LF right after the asterisk": "AM.AZNLETS20.NYNLETS00.*\nTXT HI",
    "blank in the control field": "AM.AZNLETS20.NYNLETS00.*A B.TXT HI",
    "control field of 11 characters": "AM.AZNLETS20.NYNLETS00.*ABCDEFGHIJK.TXT HI",
    "empty control field": "AM.AZNLETS20.NYNLETS00.*.TXT HI",
    "blank before the origin": "AM. AZNLETS20.NYNLETS00.TXT HI",
}


async def test_line_breaks_in_header_fields_get_er_01_and_nothing_is_delivered(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    ag = await connect(sw, "AZ0070500")
    az = await connect(sw, "AZNLETS20")
    for name, text in INJECTED.items():
        ans = await az.send(text)
        # Well framed: custody (A), then the ER (part 1).
        assert (ans.ok, ans.text) == (True, ""), name
        er = parse_output(await az.receive())
        assert (er.key, er.sender, er.receiver, er.control) == (
            "ER", "NL0000000", "AZNLETS20", None), name
        lines = er.text.split("\n")
        assert lines[0] == ER_01, name
        # The ER quotes the input after "ORIGINAL MESSAGE" (part 4); the quote is text.
        assert "ORIGINAL MESSAGE" in lines, name
    assert await ny.drain(0.2) == []
    assert await ag.drain(0.05) == []


async def test_no_txt_at_all_is_er_03(make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    az = await connect(sw, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NYNLETS00\nHELLO")).ok
    er = parse_output(await az.receive())
    assert er.text.split("\n")[0] == ".03. TXT NOT FOUND"


CONTROL_CHARS = [b"\x00", b"\x01", b"\x08", b"\x09", b"\x0b", b"\x0c", b"\x1b", b"\x7f",
                 b"\x80", b"\xc3\xa9", b"\xff"]


async def test_control_characters_anywhere_get_n_02_and_the_link_stays(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    for where in ("key", "origin", "destinations", "control", "text"):
        for char in CONTROL_CHARS:
            parts = {"key": b"AM", "origin": b"AZNLETS20", "destinations": b"NYNLETS00",
                     "control": b"*CTL", "text": b"HELLO"}
            parts[where] = parts[where][:1] + char + parts[where][1:]
            body = b".".join([parts["key"], parts["origin"], parts["destinations"],
                              parts["control"], b"TXT " + parts["text"]])
            ans = await az.send(body)
            assert (ans.ok, ans.text) == (False, ".02. INVALID CHARACTERS IN MESSAGE"), body
    # Nothing was taken: no ER, no delivery; and the link still works.
    assert await az.drain(0.1) == []
    assert await ny.drain(0.05) == []
    assert (await az.send("AM.AZNLETS20.NYNLETS00.TXT CLEAN")).ok
    assert (await ny.receive(3)).endswith("CLEAN")
    assert sw.online("AZNLETS20")


async def test_a_forged_header_inside_the_text_stays_text(make_switch: SwitchFactory,
                                                          connect: ClientFactory) -> None:
    """Line breaks are allowed in the text (part 2); the receiver's header is the switch's."""
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    forged = ("\nAM.NL0000000\n00:00 01/01/2000 00001\n00:00 01/01/2000 00001 NYNLETS00\n"
              "TXT\nFORGED")
    assert (await az.send("AM.AZNLETS20.NYNLETS00.*REAL.TXT" + forged)).ok
    out = parse_output(await ny.receive())
    assert (out.key, out.sender, out.receiver, out.control) == ("AM", "AZNLETS20", "NYNLETS00",
                                                                "REAL")
    assert out.text.endswith("TXT\nFORGED")


async def test_control_characters_in_a_sign_on_are_rejected(make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    for body in (b"AZNLETS20\r\n", b"AZNLETS20\x00", b"\nAZNLETS20", b"AZNLETS2\xb0"):
        r, w = await raw_link(sw)
        w.write(fr.encode_frame(fr.SIGN_ON, 3, body))
        got = await read_to_close(r)
        assert [(f.letter, f.seq, f.body) for f in got] == [("N", 3, b".01. SIGN-ON REJECTED")]
        w.close()
    await still_serving(sw)
