"""The message log's word index in SQLite (issue 10's FTS5, issue 11's "never an index
holding clear text"): blind tokens written by the journal's writer process, matched by
whole words, kept in step by retention and key rotation, and built for journals older
than it."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlets_switch.store import keys, tables, textcrypt
from nlets_switch.store.base import MessageQuery
from nlets_switch.store.journal import Journal
from nlets_switch.store.records import Batch, MessageRow
from nlets_switch.store.schema import SCHEMA_VERSION, schema_version
from nlets_switch.store.sqlite import open_store


@pytest.fixture(autouse=True)
def _keyring(tmp_path: Path) -> Iterator[Path]:
    before = textcrypt.current()
    path = tmp_path / "keys" / "text.keys"
    ring, _ = keys.load_keyring(path)
    textcrypt.configure(ring)
    yield path
    textcrypt.configure(before)


NAMES = ("SMITH", "JONES", "GARCIA", "NGUYEN", "SMITHSON", "OKAFOR", "JOHN", "JOHNSON", "MARIA")


def _row(i: int, text: str) -> MessageRow:
    return MessageRow(i, 1000.0 + i, "AZNLETS20", "DQ", "AZNLETS20", "NY", None, i, "accepted",
                      None, None, 0, text)


async def _write(path: Path, rows: list[MessageRow]) -> None:
    """Through the journal's writer process, as the switch writes them."""
    j = Journal(path)
    j.start(asyncio.get_running_loop())
    try:
        for i in range(0, len(rows), 50):
            done: asyncio.Future[BaseException | None] = \
                asyncio.get_running_loop().create_future()
            j.write(Batch(messages=rows[i:i + 50]), done.set_result)
            assert await done is None
    finally:
        j.close()


def _ids(path: Path, text: str) -> list[int]:
    with open_store(path, readonly=True) as store:
        return sorted(m.id for m in store.find_messages(MessageQuery(text=text, limit=None),
                                                         with_deliveries=False))


async def test_whole_word_searches_give_what_the_substring_scan_gave(tmp_path: Path) -> None:
    rnd = random.Random(10)
    texts = [f"DQ.AZNLETS20.NY.TXT\nNAM/{rnd.choice(NAMES)},{rnd.choice(NAMES)}."
             f"DOB/19{rnd.randint(40, 99)}0101" for _ in range(300)]
    path = tmp_path / "journal.sqlite"
    await _write(path, [_row(i + 1, t) for i, t in enumerate(texts)])
    raw = path.read_bytes() + (path.with_name("journal.sqlite-wal").read_bytes()
                               if path.with_name("journal.sqlite-wal").exists() else b"")
    assert b"SMITH" not in raw.upper() and b"GARCIA" not in raw.upper()
    for query in ("garcia", "Okafor", "NGUYEN", "maria", "19550101", "jones"):
        # Before (issue 11's decrypt-and-scan): a case-insensitive substring. Each query
        # here is a whole word wherever it occurs, so the two must agree.
        before = [i + 1 for i, t in enumerate(texts) if query.lower() in t.lower()]
        assert before and _ids(path, query) == before, query
    # What changes: a word matches itself, not a longer word holding it ...
    with_smithson = {i + 1 for i, t in enumerate(texts)
                     if "SMITHSON" in t and not re.search(r"\bSMITH\b", t)}
    assert with_smithson and not with_smithson & set(_ids(path, "smith"))
    assert _ids(path, "smith") == [i + 1 for i, t in enumerate(texts)
                                   if re.search(r"\bSMITH\b", t)]
    # ... a part of a word matches nothing, and several words match wherever they are.
    assert _ids(path, "garci") == []
    assert _ids(path, "maria garcia") == [i + 1 for i, t in enumerate(texts)
                                          if "MARIA" in t and "GARCIA" in t]
    with open_store(path, readonly=True) as store:
        assert store.count_messages(MessageQuery(text="maria garcia")) == \
            len(_ids(path, "maria garcia"))


async def test_rows_sealed_before_a_rotation_are_still_found(tmp_path: Path,
                                                              _keyring: Path) -> None:
    path = tmp_path / "journal.sqlite"
    await _write(path, [_row(1, "AM.AZNLETS20.NY.TXT\nOLD KEY ZEBULON")])
    textcrypt.configure(keys.rotate_keyring(_keyring))
    await _write(path, [_row(2, "AM.AZNLETS20.NY.TXT\nNEW KEY ZEBULON")])
    assert _ids(path, "zebulon") == [1, 2]
    assert _ids(path, "old zebulon") == [1] and _ids(path, "new key") == [2]


async def test_retention_takes_the_index_entries_with_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    await _write(path, [_row(i, f"AM.AZNLETS20.NY.TXT\nCASE {i} ZEBULON") for i in (1, 2, 3)])
    with open_store(path) as store:
        assert store.prune_messages(1002.5, 100).messages == 2
        assert _ids(path, "zebulon") == [3]
        # FTS5's own check: the index holds exactly what the rows' tokens say.
        store.conn.execute("INSERT INTO message_words (message_words, rank) "
                           "VALUES ('integrity-check', 1)")


def _journal_of_version_5(path: Path, *texts: str) -> None:
    """A journal as version 5 left it (no word index), with messages 1, 2, ... whose
    text is each of ``texts``, sealed unless it starts with ``clear:``."""
    from nlets_switch.store.schema import MIGRATIONS

    with contextlib.closing(sqlite3.connect(path)) as conn:
        textcrypt.install(conn)
        for v, step in MIGRATIONS:
            if v <= 5:
                step(conn)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '5')")
        for i, text in enumerate(texts, 1):
            clear = text.removeprefix("clear:")
            conn.execute("INSERT INTO messages (id, received_at, link, status, text) VALUES "
                         "(?, ?, 'AZNLETS20', 'accepted', "
                         + ("?)" if clear != text else "ns_seal(?, ?1))"), (i, float(i), clear))
        conn.commit()


def test_a_journal_of_version_5_is_indexed_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _journal_of_version_5(path, "AM.X.Y.TXT\nOLD SMITH", "clear:AM.X.Y.TXT\nCLEAR SMITH")
    assert b"OLD SMITH" not in path.read_bytes() and b"CLEAR SMITH" in path.read_bytes()
    with open_store(path, readonly=True) as store:  # read-only: an old file is not changed
        with pytest.raises(Exception, match="no word index"):
            store.find_messages(MessageQuery(text="smith"))
    with contextlib.closing(tables.connect(path)) as conn:
        tables.create(conn)
        assert schema_version(conn) == SCHEMA_VERSION >= 6
    assert _ids(path, "smith") == [1, 2] and _ids(path, "old smith") == [1]


def test_the_tokens_hold_no_word_and_depend_on_the_key(_keyring: Path) -> None:
    text = "DQ.AZNLETS20.NY.TXT\nNAM/SMITH,JOHN.DOB/19500101"
    entry = textcrypt.word_tokens(text)
    assert len(entry.split()) == len(textcrypt.words(text)) == 9
    assert all(len(t) == textcrypt.TOKEN_CHARS and set(t) <= set("abcdefghijklmnop")
               for t in entry.split())
    assert "smith" not in entry.lower() and "19500101" not in entry
    assert textcrypt.word_tokens(text.lower()) == entry  # case folded
    ring2 = keys.rotate_keyring(_keyring)
    textcrypt.configure(ring2)
    assert not set(textcrypt.word_tokens(text).split()) & set(entry.split())
    # A query looks under every key of the keyring (and the unkeyed one of clear rows).
    [alternatives] = textcrypt.query_terms("Smith")
    assert len(alternatives) == 3 and alternatives[0] in entry.split()
    assert textcrypt.query_terms("%_/.") == []


async def test_a_recovered_journal_searches_as_the_damaged_one_did(tmp_path: Path) -> None:
    from nlets_switch.store.integrity import recover

    path = tmp_path / "journal.sqlite"
    await _write(path, [_row(i, f"AM.AZNLETS20.NY.TXT\nCASE {i} {NAMES[i % len(NAMES)]}")
                        for i in range(1, 201)])
    recover(path, tmp_path / "new.sqlite")
    for word in ("garcia", "case", "okafor case"):
        assert _ids(tmp_path / "new.sqlite", word) == _ids(path, word) != []
    with open_store(tmp_path / "new.sqlite") as store:
        store.conn.execute("INSERT INTO message_words (message_words, rank) "
                           "VALUES ('integrity-check', 1)")


def test_a_journal_migrated_without_the_keyring_is_indexed_when_the_switch_opens_it(
        tmp_path: Path, _keyring: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _journal_of_version_5(path, "AM.X.Y.TXT\nOLD SMITH")
    ring = textcrypt.current()
    textcrypt.configure(None)  # a tool without the keyring migrates it (audit record_now)
    with open_store(path) as store:
        assert schema_version(store.conn) == SCHEMA_VERSION
    textcrypt.configure(ring)
    assert _ids(path, "smith") == []  # sealed, not indexed yet: waiting, and flagged
    with contextlib.closing(tables.connect(path)) as conn:
        tables.create(conn)  # the switch's start (Journal.open), with the keyring
    assert _ids(path, "smith") == [1]
