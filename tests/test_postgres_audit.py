"""The audit trail and retention of a cluster on PostgreSQL (issue 10): one chain per node,
each verifiable on its own (cut, edited or emptied, it fails and names the node), and
retention pruning messages and each chain from several nodes at once. On a real,
throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
import functools
import threading
from pathlib import Path

import psycopg
import pytest

from nlets_switch.cli import main
from nlets_switch.ops import audit, retention
from nlets_switch.store.base import MessageQuery
from nlets_switch.store.postgres import open_pg_store
from nlets_switch.store.postgres_journal import PostgresJournal
from nlets_switch.store.records import Batch, DeliveryRow, DoneRow, MessageRow

pytest_plugins = ["tests.conftest_postgres"]

KEY = bytes(range(32))


async def _append(j: PostgresJournal, n: int, day: int = 1) -> None:
    for i in range(n):
        # Operations cross to the writer process pickled: partials, no lambdas.
        await j.call(functools.partial(
            audit.append, key=KEY, ts=f"2026-01-{day:02d}T00:00:{i:02d}Z", component="switch",
            type_="sign_on", subject=f"{j.node_id.upper()}NLETS{i:02d}", outcome="success",
            detail={"i": i}))


async def _chains(url: str, days: dict[str, int] | None = None) -> None:
    """Nodes n1 and n2 append at the same time, each through its own journal."""
    loop = asyncio.get_running_loop()
    journals = [PostgresJournal(url, node_id=n) for n in ("n1", "n2")]
    for j in journals:
        j.start(loop)
    try:
        await asyncio.gather(*(_append(j, 20, (days or {}).get(j.node_id, 1))
                               for j in journals))
    finally:
        for j in journals:
            j.close()


async def test_each_node_keeps_a_chain_of_its_own_that_verifies_alone(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    await _chains(pg_url)
    with open_pg_store(pg_url, readonly=True) as store:
        assert store.audit_nodes() == ["n1", "n2"]
        for node in ("n1", "n2"):
            chain = store.for_node(node)
            recs = list(chain.audit_records())
            # Ids count per chain: 1..20 each, with no gap from the other node's appends.
            assert [r.id for r in recs] == list(range(1, 21))
            assert {r.subject[:2] for r in recs} == {node.upper()}
            assert audit.verify(chain, KEY).checked == 20
    keyfile = tmp_path / "audit.key"
    keyfile.write_text(KEY.hex())
    keyfile.chmod(0o600)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"audit:\n  key_file: {keyfile}\n")
    args = ["--store", pg_url, "--config", str(cfg), "--data-dir", str(tmp_path / "d")]
    capsys.readouterr()
    assert main(["audit", "verify", *args]) == 0
    out = capsys.readouterr().out
    assert "node n1: 20 records verified" in out and "node n2: 20 records verified" in out

    # One record of n2's chain changed: n2's chain breaks there, n1's still verifies.
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("UPDATE audit SET outcome = 'failure' WHERE node = 'n2' AND id = 7")
    with open_pg_store(pg_url, readonly=True) as store:
        assert audit.verify(store.for_node("n1"), KEY).ok
        res = audit.verify(store.for_node("n2"), KEY)
        assert not res.ok and res.first_bad_id == 7
    assert main(["audit", "verify", *args]) == 1
    out = capsys.readouterr().out
    assert "node n2: BROKEN at record 7" in out and "node n1: 20 records verified" in out


async def test_a_chain_cut_or_emptied_fails_and_its_ids_are_not_given_again(
        pg_url: str) -> None:
    await _chains(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DELETE FROM audit WHERE node = 'n1' AND id > 17")  # the newest, cut
        c.execute("DELETE FROM audit WHERE node = 'n2'")  # emptied
    with open_pg_store(pg_url, readonly=True) as store:
        for node, first in (("n1", 18), ("n2", 1)):
            res = audit.verify(store.for_node(node), KEY)
            assert not res.ok and res.first_bad_id == first, (node, res)
    j = PostgresJournal(pg_url, node_id="n1")
    j.start(asyncio.get_running_loop())
    try:
        await _append(j, 1)
    finally:
        j.close()
    with open_pg_store(pg_url, readonly=True) as store:
        assert [r.id for r in store.for_node("n1").audit_records()][-1] == 21


async def test_retention_prunes_each_chain_and_the_messages_from_several_nodes(
        pg_url: str) -> None:
    await _chains(pg_url, {"n1": 1, "n2": 5})
    # Old, closed messages, as several nodes wrote them.
    rows = [MessageRow(i, 100.0 + i, "AZNLETS20", "AM", "AZNLETS20", "NY", None, i,
                       "accepted", None, None, 20, f"AM.AZNLETS20.NY.TXT\nOLD {i}")
            for i in range(1, 401)]
    dlv = [DeliveryRow(i, i, "NYNLETS00", "NYNLETS00", "NY", i, 2, "queued", 100.0 + i,
                       9e9, 0) for i in range(1, 401)]
    j = PostgresJournal(pg_url)
    j.start(asyncio.get_running_loop())
    try:
        await j.barrier()
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        # Every delivery acknowledged but the last: message 400 must stay.
        j.write(Batch(messages=rows, deliveries=dlv,
                      done=[DoneRow("acked", 200.0, 150.0, i) for i in range(1, 400)]),
                done.set_result)
        assert await done is None
    finally:
        j.close()

    # Two nodes' retention at once, on their own connections: each message goes once.
    results: list[tuple[str, retention.PruneResult]] = []
    errors: list[BaseException] = []

    def prune(node: str) -> None:
        try:
            with open_pg_store(pg_url, node=node) as store:
                total = None
                while True:
                    p = retention.prune(store, now=10 * 86_400.0 + 1_767_225_600.0,
                                        messages_days=1.0, audit_days=7.0, key=KEY, batch=50)
                    total = p if total is None else retention.PruneResult(
                        total.messages + p.messages, total.deliveries + p.deliveries,
                        total.audit + p.audit)
                    if p.messages == 0:
                        break
                results.append((node, total))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=prune, args=(n,)) for n in ("n1", "n2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sum(p.messages for _, p in results) == 399
    with open_pg_store(pg_url, readonly=True) as store:
        assert [m.id for m in store.find_messages(MessageQuery(limit=None))] == [400]
        # Each node pruned its own chain: n1's records (day 1) are past 7 days, n2's
        # (day 5) are not; both still verify from their anchors.
        n1, n2 = store.for_node("n1"), store.for_node("n2")
        assert list(n1.audit_records()) == [] and n1.audit_anchor() is not None
        assert len(list(n2.audit_records())) == 20 and n2.audit_anchor() is None
        assert audit.verify(n1, KEY).ok and audit.verify(n2, KEY).ok

