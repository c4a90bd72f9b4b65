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

    await az.send("NLQ.AZNLETS20.NL.*L1.TXT\nCTL/SECRET")
    nlr = parse_output(await az.receive())
    assert (nlr.key, nlr.sender, nlr.receiver, nlr.control) == ("NLR", "NL0000000",
                                                               "AZNLETS20", "L1")
    mid = re.search(r"MID/(\d+)", nlr.text)
    assert mid is not None and " AM AZNLETS20 " in nlr.text

    await az.send(f"NFQ.AZNLETS20.NL.TXT\nMID/{mid[1]}")
    nfr = parse_output(await az.receive())
    assert nfr.key == "NFR" and "FOR NEW YORK ONLY" in nfr.text

    # Another agency of the same state neither finds nor fetches it.
    await ag.send("NLQ.AZ0070500.NL.TXT\nCTL/SECRET")
    assert "NO RECORD" in parse_output(await ag.receive()).text
    await ag.send(f"NFQ.AZ0070500.NL.TXT\nMID/{mid[1]}")
    other = parse_output(await ag.receive())
    assert "NO RECORD" in other.text and "FOR NEW YORK" not in other.text
