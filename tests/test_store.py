"""The embedded store against real SQLite files: typed rows in and out of each module
(message log, audit, retention, help files), the schema's migrations, and the refusal
of a file made by a newer version."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from nlets_switch.cli import main
from nlets_switch.errors import CorruptRecord, StoreError
from nlets_switch.store import journal
from nlets_switch.store.base import (
    OPEN_STATES,
    AuditAnchor,
    AuditEvent,
    AuditRecord,
    DeliveryRecord,
    HelpFile,
    LoggedMessage,
    MessageQuery,
    PrunedMessages,
    Store,
)
from nlets_switch.store.schema import SCHEMA_VERSION, schema_version
from nlets_switch.store.sqlite import SqliteStore, as_store, journal_op, open_store

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z

DQ = LoggedMessage(id=1, received_at=T0, link="AZNLETS20", key="DQ", origin="AZNLETS20",
                   destinations=("NY", "TX"), control="DQ0001", input_no=7, status="accepted",
                   text="DQ.AZNLETS20.NY,TX.*DQ0001.TXT\nNAM/SMITH,JOHN")
BAD = LoggedMessage(id=2, received_at=T0 + 60, link="AZNLETS20", key="RQ", origin="AZNLETS20",
                    destinations=("NY",), control=None, input_no=8, status="rejected",
                    reason=".05. MISSING LIT", text="RQ.AZNLETS20.NY.TXT\nLIC/1")
ER = LoggedMessage(id=3, received_at=T0 + 60, link="NL0000000", key="ER", origin="NL0000000",
                   destinations=("AZNLETS20",), control=None, input_no=None, status="accepted",
                   reply_to=2, text=".05. MISSING LIT\nRQ.AZNLETS20.NY.TXT")
TO_NY = DeliveryRecord(id=1, msg_id=1, receiver="NYNLETS00", link="NYNLETS00", addressed="NY",
                       output_no=1, priority=1, state="acked", created_at=T0,
                       expires_at=T0 + 3600, sent_at=T0 + 1, done_at=T0 + 2)
TO_TX = DeliveryRecord(id=2, msg_id=1, receiver="TXNLETS00", link="TXNLETS00", addressed="TX",
                       output_no=1, priority=1, state="held", created_at=T0,
                       expires_at=T0 + 86400, held=True)
ER_TO_AZ = DeliveryRecord(id=3, msg_id=3, receiver="AZNLETS20", link="AZNLETS20",
                          addressed="AZNLETS20", output_no=4, priority=0, state="sent",
                          created_at=T0 + 60, expires_at=T0 + 3660, sent_at=T0 + 61)


def _write_log(path: Path, messages: list[LoggedMessage],
               deliveries: list[DeliveryRecord]) -> None:
    """Rows as the switch's journal writes them (the hot path's writes are not this
    module's; this is their shape on disk, the word index's tokens included)."""
    with contextlib.closing(journal.connect(path)) as conn:
        conn.executemany(
            "INSERT INTO messages (id, received_at, link, key, origin, destinations, control, "
            "input_no, status, reason, reply_to, text, words) "
            "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,ns_words(?12))",
            [(m.id, m.received_at, m.link, m.key, m.origin, ",".join(m.destinations),
              m.control, m.input_no, m.status, m.reason, m.reply_to, m.text)
             for m in messages])
        conn.execute("INSERT INTO message_words (rowid, words) SELECT id, words FROM messages")
        conn.executemany(
            "INSERT INTO deliveries (id, msg_id, receiver, link, addressed, output_no, "
            "priority, state, created_at, expires_at, sent_at, done_at, held) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [(d.id, d.msg_id, d.receiver, d.link, d.addressed, d.output_no, d.priority,
              d.state, d.created_at, d.expires_at, d.sent_at, d.done_at, int(d.held))
             for d in deliveries])


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "journal.sqlite"
    open_store(path).close()  # a new file, migrated to the current schema
    _write_log(path, [DQ, BAD, ER], [TO_NY, TO_TX, ER_TO_AZ])
    return path


def _fields(m: LoggedMessage) -> dict[str, Any]:
    return {f: getattr(m, f) for f in LoggedMessage.__dataclass_fields__}


def _seal(rid: int, prev: str) -> str:
    return f"{prev[:8]}>{rid:08x}"


# --------------------------------------------------------------------------
# The message log
# --------------------------------------------------------------------------


def test_message_log_round_trip(log_file: Path) -> None:
    with open_store(log_file, readonly=True) as store:
        dq = store.get_message(1, with_text=True)
        assert dq == LoggedMessage(**{**_fields(DQ), "deliveries": (TO_NY, TO_TX)})
        assert dq is not None and dq.deliveries[1].open and not dq.deliveries[0].open
        assert store.get_message(1) == LoggedMessage(**{**_fields(DQ), "text": None,
                                                        "deliveries": (TO_NY, TO_TX)})
        assert store.get_message(99) is None and store.get_message(2**64) is None
        newest = store.find_messages(MessageQuery(), with_deliveries=False)
        assert [m.id for m in newest] == [3, 2, 1] and all(m.text is None for m in newest)
        assert [m.id for m in store.find_messages(MessageQuery(limit=None), after_id=1,
                                                  oldest_first=True)] == [2, 3]
        assert store.replies_to(2) == [LoggedMessage(**{**_fields(ER),
                                                        "deliveries": (ER_TO_AZ,)})]
        assert store.owed_per_link() == {"TXNLETS00": 1, "AZNLETS20": 1}


@pytest.mark.parametrize(("query", "ids"), [
    (MessageQuery(key="DQ"), [1]),
    (MessageQuery(ori="TX"), [1]),              # a delivery's addressed ORI
    (MessageQuery(ori="NL0000000"), [3]),       # the link it came in on
    (MessageQuery(text="smith,john"), [1]),     # whole words, any case
    (MessageQuery(text="john nam/smith"), [1]),  # every word, in any order
    (MessageQuery(text="smith,j"), []),         # a part of a word is not a word
    (MessageQuery(text="SMITH LIC"), []),       # every word in one message
    (MessageQuery(text="100%"), []),            # punctuation is no word
    (MessageQuery(text="_"), []),
    (MessageQuery(control="DQ0001"), [1]),
    (MessageQuery(since=T0 + 1), [3, 2]),
    (MessageQuery(until=T0), [1]),
    (MessageQuery(limit=1), [3]),
    # Sent (origin or link) or received (delivery receiver or link), never "addressed".
    (MessageQuery(visible_to="NYNLETS00"), [1]),
    (MessageQuery(visible_to="AZNLETS20"), [3, 2, 1]),
    (MessageQuery(visible_to="TX"), []),
])
def test_message_queries_and_counts(log_file: Path, query: MessageQuery,
                                    ids: list[int]) -> None:
    with open_store(log_file, readonly=True) as store:
        assert [m.id for m in store.find_messages(query)] == ids
        if query.limit is not None and query.limit >= 3:
            assert store.count_messages(query) == len(ids)


def test_visibility_applies_to_a_single_message(log_file: Path) -> None:
    with open_store(log_file, readonly=True) as store:
        assert store.get_message(1, visible_to="TXNLETS00") is not None
        assert store.get_message(1, visible_to="TX") is None
        assert store.get_message(3, visible_to="AZNLETS20") is not None


def test_an_empty_file_is_an_empty_log(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite"
    sqlite3.connect(path).close()
    with open_store(path, readonly=True) as store:
        assert store.find_messages(MessageQuery()) == []
        assert store.count_messages(MessageQuery()) == 0
        assert store.get_message(1) is None and store.owed_per_link() == {}
        assert store.last_audit_record() is None and list(store.audit_records()) == []
        assert store.help_file("NL", "NLE") is None


# --------------------------------------------------------------------------
# The audit trail
# --------------------------------------------------------------------------


def test_audit_round_trip_and_chain_order(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    events = [AuditEvent(f"2024-01-0{i}T00:00:00.000000Z", "switch", t, s, "success",
                         f'{{"n":{i}}}')
              for i, (t, s) in enumerate([("sign_on", "AZNLETS20"), ("admin", "op"),
                                          ("sign_on", "NYNLETS00")], start=1)]
    with open_store(path) as store:
        written = [store.append_audit(e, _seal) for e in events]
    assert [r.id for r in written] == [1, 2, 3]
    assert written[0].mac == _seal(1, "") and written[1].mac == _seal(2, written[0].mac)
    with open_store(path, readonly=True) as store:
        assert list(store.audit_records()) == written
        assert store.last_audit_record() == written[2]
        assert store.list_audit_records(type="sign_on") == [written[2], written[0]]
        assert store.list_audit_records(subject="op") == [written[1]]
        assert store.list_audit_records(since="2024-01-02", limit=1) == [written[2]]
        assert store.audit_anchor() is None
    e = events[0]
    assert written[0] == AuditRecord(1, e.ts, e.component, e.type, e.subject, e.outcome,
                                     e.detail, _seal(1, ""))


def test_audit_prune_anchors_the_chain_and_new_records_follow_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with open_store(path) as store:
        for day in range(1, 6):
            store.append_audit(AuditEvent(f"2024-01-0{day}T00:00:00.000000Z", "switch",
                                          "sign_on", "AZNLETS20", "success", "{}"), _seal)
        # Out of order: record 6 carries an older stamp; only a prefix may go.
        store.append_audit(AuditEvent("2024-01-01T00:00:00.000000Z", "cli", "log_access",
                                      "op", "success", "{}"), _seal)
        before = list(store.audit_records())
        assert store.prune_audit("2024-01-04", lambda rid, mac: f"tag:{rid}:{mac}") == 3
        assert store.audit_anchor() == AuditAnchor(3, before[2].mac,
                                                   f"tag:3:{before[2].mac}")
        assert [r.id for r in store.audit_records()] == [4, 5, 6]
        assert store.prune_audit("2024-01-01", lambda rid, mac: "") == 0
        # Everything goes: the next record still numbers on from the anchor.
        assert store.prune_audit("2025-01-01", lambda rid, mac: "t") == 3
        nxt = store.append_audit(AuditEvent("2025-01-02T00:00:00.000000Z", "cli", "admin",
                                            "op", "success", "{}"), _seal)
        assert nxt.id == 7 and nxt.mac == _seal(7, before[5].mac)


def test_an_unreadable_anchor_is_reported_as_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    open_store(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("INSERT INTO meta VALUES ('audit_anchor', '[1, 2]')")
        db.commit()
    with open_store(path, readonly=True) as store, pytest.raises(CorruptRecord):
        store.audit_anchor()


# --------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------


def test_prune_messages_keeps_open_deliveries_and_the_counters(log_file: Path) -> None:
    with contextlib.closing(journal.connect(log_file)) as conn:
        conn.execute("INSERT INTO counters VALUES ('id:msg', 3)")
    with open_store(log_file) as store:
        # Message 1 has a held delivery and 3 a sent one: only 2 is closed and old.
        assert store.prune_messages(T0 + 3600, 10) == PrunedMessages(1, 0)
        assert [m.id for m in store.find_messages(MessageQuery())] == [3, 1]
        assert store.prune_messages(T0 + 3600, 10) == PrunedMessages()
    with contextlib.closing(sqlite3.connect(log_file)) as db:
        db.execute("UPDATE deliveries SET state = 'expired'")
        db.commit()
    with open_store(log_file) as store:
        assert store.prune_messages(T0 + 3600, 1) == PrunedMessages(1, 2)  # oldest first
        assert store.prune_messages(T0 + 3600, 10) == PrunedMessages(1, 1)
        assert store.find_messages(MessageQuery()) == []
    with contextlib.closing(sqlite3.connect(log_file)) as db:
        assert db.execute("SELECT value FROM counters").fetchall() == [(3,)]


def test_a_transaction_is_all_or_nothing(log_file: Path) -> None:
    with open_store(log_file) as store:
        with pytest.raises(RuntimeError), store.transaction():
            assert store.prune_messages(T0 + 3600, 10).messages == 1
            raise RuntimeError("stop")
        assert store.count_messages(MessageQuery()) == 3


# --------------------------------------------------------------------------
# Help files
# --------------------------------------------------------------------------


def test_help_files_seed_put_get(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    seed = HelpFile("NL", "NLE", "SEEDED", T0, "NL0000000")
    with open_store(path) as store:
        store.seed_help_files([seed])
        assert store.help_file("NL", "NLE") == seed
        mine = HelpFile("NL", "NLE", "MINE", T0 + 5, "NYNLETS00")
        store.put_help_file(mine)
        store.seed_help_files([seed])  # a restart does not undo an update
        assert store.help_file("NL", "NLE") == mine
        assert store.help_file("NY", "NLE") is None


# --------------------------------------------------------------------------
# Schema, wrapping, errors
# --------------------------------------------------------------------------


def test_a_version_1_journal_is_migrated(tmp_path: Path) -> None:
    """A journal the first releases made: version 1, no ``held`` column, no audit or
    help tables (they were created on first use)."""
    path = tmp_path / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript("""
            CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
            INSERT INTO meta VALUES ('schema_version', '1');
            CREATE TABLE messages (id INTEGER PRIMARY KEY, received_at REAL NOT NULL,
                link TEXT NOT NULL, key TEXT, origin TEXT, destinations TEXT, control TEXT,
                input_no INTEGER, status TEXT NOT NULL, reason TEXT, reply_to INTEGER,
                body_start INTEGER NOT NULL DEFAULT 0, text TEXT NOT NULL);
            CREATE TABLE deliveries (id INTEGER PRIMARY KEY, msg_id INTEGER NOT NULL,
                link TEXT NOT NULL, receiver TEXT NOT NULL, addressed TEXT NOT NULL,
                output_no INTEGER NOT NULL, priority INTEGER NOT NULL, state TEXT NOT NULL,
                created_at REAL NOT NULL, expires_at REAL NOT NULL, sent_at REAL,
                done_at REAL);
            INSERT INTO messages VALUES (1, 0, 'AZNLETS20', 'AM', 'AZNLETS20', 'NY', NULL, 1,
                'accepted', NULL, NULL, 0, 'AM.AZNLETS20.NY.TXT\nHI');
            INSERT INTO deliveries VALUES (1, 1, 'NYNLETS00', 'NYNLETS00', 'NY', 1, 1,
                'queued', 0, 1, NULL, NULL);
        """)
    with open_store(path, readonly=True) as store:  # read-only: changes nothing
        assert [m.id for m in store.find_messages(MessageQuery(), with_deliveries=False)] == [1]
        assert schema_version(store.conn) == 1
    with open_store(path) as store:
        assert schema_version(store.conn) == SCHEMA_VERSION
        msg = store.get_message(1, with_text=True)
        assert msg is not None and msg.text == "AM.AZNLETS20.NY.TXT\nHI"
        assert msg.deliveries[0].held is False and msg.deliveries[0].state in OPEN_STATES
        store.append_audit(AuditEvent("2024-01-01T00:00:00Z", "cli", "admin", "op",
                                      "success", "{}"), _seal)
        store.put_help_file(HelpFile("NL", "X", "T", 0.0, "NL0000000"))


def test_a_journal_from_a_newer_version_is_refused_naming_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.sqlite"
    open_store(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("UPDATE meta SET value = ? WHERE name = 'schema_version'",
                   (str(SCHEMA_VERSION + 1),))
        db.commit()
    for readonly in (True, False):
        with pytest.raises(StoreError) as e:
            open_store(path, readonly=readonly)
        assert str(path) in str(e.value) and "newer" in str(e.value)
    # A writer that meets it later (the switch's journal) refuses to write too.
    with contextlib.closing(journal.connect(path)) as conn, pytest.raises(StoreError):
        as_store(conn).append_audit(AuditEvent("t", "c", "t", "s", "o", "{}"), _seal)
    # The tools say so and stop, rather than read it.
    assert main(["log", "search", "--data-dir", str(tmp_path)]) == 2
    assert "newer nlets-switch" in capsys.readouterr().err
    assert main(["audit", "verify", "--data-dir", str(tmp_path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_database_errors_surface_as_store_errors(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, it is just long enough to look like one" * 20)
    with pytest.raises(StoreError):
        open_store(junk, readonly=True)
    with pytest.raises(StoreError):
        open_store(tmp_path / "missing" / "journal.sqlite", readonly=True)


def test_a_bare_connection_and_a_journal_operation_reach_the_same_store(
        log_file: Path) -> None:
    with contextlib.closing(journal.connect(log_file, readonly=True)) as conn:
        wrapped = as_store(conn)
        assert isinstance(wrapped, SqliteStore)
        assert wrapped.get_message(1) is not None
        with open_store(log_file, readonly=True) as store:
            assert as_store(store) is store

        def count(store: Store) -> int:
            return store.count_messages(MessageQuery())

        assert journal_op(count)(conn) == 3


def test_the_open_states_are_the_journals() -> None:
    # base.py is backend-neutral, so it cannot import journal.py's tuple; they must agree
    # (what the log calls open is what the switch still owes).
    assert OPEN_STATES == journal.OPEN_STATES
