"""The engine as a cluster node, sans-IO: two engines on one memory store play two nodes,
the test plays the node thread (ownership results in, wake-ups in)."""

from __future__ import annotations

from nlets_switch.core import effects as fx
from nlets_switch.server.credentials import hash_credential
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


# -- sign-on lock-outs shared by the nodes (the store's gate plays the database) -------

SECURED = {
    "links": [{"ori": "AZNLETS20", "role": "control_terminal",
               "credential": hash_credential("right", n=2**4)},
              {"ori": "NYNLETS00", "role": "control_terminal"}],
    "security": {"lockout_after": 3, "lockout_minutes": 10},
}


def secured_node(store: MemoryStore, slot: int) -> World:
    w = World(SECURED, store=store)
    w.engine.join_cluster(slot, STRIDE)
    return w


def test_guesses_at_two_nodes_are_decided_one_at_a_time_against_one_count() -> None:
    store = MemoryStore()
    n1, n2 = secured_node(store, 1), secured_node(store, 2)
    a = [n1.sign_on("AZNLETS20", "10.0.0.9", credential=f"g{i}") for i in range(2)]
    b = [n2.sign_on("AZNLETS20", "10.0.0.9", credential=f"h{i}") for i in range(2)]
    # One decision per ORI at a time on each node: the others wait, unread.
    assert len(n1.decisions) == len(n2.decisions) == 1
    assert a[1].conn.id in n1.paused and b[1].conn.id in n2.paused
    # The decision carries what the database needs, and never the credential in clear
    # anywhere but the check (the credential goes only to scrypt).
    d = n1.decisions[0]
    assert (d.ori, d.source, d.after, d.ori_after, d.lockout_s) == (
        "AZNLETS20", "10.0.0.9", 3, 30, 600.0)
    n1.decide(n1.decisions[0], False)
    n2.decide(n2.decisions[0], False)
    n1.decide(n1.decisions[0], False)  # the third failure in all locks the source
    # n2's waiting attempt is refused unchecked: the source is locked cluster-wide.
    n2.decide(n2.decisions[0], True)
    assert all(p.closed for p in [*a, *b])
    assert [x[0] for x in n1.audits() if x[0] == "lockout"] == ["lockout"]
    assert any(x[2] == "failure" for x in n2.audits() if x[0] == "sign_on")
    # The agency from its own address is let in (once its node holds the ORI).
    agency = n2.sign_on("AZNLETS20", "10.0.0.1", credential="right")
    n2.decide(n2.decisions[0], True)
    c = n2.claims.pop()
    n2.run(n2.engine.claimed(c.token, FREE, n2.now))
    assert agency.take() == [("A", 1, b"NL0000000")]


def test_the_database_gone_refuses_the_sign_on_and_the_next_is_decided() -> None:
    w = secured_node(MemoryStore(), 1)
    one = w.sign_on("AZNLETS20", credential="right")
    two = w.sign_on("AZNLETS20", credential="right")
    w.decide(w.decisions[0], error="OperationalError")
    assert one.take() == [("N", 1, b".01. SIGN-ON REJECTED")] and one.closed
    reasons = [e.to_dict().get("reason") for e in w.events
               if e.to_dict().get("type") == "sign_on"]
    assert "database unreachable" in reasons
    # The attempt that waited is decided next (the database is back).
    w.decide(w.decisions[0], True)
    c = w.claims.pop()
    w.run(w.engine.claimed(c.token, FREE, w.now))
    assert two.take() == [("A", 1, b"NL0000000")]


def test_unlocked_by_another_node_is_audited_here() -> None:
    w = secured_node(MemoryStore(), 1)
    w.run(w.engine.unlocked("AZNLETS20", ["AZNLETS20@10.0.0.9"], w.now, by="ops"))
    w.run(w.engine.unlocked("10.0.0.9", [], w.now, by="ops", error="OperationalError"))
    assert [x for x in w.audits() if x[0] == "unlock"] == [
        ("unlock", "AZNLETS20", "success"), ("unlock", "", "failure")]
