"""Random traffic through a live switch: every message gets exactly one A or N,
the switch stays up, and well-formed traffic still flows afterwards."""

from __future__ import annotations

import random

from nlets_switch.wire.message import parse_output
from nlets_switch.wire.schema import load_schemas
from tests.conftest import ClientFactory, SwitchFactory

KEYS = [*sorted(load_schemas()), "ZZ", "dq", "SM", "ER"]
ORIGINS = ["AZNLETS20", "AZ0070500", "NYNLETS00", "NY0303000", "XX0000000", "AZNLETS2"]
DESTS = ["NY", "AZ", "TX", "NL", "AX", "NY0303000", "AZ0070500", "VTICE0900", "NLNLEHELP",
         "AZDMVUPDT", "ZZ", "N1", ""]
TAGS = ["NAM", "DOB", "SEX", "OLN", "LIC", "LIY", "LIT", "VIN", "SOC", "PUR", "ATN", "PHN",
        "POB", "CUS", "OFF", "ARN", "DIN", "MID", "CTL", "RTY", "NIC", "OCA", "PRI", "XYZ"]
VALUES = ["SMITH,JOHN", "19500101", "010150", "19501301", "M", "D11111111", "123456", "2027",
          "PC", "1FTEW1EP5KFA00001", "123456789", "C", "A" * 31, "", "NX", "0399", "Y", "1"]


def random_message(rng: random.Random) -> str:
    if rng.random() < 0.1:  # plain printable garbage
        return "".join(chr(rng.randint(0x20, 0x7E)) for _ in range(rng.randint(0, 60)))
    key = rng.choice(KEYS)
    origin = rng.choice(ORIGINS)
    dests = ",".join(rng.choice(DESTS) for _ in range(rng.choice([1, 1, 1, 2, 3, 6])))
    ctl = rng.choice(["", "", ".*C1", ".*ABCDEFGHIJK", ".*"])
    sep = rng.choice([" ", "\n", "\r\n", ""])
    fields = [f"{rng.choice(TAGS)}/{rng.choice(VALUES)}" for _ in range(rng.randint(0, 5))]
    text = rng.choice([".", ".\n", "\n"]).join(fields)
    if rng.random() < 0.1:
        text += "."
    return f"{key}.{origin}.{dests}{ctl}.TXT{sep}{text}"


async def test_random_messages_each_get_one_answer_and_the_switch_keeps_routing(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    sw = await make_switch({"services": {"leis": {"persons": 200, "delay_s": 0},
                                         "nl": {"gather_s": 0.5}},
                            "limits": {"rate_per_ori": 100000, "rate_burst": 100000}},
                           build=True)
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00")
    rng = random.Random(20261127)
    answers = [await az.send(random_message(rng)) for _ in range(400)]
    assert all(a.ok or a.text.startswith(".") for a in answers)
    assert sum(a.ok for a in answers) > 300  # most are well framed: A, then maybe an ER
    await az.drain(0.5)
    await ny.drain(0.2)
    assert (await az.send("AM.AZNLETS20.NY.*END.TXT STILL ROUTING")).ok
    got = [parse_output(t) for t in await ny.drain(1.0)]
    assert any(g.control == "END" and g.text == "STILL ROUTING" for g in got)
