"""The DHS LEIS data in the PostgreSQL store (issue 10: "the help-file and LEIS data live
in the store"), on a real throwaway PostgreSQL (tests/conftest_postgres.py).

Nodes opening the data together build it once; what an agency loads through
one node (``leis load --store``) is found through another (``leis search``, and
the ``AX`` service of whichever node runs it, also after the node that ran it
died); the database's LEIS tables hold nothing in clear; the wrong keyring is
one line, as for the SQLite file.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest

from nlets_switch.cli import main
from nlets_switch.errors import StoreError
from nlets_switch.services.leis import FIXED_DINS, LeisData, LeisKeyError
from nlets_switch.store.keys import load_keyring
from nlets_switch.store.leiscrypt import LeisCipher
from nlets_switch.store.postgres_schema import SCHEMA_VERSION
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.test_cluster import Nodes, _node_rows, _until
from tests.test_leis import GOOD, write
from tests.test_leis_at_rest import _CLEAR_RUN, person_needles

if TYPE_CHECKING:
    from tests.conftest_postgres import PgServer

pytest_plugins = ["tests.conftest_postgres"]

SMALL = 150


def _rows(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as c:
        return c.execute(sql).fetchall()


def test_nodes_opening_together_build_once_and_record_the_build(pg_url: str) -> None:
    gate = threading.Barrier(3)
    opened: list[LeisData] = []
    builds: list[int] = []

    def node() -> None:
        gate.wait()
        data = LeisData.open_url(pg_url, seed=7, persons=SMALL,
                                 progress=lambda done, total: builds.append(done))
        opened.append(data)

    threads = [threading.Thread(target=node) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert len(opened) == 3
        assert sorted(d.built for d in opened) == [False, False, True]
        assert builds[0] == 0 and builds[-1] == SMALL  # one build's progress, once
        assert builds.count(0) == 1
        assert {d.count() for d in opened} == {SMALL + len(FIXED_DINS)}
        meta = dict(_rows(pg_url, "SELECT key, value FROM leis_meta"))
        assert meta["seed"] == "7" and meta["persons"] == str(SMALL)
        assert meta["index"] == opened[0].store.cipher.fingerprint()
        assert _rows(pg_url, "SELECT value FROM meta WHERE name = 'schema_version'") == [
            (str(SCHEMA_VERSION),)]
        # The same answers as the SQLite file gives (docs/leis.md's examples).
        assert opened[1].gpq_text({"NAM": "GARSIA,MARIA", "DOB": "19850312"}) == \
            "DIN/D000000001.NAM/GARCIA,MARIA.DOB/19850312.SEX/F"
        assert opened[2].gpq_text({"ADR": "500 SOUTH CONGRESS AVENUE"}).splitlines() == [
            "DIN/D000000004.NAM/HERNANDEZ,JOSE LUIS.DOB/19900115.SEX/M",
            "DIN/D000000005.NAM/HERNANDEZ,ANA.DOB/19920920.SEX/F"]
    finally:
        for d in opened:
            d.close()


def test_loaded_through_one_node_found_through_another_and_nothing_in_clear(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path / "agency.jsonl", [GOOD])
    common = ["--store", pg_url, "--persons", str(SMALL)]
    # Each "node" its own data directory: the data is the database's, not theirs.
    assert main(["leis", "load", str(file), "--data-dir", str(tmp_path / "n1"), *common]) == 0
    assert "into the LEIS tables of postgresql://" in capsys.readouterr().out
    assert main(["leis", "search", "NAM/MUNOS,PEDRO.DOB/19790101",
                 "--data-dir", str(tmp_path / "n2"), *common]) == 0
    assert capsys.readouterr().out.startswith("DIN/T000000001.NAM/MUNOZ,PEDRO.DOB/19790101")
    assert not (tmp_path / "n1" / "leis.sqlite").exists()
    assert not (tmp_path / "n2" / "leis.sqlite").exists()
    # Loading again replaces: still one T000000001.
    assert main(["leis", "load", str(file), *common]) == 0
    assert _rows(pg_url, "SELECT count(*) FROM leis_person WHERE origin = 'loaded'") == [(1,)]

    # No name, DOB, identifier or address of a loaded or fixed person in any LEIS table.
    dump = b"".join(
        b"|".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode()
                  for v in row)
        for table in ("leis_person", "leis_term", "leis_meta")
        for row in _rows(pg_url, f"SELECT * FROM {table}"))
    assert len(dump) > 10_000
    runs = "\n".join(m.group().decode() for m in _CLEAR_RUN.finditer(dump))
    needles = person_needles(persons=SMALL) | {"MUNOZ,PEDRO", "MUNOS,PEDRO", "19790101",
                                               "087654321", "900331234", "T000000001"}
    assert [n for n in sorted(needles) if n in runs] == []
    assert "GARCIA,MARIA" in needles and "1 TEST ST" not in runs


def test_a_version_5_database_gets_the_leis_tables_and_then_its_data(pg_url: str) -> None:
    from nlets_switch.store.postgres_schema import MIGRATIONS, migrate

    with psycopg.connect(pg_url, autocommit=True) as c:
        for _version, step in MIGRATIONS[:5]:
            step(c)
        c.execute("INSERT INTO meta VALUES ('schema_version', '5')")
        assert c.execute("SELECT to_regclass('leis_person')").fetchone() == (None,)
        assert migrate(c, "test") == (5, SCHEMA_VERSION)
    with LeisData.open_url(pg_url, persons=SMALL) as data:
        assert data.get("D000000003") is not None


def test_a_database_at_the_newest_version_without_the_leis_tables_gets_them(
        pg_url: str) -> None:
    # A development build made version 7 before version 6 existed.
    LeisData.open_url(pg_url, persons=SMALL).close()
    with psycopg.connect(pg_url, autocommit=True) as c:
        c.execute("DROP TABLE leis_meta, leis_person, leis_term")
    with LeisData.open_url(pg_url, persons=SMALL) as data:
        assert data.built and data.get("D000000003") is not None


def test_another_keyring_is_one_line_and_nothing_is_rebuilt(pg_url: str, tmp_path: Path) -> None:
    LeisData.open_url(pg_url, persons=SMALL).close()
    other, _ = load_keyring(tmp_path / "other.keys")
    with pytest.raises(LeisKeyError) as e:
        LeisData.open_url(pg_url, persons=SMALL, keyring=other)
    assert "was sealed under another keyring" in str(e.value)
    assert "DELETE FROM leis_meta" in str(e.value) and "\n" not in str(e.value)
    assert dict(_rows(pg_url, "SELECT key, value FROM leis_meta"))["index"] != \
        LeisCipher(other).fingerprint()


def test_a_database_outage_fails_a_search_in_one_line_and_the_next_one_reconnects(
        pg_server: PgServer, pg_url: str) -> None:
    with LeisData.open_url(pg_url, persons=SMALL) as data:
        assert data.gpq_text({"ARN": "012345678"}).startswith("DIN/D000000002.")
        pg_server.stop()
        try:
            with pytest.raises(StoreError) as e:
                data.gpq_text({"ARN": "012345678"})
            assert "\n" not in str(e.value) and "LEIS tables of postgresql://" in str(e.value)
        finally:
            pg_server.start()
        assert data.gpq_text({"ARN": "012345678"}).startswith("DIN/D000000002.")


async def test_the_ax_service_of_any_node_answers_from_the_shared_data(
        tmp_path: Path, pg_url: str) -> None:
    cluster = Nodes(tmp_path, pg_url)
    try:
        ports = {n: cluster.start(n) for n in ("n1", "n2")}

        def holder() -> str | None:
            for node, (alive, links) in _node_rows(pg_url).items():
                if alive and "VTICE0900" in links:
                    return node
            return None

        await _until(lambda: holder() is not None, 10)
        # The nodes build the default data set (10,000 persons) once, together.
        await _until(lambda: bool(_rows(pg_url, "SELECT 1 FROM leis_meta")), 30)
        file = write(tmp_path / "agency.jsonl", [GOOD])
        load = await asyncio.to_thread(
            subprocess.run, [sys.executable, "-m", "nlets_switch", "leis", "load", str(file),
                             "--store", pg_url, "--data-dir", str(tmp_path / "cli")],
            capture_output=True, text=True, timeout=120)
        assert load.returncode == 0, load.stderr

        async def gpq(node: str) -> str:
            az = await Client.connect("127.0.0.1", ports[node], "AZNLETS20", timeout=5)
            try:
                assert (await az.send("GPQ.AZNLETS20.AX.TXT\nARN/87654321")).ok
                return parse_output(await az.receive(30)).text
            finally:
                await az.close()

        for node in ports:  # through either node, whichever runs AX
            assert (await gpq(node)).startswith("DIN/T000000001.NAM/MUNOZ,PEDRO."), node
        # The node running AX dies: the node taking it over has the agency's person.
        dead = holder()
        assert dead is not None
        cluster.kill(dead)
        survivor = next(n for n in ports if n != dead)
        await _until(lambda: holder() == survivor, 10)
        assert (await gpq(survivor)).startswith("DIN/T000000001.NAM/MUNOZ,PEDRO.")
        # Built once, by the nodes; the command line found it built (no rebuild).
        assert dict(_rows(pg_url, "SELECT key, value FROM leis_meta"))["persons"] == "10000"
    finally:
        cluster.stop_all()


def test_the_command_line_takes_the_size_the_nodes_built_from_the_configuration(
        pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "switch.yaml"
    config.write_text(f"store:\n  url: {pg_url}\nservices:\n  leis:\n    seed: 3\n"
                      f"    persons: {SMALL}\n")
    LeisData.open_url(pg_url, seed=3, persons=SMALL).close()  # as the nodes built it
    file = write(tmp_path / "agency.jsonl", [GOOD])
    assert main(["leis", "load", str(file), "--config", str(config)]) == 0
    assert "loaded 1 person(s)" in capsys.readouterr().out
    meta = dict(_rows(pg_url, "SELECT key, value FROM leis_meta"))
    assert (meta["seed"], meta["persons"]) == ("3", str(SMALL))  # not rebuilt
    assert _rows(pg_url, "SELECT count(*) FROM leis_person") == [(SMALL + len(FIXED_DINS) + 1,)]


def test_a_file_of_the_same_build_is_copied_rather_than_built(
        pg_url: str, tmp_path: Path) -> None:
    file = tmp_path / "cache.sqlite"
    LeisData.open(file, seed=5, persons=SMALL).close()
    calls: list[int] = []
    with LeisData.open_url(pg_url, seed=5, persons=SMALL, copy_from=file,
                           progress=lambda done, total: calls.append(done)) as data:
        assert data.built and calls == []  # copied: nothing generated
        assert data.count() == SMALL + len(FIXED_DINS)
        with LeisData.open(file, seed=5, persons=SMALL) as local:
            for q in ({"NAM": "GARCIA"}, {"ADR": "ST PHOENIX AZ"}, {"DIN": "D100000007"}):
                assert data.gpq_text(q) == local.gpq_text(q)
    other = tmp_path / "other.sqlite"
    LeisData.open(other, seed=6, persons=SMALL).close()
    url2 = pg_url  # another build wanted: the file of seed 6 is not taken for seed 5
    with psycopg.connect(url2, autocommit=True) as c:
        c.execute("DELETE FROM leis_meta")
    with LeisData.open_url(url2, seed=5, persons=SMALL, copy_from=other,
                           progress=lambda done, total: calls.append(done)) as data:
        assert data.built and calls[-1] == SMALL and data.get("D000000001") is not None
