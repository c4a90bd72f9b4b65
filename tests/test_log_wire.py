"""NLQ and NFQ to NL: the message log on the wire, each ORI seeing only its own traffic."""

from __future__ import annotations

import re

from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory, SwitchFactory


async def test_nlq_lists_and_nfq_fetches_only_what_the_ori_sent_or_received(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch(build=True)
    az = await connect(sw, "AZNLETS20")
    ag = await connect(sw, "AZ0070500")
    await az.send("AM.AZNLETS20.NY.*SECRET.TXT\nFOR NEW YORK ONLY")
    assert parse_output(await az.receive()).key == "SM"  # NY not signed on: held

    # RAND (issue 13): an automatic acknowledgement, then the NLR.
    rand = "TYP/AM.BEG/200001010000.END/209912312359.FND/FOR NEW YORK"
    await az.send(f"NLQ.AZNLETS20.NL.*L1.TXT\n{rand}")
    ack = parse_output(await az.receive())
    assert (ack.key, ack.sender, ack.control) == ("AM", "NL0000000", "L1")
    assert ack.text.startswith("ACK")
    nlr = parse_output(await az.receive())
    assert (nlr.key, nlr.sender, nlr.receiver, nlr.control) == ("NLR", "NL0000000",
                                                               "AZNLETS20", "L1")
    mid = re.search(r"MID/(\d+)", nlr.text)
    assert mid is not None and " AM AZNLETS20 " in nlr.text

    await az.send(f"NFQ.AZNLETS20.NL.TXT\nMID/{mid[1]}")
    nfr = parse_output(await az.receive())
    assert nfr.key == "NFR" and "FOR NEW YORK ONLY" in nfr.text

    # Another agency of the same state neither finds nor fetches it.
    await ag.send(f"NLQ.AZ0070500.NL.TXT\n{rand}")
    assert parse_output(await ag.receive()).text.startswith("ACK")
    assert "NOT ON FILE" in parse_output(await ag.receive()).text
    await ag.send(f"NFQ.AZ0070500.NL.TXT\nMID/{mid[1]}")
    other = parse_output(await ag.receive())
    assert "NO RECORD" in other.text and "FOR NEW YORK" not in other.text


async def test_nlq_with_the_old_fields_gets_an_er_naming_the_new_ones(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch(build=True)
    az = await connect(sw, "AZNLETS20")
    # Without RAND's mandatory fields: ER .14. naming them, at once.
    await az.send("NLQ.AZNLETS20.NL.TXT\nMKE/DQ.CTL/DQ0001")
    er = parse_output(await az.receive())
    assert er.key == "ER" and er.text.splitlines()[:2] == [
        ".14. FIELDS MISSING", "MISSING: TYP, BEG, END"]
    # With them, an old field still present: ER .22. naming the new ones.
    await az.send("NLQ.AZNLETS20.NL.*O1.TXT\n"
                  "TYP/DQ.BEG/200001010000.END/209912312359.FND/X.LIM/5")
    er = parse_output(await az.receive())
    assert (er.key, er.control) == ("ER", "O1")
    assert er.text.splitlines()[:2] == [
        ".22. INVALID MESSAGE FORMAT",
        "RAND FIELDS ARE TYP BEG END FND OR NAM, AND ORR SRC DST; NOT LIM"]
