"""Cluster mode: sign-on lock-outs are the cluster's, not a node's (issue 11).

Real ``serve`` nodes on one throwaway PostgreSQL. Before, each node counted
failed sign-ons for itself: a guesser spread over three nodes got three times
``lockout_after`` tries, and ``unlock`` at one node left the others locked.
Now the counts and lock-outs are in the database: guesses spread over two
nodes lock out at the configured limit in all, ``unlock`` at one node lets the
agency in at the other, and an agency at another address still gets in. Each
decision is audited by the node that made it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import psycopg

from nlets_switch.store.postgres import open_pg_store
from nlets_switch.store.postgres_signon import SharedGate
from tests.conftest_serve import Served, serving, sign_on
from tests.test_attack_guessing import REJECTED, secured

pytest_plugins = ["tests.conftest_postgres"]

STRANGER = "127.0.0.2"
AGENCY = "127.0.0.1"
ACCEPTED = ("A", b"NL0000000")


@asynccontextmanager
async def two_nodes(tmp_path: Path, url: str, raw: dict[str, Any]
                    ) -> AsyncIterator[tuple[Served, Served]]:
    """Nodes n1 and n2 of one cluster, with ``raw`` as their configuration."""
    async with AsyncExitStack() as stack:
        nodes = []
        for name in ("n1", "n2"):
            (tmp_path / name).mkdir()
            nodes.append(await stack.enter_async_context(serving(
                tmp_path / name, raw, http=True,
                extra=("--store", url, "--node-id", name))))
        yield nodes[0], nodes[1]


async def attempt(node: Served, body: bytes, host: str) -> tuple[str, bytes] | None:
    f, w = await sign_on(node.port, body, host)
    w.close()
    return None if f is None else (f.letter, f.body)


def audit_rows(url: str, type_: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(node, subject, outcome, detail) of the cluster's audit records of ``type_``."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("SELECT node, subject, outcome, detail FROM audit WHERE type = %s "
                            "ORDER BY ts, id", (type_,)).fetchall()
    return [(str(n), str(s), str(o), json.loads(d)) for n, s, o, d in rows]


async def until_audited(url: str, type_: str, pred: Any, seconds: float = 10.0
                        ) -> list[tuple[str, str, str, dict[str, Any]]]:
    deadline = time.monotonic() + seconds
    while True:
        rows = await asyncio.to_thread(audit_rows, url, type_)
        if pred(rows) or time.monotonic() > deadline:
            return rows
        await asyncio.sleep(0.2)


async def test_guesses_spread_over_two_nodes_lock_out_at_the_limit_in_all(
        tmp_path: Path, pg_url: str) -> None:
    async with two_nodes(tmp_path, pg_url, secured(lockout_after=5)) as (n1, n2):
        # Five wrong guesses in all, alternating between the nodes (3 at n1, 2 at n2):
        # each node alone saw fewer than lockout_after.
        for i in range(5):
            got = await attempt((n1, n2)[i % 2], f"AZNLETS20 guess{i}".encode(), STRANGER)
            assert got == ("N", REJECTED)
        # The stranger is locked out at both nodes, even with the right credential.
        for node in (n1, n2):
            assert await attempt(node, b"AZNLETS20 right-secret", STRANGER) == ("N", REJECTED)
        # The agency, at its own address, still signs on (at either node).
        assert await attempt(n2, b"AZNLETS20 right-secret", AGENCY) == ACCEPTED
        assert await attempt(n1, b"AZNLETS20 right-secret", AGENCY) == ACCEPTED

        # Audited by the node that decided: the lock-out by n1 (the fifth guess),
        # the refusals "locked out" by each node.
        locks = await until_audited(pg_url, "lockout", bool)
        assert [(n, s, d["source"]) for n, s, _, d in locks] == [("n1", "AZNLETS20", STRANGER)]
        signs = await until_audited(
            pg_url, "sign_on",
            lambda r: sum(d.get("reason") == "locked out" for *_, d in r) >= 2)
        assert {n for n, _, _, d in signs if d.get("reason") == "locked out"} == {"n1", "n2"}
        assert sum(d.get("reason") == "bad credential or certificate"
                   for *_, d in signs) == 5
        # Nothing in the shared table or the audit names a credential.
        with psycopg.connect(pg_url, autocommit=True) as conn:
            dump = str(conn.execute("SELECT * FROM signon_failures").fetchall())
            dump += str(conn.execute("SELECT detail FROM audit").fetchall())
        assert "secret" not in dump and "guess" not in dump


async def test_unlock_at_one_node_lets_the_agency_in_at_the_other(
        tmp_path: Path, pg_url: str) -> None:
    raw = secured(lockout_after=3)
    raw["security"]["ori_lockout_after"] = 4
    async with two_nodes(tmp_path, pg_url, raw) as (n1, n2):
        # Four sources guess once each, spread over the nodes: the ORI itself locks.
        for i in range(4):
            got = await attempt((n1, n2)[i % 2], b"AZNLETS20 wrong", f"127.0.0.{10 + i}")
            assert got == ("N", REJECTED)
        assert await attempt(n1, b"AZNLETS20 right-secret", AGENCY) == ("N", REJECTED)
        assert await attempt(n2, b"AZNLETS20 right-secret", AGENCY) == ("N", REJECTED)
        locks = await until_audited(pg_url, "lockout", bool)
        assert [(n, d.get("alert")) for n, *_, d in locks] == [("n2", True)]

        # The operator unlocks at n1; the agency signs on at n2.
        done = n1.cli("unlock", "AZNLETS20", "--http", f"127.0.0.1:{n1.http}")
        assert done.returncode == 0, done.stderr
        assert "1 lock-out(s) lifted" in done.stdout
        assert await attempt(n2, b"AZNLETS20 right-secret", AGENCY) == ACCEPTED
        unlocks = await until_audited(pg_url, "unlock", bool)
        assert [(n, o, d["target"], d["lifted"]) for n, _, o, d in unlocks] == [
            ("n1", "success", "AZNLETS20", ["AZNLETS20"])]

        # A source locked out through n2, unlocked by address at n2, signs on at n1.
        for _ in range(3):
            assert await attempt(n2, b"NYNLETS00 wrong", STRANGER) == ("N", REJECTED)
        assert await attempt(n1, b"NYNLETS00 ny-secret", STRANGER) == ("N", REJECTED)
        listed = n2.cli("unlock", STRANGER, "--http", f"127.0.0.1:{n2.http}")
        assert listed.returncode == 0 and "1 lock-out(s) lifted" in listed.stdout, listed
        assert await attempt(n1, b"NYNLETS00 ny-secret", STRANGER) == ACCEPTED


async def test_parallel_guesses_at_two_nodes_get_at_most_the_limit_checked(
        tmp_path: Path, pg_url: str) -> None:
    # 20 guesses at once, half at each node, the right credential among the last:
    # checks for one ORI are one at a time across the cluster, each failure counted
    # before the next is looked at, so the lock-out comes after exactly 5.
    async with two_nodes(tmp_path, pg_url, secured(lockout_after=5)) as (n1, n2):
        bodies = [f"AZNLETS20 guess{i}".encode() for i in range(18)]
        bodies += [b"AZNLETS20 right-secret"] * 2
        got = await asyncio.gather(*(attempt((n1, n2)[i % 2], b, STRANGER)
                                     for i, b in enumerate(bodies)))
        assert all(g == ("N", REJECTED) for g in got), got
        def refusals(rows: list[tuple[str, str, str, dict[str, Any]]]) -> list[Any]:
            return [d.get("reason") for _, s, o, d in rows
                    if (s, o) == ("AZNLETS20", "failure")]

        signs = await until_audited(
            pg_url, "sign_on", lambda r: len(refusals(r)) >= len(bodies))
        reasons = refusals(signs)
        assert reasons.count("bad credential or certificate") == 5, reasons
        assert reasons.count("locked out") == len(bodies) - 5, reasons


async def test_database_gone_refuses_sign_ons_and_unlocks(
        tmp_path: Path, pg_url: str, pg_server: Any) -> None:
    async with two_nodes(tmp_path, pg_url, secured(lockout_after=5)) as (n1, _n2):
        assert await attempt(n1, b"AZNLETS20 right-secret", AGENCY) == ACCEPTED
        pg_server.stop()
        try:
            # No lock-out can be known to be absent: refused, never accepted.
            assert await attempt(n1, b"AZNLETS20 right-secret", AGENCY) == ("N", REJECTED)
            # Nor can a lock-out be lifted: said so, exit status 1.
            un = await asyncio.to_thread(n1.cli, "unlock", AGENCY, "--http",
                                         f"127.0.0.1:{n1.http}")
            assert un.returncode == 1 and "cannot unlock" in un.stderr, un
        finally:
            pg_server.start()
        # The database back: the node decides again by itself.
        deadline = time.monotonic() + 15
        while (got := await attempt(n1, b"AZNLETS20 right-secret", AGENCY)) != ACCEPTED:
            assert time.monotonic() < deadline, got
            await asyncio.sleep(0.3)
        # Said once, in one line (the audit records of the outage could not be
        # written: the audit trail is in the database too).
        log = (tmp_path / "n1" / "serve.log").read_text()
        assert log.count("sign_on_gate_unreachable") == 1, log
        assert "sign_on_gate_back" in log
        assert "secret" not in log


def test_shared_gate_unlock_and_lockouts(pg_url: str) -> None:
    # The statements on their own, on the migrated database: counts per source
    # and per ORI, the lock-out's end on the database's clock, unlock by address.
    open_pg_store(pg_url).close()  # migrates
    gate = SharedGate(pg_url, "t")
    try:
        wrong = lambda: False  # noqa: E731
        verdicts = [gate.decide("AZNLETS20", "10.0.0.1", 2, 3, 60, wrong) for _ in range(2)]
        assert [(v.ok, v.source_locked) for v in verdicts] == [(False, False), (False, True)]
        assert gate.decide("AZNLETS20", "10.0.0.1", 2, 3, 60, lambda: True).locked == \
            "locked out"
        assert gate.decide("AZNLETS20", "10.0.0.2", 2, 3, 60, wrong).ori_locked
        assert {(r["ori"], r["source"]) for r in gate.lockouts()} == {
            ("AZNLETS20", "10.0.0.1"), ("AZNLETS20", None)}
        assert gate.unlock("10.0.0.1") == ["AZNLETS20@10.0.0.1"]
        assert gate.decide("AZNLETS20", "10.0.0.1", 2, 3, 60, lambda: True).locked == \
            "ori locked out"
        assert gate.unlock("AZNLETS20") == ["AZNLETS20"]
        assert gate.decide("AZNLETS20", "10.0.0.1", 2, 3, 60, lambda: True).ok
        assert gate.lockouts() == []
    finally:
        gate.close()


def test_shared_gate_forgets_counts_that_lock_nothing_past_its_bound(
        pg_url: str, monkeypatch: Any) -> None:
    # Guesses from ever new addresses must not grow the shared table without end
    # (the embedded gate's bound, core/gate.py): past the bound, the counts that
    # lock nothing go; a lock-out in force and the ORI's own count stay.
    from nlets_switch.store import postgres_signon

    open_pg_store(pg_url).close()  # migrates
    monkeypatch.setattr(postgres_signon, "PRUNE_EVERY", 4)
    gate = SharedGate(pg_url, "t")
    gate.max_tracked = 5
    wrong = lambda: False  # noqa: E731

    def source_rows() -> int:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            return int(conn.execute("SELECT count(*) FROM signon_failures "
                                    "WHERE source <> ''").fetchone()[0])

    try:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DELETE FROM signon_failures")
        assert [gate.decide("AZNLETS20", "10.0.0.1", 2, 1000, 60, wrong).source_locked
                for _ in range(2)] == [False, True]
        most = 0
        for i in range(40):
            gate.decide("AZNLETS20", f"10.0.1.{i}", 100, 1000, 60, wrong)
            most = max(most, source_rows())
        # Bounded: at most the bound plus one look's worth of new rows.
        assert most <= 5 + 4 + 1
        assert source_rows() < 40
        # The lock-out in force was kept, and the ORI's count (42 failures) too.
        assert gate.decide("AZNLETS20", "10.0.0.1", 2, 1000, 60, lambda: True).locked == \
            "locked out"
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT failures FROM signon_failures WHERE ori = %s "
                                "AND source = ''", ("AZNLETS20",)).fetchone()[0] == 42
    finally:
        gate.close()
