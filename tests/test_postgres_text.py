"""Message text at rest on PostgreSQL (issue 11's rule, issue 10's store): sealed with the
keyring by the journal's writer, opened where it is read, and searched through blind
tokens (a tsvector under GIN) that hold no clear word. On a real, throwaway PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from nlets_switch.cli import main
from nlets_switch.config import demo_config, with_overrides
from nlets_switch.ops import msglog
from nlets_switch.server.switch import Switch
from nlets_switch.store import textcrypt
from nlets_switch.store.postgres import open_pg_store
from nlets_switch.store.postgres_journal import PostgresJournal
from nlets_switch.store.postgres_schema import migrate
from nlets_switch.store.records import Batch, MessageRow
from nlets_switch.wire.message import parse_output
from tests.conftest import ClientFactory

pytest_plugins = ["tests.conftest_postgres"]

SECRET_WORDS = ("SMITH", "JOHN", "19500101", "ZEBULON")


def _every_row_as_text(url: str) -> str:
    """Every row of every table of the database, as PostgreSQL prints it."""
    out = []
    with psycopg.connect(url) as c:
        tables = [r[0] for r in c.execute("SELECT tablename FROM pg_tables "
                                          "WHERE schemaname = 'public'")]
        for t in tables:
            out += [str(r[0]) for r in c.execute(f"SELECT t::text FROM {t} t")]
    return "\n".join(out)


async def test_text_is_sealed_in_postgres_and_log_show_and_search_still_read_it(
        tmp_path: Path, pg_url: str, connect: ClientFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    from nlets_switch.server.app import build_switch

    cfg = with_overrides(demo_config(), ["127.0.0.1:0"], str(tmp_path), store=pg_url)
    sw: Switch = await build_switch(cfg)
    await sw.start()
    try:
        az = await connect(sw, "AZNLETS20")
        ny = await connect(sw, "NYNLETS00")
        text = "DQ.AZNLETS20.NY.*DQ0001.TXT\nNAM/SMITH,JOHN.DOB/19500101.SEX/M"
        assert (await az.send(text)).ok
        assert "NAM/SMITH,JOHN" in parse_output(await ny.receive(5)).text
        # Held for an ORI that is not signed on, then read back from the database at its
        # sign-on: the read-back opens the sealed text.
        await ny.close()
        await asyncio.sleep(0.2)
        assert (await az.send("AM.AZNLETS20.NYNLETS00.TXT\nZEBULON SMITH")).ok
        await sw.journal.barrier()
        ny = await connect(sw, "NYNLETS00")
        assert parse_output(await ny.receive(5)).text.endswith("ZEBULON SMITH")
        await asyncio.sleep(0.1)
        await sw.journal.barrier()
    finally:
        await sw.stop()

    raw = _every_row_as_text(pg_url)
    assert "AZNLETS20" in raw  # the rows are there, and readable as rows
    for word in SECRET_WORDS:  # but no word of any text, in any case, in any table
        assert word not in raw.upper(), word
    with psycopg.connect(pg_url) as c:
        texts = [r[0] for r in c.execute("SELECT text FROM messages")]
    assert texts and all(t.startswith(textcrypt.MAGIC) for t in texts)

    where = ["--store", pg_url, "--data-dir", str(tmp_path)]
    capsys.readouterr()
    with open_pg_store(pg_url, readonly=True) as store:
        [dq] = msglog.search(store, msglog.Query(key="DQ"))
    assert main(["log", "show", str(dq["id"]), "--text", *where]) == 0
    assert "NAM/SMITH,JOHN.DOB/19500101" in capsys.readouterr().out
    # Text search by whole words, through the blind tokens: any case, any order.
    for query, keys in (("smith", {"DQ", "AM"}), ("John Smith", {"DQ"}),
                        ("zebulon", {"AM"}), ("smit", set()), ("smith zebulon", {"AM"})):
        # (exit status 1: nothing found)
        assert main(["log", "search", "--text", query, "--json", *where]) == (0 if keys else 1)
        out = capsys.readouterr().out
        assert {k for k in ("DQ", "AM") if f'"key": "{k}"' in out} == keys, query


def test_a_database_of_version_2_is_sealed_and_indexed_by_the_migration(pg_url: str) -> None:
    """Rows written in clear before version 4 are sealed and indexed when it arrives."""
    from nlets_switch.store.postgres import connect
    from nlets_switch.store.postgres_schema import _v1, _v2

    with psycopg.connect(pg_url, autocommit=True) as c:
        _v1(c)
        _v2(c)
        c.execute("INSERT INTO meta VALUES ('schema_version', '2')")
        c.execute("INSERT INTO messages (id, received_at, link, key, status, text) VALUES "
                  "(1, 1.0, 'AZNLETS20', 'AM', 'accepted', 'AM.AZNLETS20.NY.TXT\nOLD SMITH')")
    conn = connect(pg_url)
    try:
        assert migrate(conn, "test")[1] >= 4
    finally:
        conn.close()
    assert "SMITH" not in _every_row_as_text(pg_url).upper()
    with open_pg_store(pg_url, readonly=True) as store:
        [m] = store.find_messages(msglog.Query(text="old smith"), with_text=True)
        assert m.text == "AM.AZNLETS20.NY.TXT\nOLD SMITH"


async def test_the_journal_seals_what_it_writes(pg_url: str) -> None:
    j = PostgresJournal(pg_url)
    j.start(asyncio.get_running_loop())
    try:
        row = MessageRow(1, 1.0, "AZNLETS20", "AM", "AZNLETS20", "NY", None, 1, "accepted",
                         None, None, 20, "AM.AZNLETS20.NY.TXT\nZEBULON")
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        j.write(Batch(messages=[row]), done.set_result)
        assert await done is None
    finally:
        j.close()
    with psycopg.connect(pg_url) as c:
        stored, words = c.execute("SELECT text, words::text FROM messages").fetchone()
    assert "ZEBULON" not in stored and "zebulon" not in words
    assert textcrypt.open_text(stored, 1).endswith("ZEBULON")
    assert len(words.split()) == len(textcrypt.words(row.text))
