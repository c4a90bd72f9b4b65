"""The journal's integrity check and its page-by-page recovery, on journal files
damaged the way a disk damages them: 16 bytes overwritten in one page."""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from nlets_switch.cli import main
from nlets_switch.store.integrity import RecoveryError, check, recover
from nlets_switch.store.pages import PageFile
from nlets_switch.store.salvage import Shape, read_schema, salvage
from nlets_switch.store.schema import SCHEMA_VERSION
from tests.damage import damage, make_journal, middle_leaf, page_size, pages, root_of, rows

N = 3000


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "journal.sqlite"
    make_journal(path, N)
    return path


@pytest.fixture
def journal(template: Path, tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    shutil.copy(template, d / "journal.sqlite")
    return d / "journal.sqlite"


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -- reading pages ------------------------------------------------------------


def test_page_reader_reads_every_row_as_sqlite_does(journal: Path) -> None:
    conn = sqlite3.connect(journal)
    conn.execute("CREATE TABLE extra (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB)")
    extra = [(1, -1, -0.5, "é ü ✓", b"\x00\x01"), (2, 2**40, 1e300, "", b""),
             (3, None, None, None, None), (4, -(2**63), 0.0, "x" * 70_000, b"\xff" * 5000)]
    conn.executemany("INSERT INTO extra VALUES (?,?,?,?,?)", extra)
    conn.commit()
    conn.close()
    pf = PageFile(journal)
    schema = read_schema(pf)
    assert schema is not None
    got: dict[str, dict[int, tuple[object, ...]]] = {}

    def sink(shape: Shape, rowid: int, values: tuple[object, ...]) -> bool:
        got.setdefault(shape.name, {})[rowid] = values
        return True

    with pf:
        results = salvage(pf, schema[0], sink)
    assert all(not r.lost_pages and not r.bad_cells and not r.from_scan for r in results)
    assert got["messages"] == rows(journal, "messages")
    assert got["deliveries"] == rows(journal, "deliveries")
    assert list(got["extra"].values()) == extra


# -- check -------------------------------------------------------------------


def test_check_passes_a_sound_journal(journal: Path) -> None:
    r = check(journal)
    assert r.ok and not r.new
    assert r.schema_version == SCHEMA_VERSION  # a journal this switch wrote is current
    assert r.size == journal.stat().st_size


def test_check_passes_a_journal_yet_to_be_made(tmp_path: Path) -> None:
    r = check(tmp_path / "not" / "yet" / "journal.sqlite")
    assert r.ok and r.new
    assert not (tmp_path / "not").exists()  # checking creates nothing


def test_check_takes_an_empty_file_as_new(tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite").touch()
    assert check(tmp_path / "journal.sqlite").ok


def test_check_refuses_a_damaged_header(journal: Path) -> None:
    damage(journal, 1, 0)
    r = check(journal)
    assert not r.ok
    assert r.first is not None and r.first.kind == "damaged"
    assert "file is not a database" in r.first.detail


@pytest.mark.parametrize("name", ["messages", "deliveries", "messages_time", "deliveries_owed",
                                  "deliveries_msg", "deliveries_expires", "meta", "counters"])
def test_check_finds_a_damaged_page_of_every_table_and_index(journal: Path, name: str) -> None:
    damage(journal, root_of(journal, name))
    before = digest(journal)
    r = check(journal)
    assert r.first is not None and r.first.kind == "damaged", r
    assert "\n" not in r.first.detail
    assert digest(journal) == before  # checking changes nothing


def test_check_refuses_a_journal_of_a_newer_schema(journal: Path) -> None:
    conn = sqlite3.connect(journal)
    conn.execute("UPDATE meta SET value = '99' WHERE name = 'schema_version'")
    conn.commit()
    conn.close()
    r = check(journal)
    assert r.first is not None and r.first.kind == "newer"
    assert "99" in r.first.detail


def test_check_tells_a_journal_locked_by_another_process_from_a_damaged_one(
        journal: Path) -> None:
    other = sqlite3.connect(journal, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("PRAGMA locking_mode=EXCLUSIVE")  # as a second switch on the same file would
    other.execute("BEGIN EXCLUSIVE")
    other.execute("DELETE FROM counters WHERE name = 'nothing'")
    try:
        r = check(journal, busy_timeout=0.1)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert r.first is not None and r.first.kind == "busy"
    assert check(journal).ok


def test_check_refuses_a_directory_in_the_journal_s_place(tmp_path: Path) -> None:
    (tmp_path / "journal.sqlite").mkdir()
    r = check(tmp_path / "journal.sqlite")
    assert r.first is not None and r.first.kind == "unreadable"


# -- recover -----------------------------------------------------------------


def test_recover_copies_a_sound_journal_whole(journal: Path, tmp_path: Path) -> None:
    out = tmp_path / "new.sqlite"
    report = recover(journal, out)
    assert report.complete
    assert report.owed == N
    assert rows(out, "messages") == rows(journal, "messages")
    assert rows(out, "deliveries") == rows(journal, "deliveries")
    assert check(out).ok


def test_recover_loses_only_the_rows_of_a_damaged_leaf(journal: Path, tmp_path: Path) -> None:
    original = rows(journal, "messages")
    damage(journal, middle_leaf(journal, "messages"))
    before = digest(journal)
    report = recover(journal, tmp_path / "new.sqlite")
    got = rows(tmp_path / "new.sqlite", "messages")
    lost = sorted(set(original) - set(got))
    assert 0 < len(lost) < 60  # one page's worth
    assert lost == list(range(lost[0], lost[-1] + 1))  # a page holds consecutive ids
    assert report.missing["messages"] == [(lost[0], lost[-1])]
    assert all(got[i] == original[i] for i in got)  # every other row, byte for byte
    # Their deliveries cannot be rendered without them: left out and said so.
    assert report.orphans == {"NYNLETS00": len(lost)}
    assert report.owed == N - len(lost)
    assert not report.complete
    assert digest(journal) == before  # the damaged file is left as it was


@pytest.mark.parametrize("name", ["messages", "deliveries"])
def test_recover_finds_the_rows_under_a_damaged_interior_page(journal: Path, tmp_path: Path,
                                                              name: str) -> None:
    original = rows(journal, name)
    damage(journal, root_of(journal, name))  # the root: every row hangs below it
    report = recover(journal, tmp_path / "new.sqlite")
    assert rows(tmp_path / "new.sqlite", name) == original
    assert report.table(name).from_scan == N
    assert report.missing == {}
    assert report.owed == N


def test_recover_does_not_bring_back_rows_from_freed_pages(journal: Path, tmp_path: Path) -> None:
    leaf = middle_leaf(journal, "messages")
    size = page_size(journal)
    stale = journal.read_bytes()[(leaf - 1) * size:leaf * size]
    with PageFile(journal) as pf:
        gone = [row[0] for row in pf.leaf_rows(pf.btree(leaf)) if isinstance(row, tuple)]
    before = {n for n, _ in pages(journal)["messages"]}
    conn = sqlite3.connect(journal)
    conn.execute(f"DELETE FROM messages WHERE id BETWEEN {gone[0]} AND {gone[-1] + 300}")
    conn.commit()
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0
    conn.close()
    # Pages the delete freed and that are still free (another table, the word index,
    # may have reused some), but not the freelist's trunk page, which holds the list
    # itself: only a leaf of the list keeps what it held.
    trunk = int.from_bytes(journal.read_bytes()[32:36], "big")
    with PageFile(journal) as pf:
        free = set(pf.freelist()) - {trunk}
    freed = sorted((before - {n for n, _ in pages(journal)["messages"]}) & free)
    assert freed
    # A freed page keeps what it held; make sure it holds the deleted rows
    # (SQLite may have cleared them, or freed a neighbour instead).
    with journal.open("r+b") as f:
        f.seek((freed[0] - 1) * size)
        f.write(stale)
    original = rows(journal, "messages")
    damage(journal, root_of(journal, "messages"))  # everything must be found by scanning
    recover(journal, tmp_path / "new.sqlite")
    assert rows(tmp_path / "new.sqlite", "messages") == original  # none of `gone` is back


@pytest.mark.parametrize("name", ["messages_time", "deliveries_owed", "deliveries_msg",
                                  "deliveries_expires"])
def test_recover_rebuilds_a_damaged_index(journal: Path, tmp_path: Path, name: str) -> None:
    damage(journal, root_of(journal, name))
    out = tmp_path / "new.sqlite"
    report = recover(journal, out)
    assert report.complete and report.owed == N
    assert check(out).ok


@pytest.mark.parametrize("offset", [0, 16])
def test_recover_repairs_a_damaged_header_in_its_copy(journal: Path, tmp_path: Path,
                                                      offset: int) -> None:
    original = rows(journal, "messages")
    damage(journal, 1, offset)
    report = recover(journal, tmp_path / "new.sqlite")
    assert report.header_repairs
    assert rows(tmp_path / "new.sqlite", "messages") == original
    assert report.owed == N


def test_recover_without_a_schema_page_finds_the_journal_s_tables_by_their_rows(
        journal: Path, tmp_path: Path) -> None:
    original = rows(journal, "deliveries")
    damage(journal, 1, 100)  # page 1's b-tree header: the schema
    report = recover(journal, tmp_path / "new.sqlite")
    assert report.schema_lost
    assert rows(tmp_path / "new.sqlite", "deliveries") == original
    assert report.owed == N


def test_recover_rebuilds_lost_numbering_counters(journal: Path, tmp_path: Path) -> None:
    damage(journal, root_of(journal, "counters"))
    report = recover(journal, tmp_path / "new.sqlite")
    conn = sqlite3.connect(tmp_path / "new.sqlite")
    counters = dict(conn.execute("SELECT name, value FROM counters"))
    conn.close()
    assert counters == {"id:msg": N, "id:dlv": N, "in:AZNLETS20": N, "out:NYNLETS00": N}
    assert sorted(report.counters_rebuilt) == sorted(counters)


def test_recover_keeps_the_tables_other_modules_keep_in_the_journal(journal: Path,
                                                                     tmp_path: Path) -> None:
    conn = sqlite3.connect(journal)
    # The NL service's help files as they are kept, and a table this code does not know.
    conn.execute("CREATE TABLE IF NOT EXISTS help_files (state TEXT NOT NULL, file TEXT NOT NULL, "
                 "text TEXT NOT NULL, updated_at REAL NOT NULL, updated_by TEXT NOT NULL, "
                 "PRIMARY KEY (state, file))")
    conn.execute("INSERT INTO help_files VALUES ('NL', 'NLE', 'HELP TEXT', 1.5, 'AZNLETS20')")
    conn.execute("CREATE TABLE plugin_state (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
    conn.execute("CREATE INDEX plugin_note ON plugin_state(note)")
    conn.execute("INSERT INTO plugin_state VALUES (7, 'kept')")
    conn.commit()
    conn.close()
    recover(journal, tmp_path / "new.sqlite")
    conn = sqlite3.connect(tmp_path / "new.sqlite")
    assert conn.execute("SELECT * FROM help_files").fetchall() == [
        ("NL", "NLE", "HELP TEXT", 1.5, "AZNLETS20")]
    assert conn.execute("SELECT * FROM plugin_state").fetchall() == [(7, "kept")]
    assert conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'plugin_note'").fetchone()
    conn.close()


def test_recover_takes_in_committed_wal_frames_and_drops_a_torn_commit(tmp_path: Path) -> None:
    live = tmp_path / "live" / "journal.sqlite"
    make_journal(live, 10)
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE deliveries SET state = 'acked' WHERE id <= 5")
    wal_before_last = Path(f"{live}-wal").stat().st_size
    writer.execute("UPDATE deliveries SET state = 'acked' WHERE id = 10")
    crashed = tmp_path / "crashed"
    crashed.mkdir()
    shutil.copy(live, crashed / "journal.sqlite")
    wal = Path(f"{live}-wal").read_bytes()
    # The last commit torn in the middle of its frame, as a crash leaves it.
    (crashed / "journal.sqlite-wal").write_bytes(wal[:wal_before_last + 100])
    writer.close()
    report = recover(crashed / "journal.sqlite", tmp_path / "new.sqlite")
    assert report.wal_frames > 0
    got = rows(tmp_path / "new.sqlite", "deliveries")
    assert [got[i][7] for i in range(1, 11)] == ["acked"] * 5 + ["held"] * 5
    assert report.owed == 5


def test_recover_writes_only_a_new_file(journal: Path, tmp_path: Path) -> None:
    (tmp_path / "new.sqlite").write_text("precious")
    with pytest.raises(FileExistsError):
        recover(journal, tmp_path / "new.sqlite")
    assert (tmp_path / "new.sqlite").read_text() == "precious"


def test_recover_gives_up_on_what_is_not_sqlite(tmp_path: Path) -> None:
    bad = tmp_path / "journal.sqlite"
    bad.write_bytes(b"nothing like a database")
    with pytest.raises(RecoveryError):
        recover(bad, tmp_path / "new.sqlite")
    assert not (tmp_path / "new.sqlite").exists()


# -- the commands ------------------------------------------------------------


def test_journal_check_command(journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = str(journal.parent)
    assert main(["journal", "check", "--data-dir", d]) == 0
    assert "OK" in capsys.readouterr().out
    damage(journal, middle_leaf(journal, "deliveries"))
    assert main(["journal", "check", "--data-dir", d]) == 2
    out = capsys.readouterr().out
    assert "DAMAGED" in out
    assert f"nlets-switch journal recover --data-dir {d}" in out


def test_journal_recover_command_says_what_it_lost_and_how_to_swap(
        journal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    d = journal.parent
    damage(journal, middle_leaf(journal, "messages"))
    assert main(["journal", "recover", "--data-dir", str(d)]) == 1  # written, with losses
    out = capsys.readouterr().out
    assert "not recovered:" in out and "messages" in out
    assert f"cd {d}" in out and "journal.sqlite" in out
    new = [p for p in os.listdir(d) if p.startswith("journal.recovered-")]
    assert len(new) == 1
    assert f"mv {d / new[0]} journal.sqlite" in out
    assert sorted(os.listdir(d)) == sorted(["journal.sqlite", new[0]])  # no temporary left


def test_journal_recover_command_exit_codes(journal: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    d = str(journal.parent)
    out = tmp_path / "whole.sqlite"
    assert main(["journal", "recover", "--data-dir", d, "--out", str(out)]) == 0
    assert "every row recovered" in capsys.readouterr().out
    assert main(["journal", "recover", "--data-dir", d, "--out", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["journal", "recover", "--data-dir", str(tmp_path / "none")]) == 2


def test_journal_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["journal", "--help"], ["journal", "recover", "--help"]):
        with pytest.raises(SystemExit):
            main(args)
        assert "examples:" in capsys.readouterr().out
    assert main(["journal"]) == 2


def test_recover_reads_rows_written_before_a_column_was_added(tmp_path: Path) -> None:
    old = tmp_path / "old" / "journal.sqlite"
    old.parent.mkdir()
    conn = sqlite3.connect(old)
    # deliveries as it was before `held` (Journal.open adds the column, old rows keep 12 values)
    conn.execute("CREATE TABLE deliveries (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL, "
                 "link TEXT NOT NULL, receiver TEXT NOT NULL, addressed TEXT NOT NULL, "
                 "output_no INTEGER NOT NULL, priority INTEGER NOT NULL, state TEXT NOT NULL, "
                 "created_at REAL NOT NULL, expires_at REAL NOT NULL, sent_at REAL, done_at REAL)")
    conn.executemany("INSERT INTO deliveries VALUES (?,?,'NYNLETS00','NYNLETS00','NY',?,2,"
                     "'queued',1.0,2e9,NULL,NULL)", [(i, i, i) for i in range(1, 301)])
    conn.commit()
    conn.close()
    make_journal(old, 0)  # the other tables, and `held` added
    conn = sqlite3.connect(old)
    conn.executemany("INSERT INTO messages (id, received_at, link, status, text) "
                     "VALUES (?, 1.5, 'AZNLETS20', 'accepted', 'AM.AZNLETS20.NY.TXT\nX')",
                     [(i,) for i in range(1, 301)])
    conn.commit()
    conn.close()
    damage(old, root_of(old, "deliveries"))
    report = recover(old, tmp_path / "new.sqlite")
    assert report.table("deliveries").from_scan == 300
    got = rows(tmp_path / "new.sqlite", "deliveries")
    assert len(got) == 300 and {r[12] for r in got.values()} == {0}  # held: its default
    assert report.owed == 300
