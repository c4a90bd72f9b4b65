"""The engine as a cluster node, sans-IO: two engines on one memory store play two nodes,
the test plays the node thread (ownership results in, wake-ups in)."""

from __future__ import annotations

from nlets_switch.core import effects as fx
from nlets_switch.store.records import Claim
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from tests.engine_world import MemoryStore, Peer, World

STRIDE = 64
#: What the node thread answers a claim with when the ORI was free.
FREE = Claim(0, 0, {})


def node(store: MemoryStore, slot: int) -> World:
    w = World(store=store)
    w.engine.join_cluster(slot, STRIDE)
    return w


def sign_on(w: World, ori: str, claim: Claim | None = FREE) -> Peer:
    """Sign ``ori`` on at ``w``; the node thread answers its claim with ``claim``."""
    peer = w.sign_on(ori)
    assert [c.ori for c in w.claims] == [ori]  # nothing accepted before the claim
    assert peer.take() == [] and peer.conn.id in w.paused
    c = w.claims.pop()
    w.run(w.engine.claimed(c.token, claim, w.now, "signed on at another node"))
    w.end_turn()
    return peer


def test_a_sign_on_waits_for_its_ori_and_is_refused_when_another_node_keeps_it() -> None:
    store = MemoryStore()
    n1 = node(store, 1)
    ok = sign_on(n1, "AZNLETS20")
    assert [(f[0], f[2]) for f in ok.take()] == [("A", b"NL0000000")]
    refused = sign_on(n1, "NYNLETS00", None)
    frames = refused.take()
    assert frames[0][0] == "N" and b"SIGN-ON REJECTED" in frames[0][2] and refused.closed
    # A second link of the same ORI on the same node needs no claim: it replaces.
    again = n1.sign_on("AZNLETS20")
    assert n1.claims == [] and ok.closed and not again.closed
    assert n1.releases == []  # the node still holds AZ
    n1.send(again, fr.SIGN_OFF)
    assert n1.releases == ["AZNLETS20"]  # no link of AZ here any more: let go


def test_delivery_across_nodes_in_order_without_duplicates() -> None:
    store = MemoryStore()
    n1, n2 = node(store, 1), node(store, 2)
    az = sign_on(n1, "AZNLETS20")
    ny = sign_on(n2, "NYNLETS00")
    local = sign_on(n2, "AZ0070500")
    az.take(), ny.take(), local.take()
    # SM .04 decisions use the cluster's view of who is signed on: before n1 knows
    # that NY is signed on at n2, an inquiry (not held) to NY is refused ...
    n1.message(az, "DQ.AZNLETS20.NY.TXT\nOLN/D10000000")
    assert [parse_output(f.body.decode()).key for f in az.messages()] == ["SM"]
    # ... and once it knows, it is routed.
    n1.engine.elsewhere.add("NYNLETS00")
    for i in range(3):
        n1.message(az, f"DQ.AZNLETS20.NY.TXT\nOLN/D1111111{i}")
    assert az.messages() == []
    assert ny.messages() == []  # made durable at n1: NY's node hears of it by a wake-up
    n2.message(local, "DQ.AZ0070500.NY.TXT\nOLN/D22222222")  # made at NY's own node
    n2.run(n2.engine.woken("NYNLETS00", n2.now))
    n2.end_turn()
    n2.run(n2.engine.woken("NYNLETS00", n2.now))  # again: nothing is sent twice
    n2.end_turn()
    got = n2.ack_all(ny)
    assert got == ["OLN/D22222222", "OLN/D11111110", "OLN/D11111111", "OLN/D11111112"]
    n2.run(n2.engine.woken("NYNLETS00", n2.now))
    n2.end_turn()
    assert ny.messages() == []
    assert store.state_of("OLN/D1111111", "DQ") == ["acked"] * 3
    # Ids never collide: each node hands out its own slot's.
    assert {m.id % STRIDE for m in store.messages.values()} == {1, 2}
    assert all(m.link != "AZNLETS20" or m.id % STRIDE == 1 for m in store.messages.values())


def test_a_node_taking_an_ori_goes_on_above_the_database() -> None:
    store = MemoryStore()
    n1 = node(store, 1)
    az = sign_on(n1, "AZNLETS20", Claim(10_000, 20_000, {"in:AZNLETS20": 41}))
    n1.message(az, "AM.AZNLETS20.NY.TXT\nHELLO")
    (msg,) = [m for m in store.messages.values() if m.link == "AZNLETS20"]
    assert msg.id > 10_000 and msg.id % STRIDE == 1 and msg.input_no == 42
    assert all(d.row.id > 20_000 and d.row.id % STRIDE == 1 for d in store.deliveries.values())


def test_replaced_elsewhere_closes_the_link_and_lets_go() -> None:
    store = MemoryStore()
    n1 = node(store, 1)
    az = sign_on(n1, "AZNLETS20")
    n1.run(n1.engine.replaced_elsewhere("AZNLETS20", n1.now))
    assert az.closed and n1.releases == ["AZNLETS20"]
    assert any(isinstance(e, fx.Log) and e.event == "replaced_by_new_sign_on" for e in n1.logs)
