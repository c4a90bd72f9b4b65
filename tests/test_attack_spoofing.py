"""Attack class: ORI spoofing (PROTOCOL parts 1, 2 and 8).

A link may send only as the ORI it signed on as, or as one it speaks for (a
state control terminal speaks for its state's ORIs). Any other origin gets
``A`` and ``ER .01.`` back to the link that sent it - never to the ORI it
pretended to be - and nothing is delivered. ORIs served through a control
terminal, the switch's own ORI and unknown ORIs cannot sign on.
"""

from __future__ import annotations

from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_security import raw_link, read_to_close, still_serving

SPOOFS = [
    # (link signed on, origin it claims)
    ("AZ0070500", "AZNLETS20"),   # an agency as its own control terminal
    ("AZ0070500", "AZ0070501"),   # an agency as another agency of its state
    ("AZNLETS20", "NYNLETS00"),   # a control terminal as another state's
    ("AZNLETS20", "NY0303000"),   # ... or as an agency of another state
    ("AZNLETS20", "NL0000000"),   # anyone as the switch itself
    ("AZNLETS20", "VTICE0900"),   # anyone as ICE LESC
    ("NYNLETS00", "AZ0070500"),
]


async def test_spoofed_origin_gets_er_01_on_the_real_link_only(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch()
    links = {o: await connect(sw, o) for o in ("AZNLETS20", "NYNLETS00", "AZ0070500")}
    for link, origin in SPOOFS:
        sender = links[link]
        ans = await sender.send(f"AM.{origin}.AZ,NY.*SPOOF.TXT PRETENDING")
        assert ans.ok
        er = parse_output(await sender.receive())
        assert (er.key, er.sender, er.receiver, er.control) == ("ER", "NL0000000", link,
                                                                "SPOOF")
        assert er.text.split("\n")[:2] == [".01. INVALID HEADER INFORMATION",
                                           f"ORIGIN {origin} NOT ALLOWED ON THIS LINK"]
        for o, c in links.items():
            assert await c.drain(0.05) == [], (link, origin, o)


async def test_a_control_terminal_may_speak_for_its_own_state(make_switch: SwitchFactory,
                                                              connect: ClientFactory) -> None:
    """The rule the spoofing tests rely on: AZ's terminal sends as any AZ ORI (part 2)."""
    sw = await make_switch()
    ny = await connect(sw, "NYNLETS00")
    az = await connect(sw, "AZNLETS20")
    assert (await az.send("AM.AZ0999999.NYNLETS00.TXT FROM AN AZ AGENCY")).ok
    assert parse_output(await ny.receive()).sender == "AZ0999999"


NO_SIGN_ON = [
    "NY0303000",   # served through NY's control terminal (part 8)
    "AZ0999999",   # any other AZ ORI: served through AZ's terminal
    "NL0000000",   # the switch
    "ZZ0000000",   # unknown
    "AZNLETS2",    # 8 characters
    "AZNLETS200",  # 10 characters
    "aznlets20",   # lower case
    "",
]


async def test_sign_on_as_an_ori_that_may_not_sign_on_is_rejected(
        make_switch: SwitchFactory) -> None:
    sw = await make_switch()
    for ori in NO_SIGN_ON:
        r, w = await raw_link(sw)
        w.write(fr.encode_frame(fr.SIGN_ON, 7, ori.encode()))
        got = await read_to_close(r)
        assert [(f.letter, f.seq, f.body) for f in got] == [
            ("N", 7, b".01. SIGN-ON REJECTED")], ori
        w.close()
        assert not sw.online(ori)
    await still_serving(sw)


async def test_rejected_sign_on_does_not_disturb_the_real_link(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    """A failed sign-on for an ORI that is up must not replace or close its live link."""
    from nlets_switch.server.credentials import hash_credential

    sw = await make_switch({"links": [
        {"ori": "AZNLETS20", "role": "control_terminal",
         "credential": hash_credential("right", n=2**10)},
        {"ori": "NYNLETS00", "role": "control_terminal"}]})
    az = await connect(sw, "AZNLETS20", credential="right")
    ny = await connect(sw, "NYNLETS00")
    r, w = await raw_link(sw)
    w.write(fr.encode_frame(fr.SIGN_ON, 1, b"AZNLETS20 wrong"))
    got = await read_to_close(r)
    assert [(f.letter, f.body) for f in got] == [("N", b".01. SIGN-ON REJECTED")]
    w.close()
    assert (await ny.send("AM.NYNLETS00.AZNLETS20.TXT STILL YOURS")).ok
    assert (await az.receive(3)).endswith("STILL YOURS")
