"""The journal's tables and the hot path's statements (SQLite).

Everything here is a plain function of a :class:`sqlite3.Connection`, so it
runs wherever the connection lives: in the journal's writer process (the
hot path, see :mod:`nlets_switch.store.writer`), or on a read-only connection
of a tool. The module imports nothing but the standard library and the typed
rows, so the writer process starts light.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from nlets_switch.store.records import Batch, ExpiredRow, OwedRow, Recovered

__all__ = [
    "OPEN_WHERE",
    "SCHEMA_VERSION",
    "batch_args",
    "connect",
    "create",
    "expire_due",
    "held_counts",
    "load_owed",
    "nothing",
    "recover",
    "write_batch",
    "write_rows",
]

# Every table, index and migration is in store/schema.py; this module only
# reads and writes the hot path's rows.
from nlets_switch.store.schema import SCHEMA_VERSION as SCHEMA_VERSION
from nlets_switch.store.schema import index_pending, migrate

#: The open deliveries (OPEN_STATES), exactly as the ``deliveries_owed`` index
#: states it: a query that wants the index must say it so (``d.`` prefix allowed).
OPEN_WHERE: Final = "(state = 'queued' OR state = 'held' OR state = 'sent')"
_OPEN_D: Final = "(d.state = 'queued' OR d.state = 'held' OR d.state = 'sent')"


def connect(path: Path, readonly: bool = False) -> sqlite3.Connection:
    """A connection to the journal with the pragmas the switch relies on."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False,
                               isolation_level=None)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Before its first write: the file and its WAL are the owner's alone.
        _private(path)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: a commit is fsync'd before it returns; that is what custody needs.
        conn.execute("PRAGMA synchronous=FULL")
        # Checkpoints run beside the writer (Journal.checkpoint), not inside its
        # commits; this is only the backstop if they stop.
        conn.execute("PRAGMA wal_autocheckpoint=20000")
    conn.execute("PRAGMA busy_timeout=5000")
    # ns_open / ns_seal: message text at rest. Imported here: the module itself
    # stays standard-library only (AES-GCM is loaded with the first connection).
    from nlets_switch.store import textcrypt

    return textcrypt.install(conn)


def _private(path: Path) -> None:
    """Journal files 0600 whatever the umask (CJIS 5.10.1.2): SQLite makes the WAL
    and -shm with the main file's mode."""
    for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            os.chmod(p, 0o600)


def create(conn: sqlite3.Connection) -> None:
    """Create the tables, or bring an older journal up to date (store/schema.py), and
    index what a migration without the keyring could not (the switch has it)."""
    migrate(conn)
    index_pending(conn)


def nothing(conn: sqlite3.Connection) -> None:
    """An operation that does nothing (a barrier: it completes after all before it)."""
    return None


_INSERT_MSG = ("INSERT INTO messages (id, received_at, link, key, origin, destinations, control, "
               "input_no, status, reason, reply_to, body_start, text, words) "
               "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
# The word index (store/schema.py version 6) follows, from the rows just written: an
# INSERT ... SELECT per batch, not a trigger per row (a trigger costs ~10 us a message
# in FTS5, three times the index itself).
_INDEX_MSG = ("INSERT INTO message_words (rowid, words) SELECT id, words FROM messages "
              "WHERE id >= ? AND id <= ? AND words IS NOT NULL")
_INSERT_DLV = ("INSERT INTO deliveries (id, msg_id, link, receiver, addressed, output_no, "
               "priority, state, created_at, expires_at, held) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
_COUNTER = ("INSERT INTO counters (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value")


def write_rows(conn: sqlite3.Connection, messages: Sequence[Sequence[Any]],
               deliveries: Sequence[Sequence[Any]], counters: dict[str, int],
               sent: dict[int, float], done: Sequence[Sequence[Any]],
               refused: Sequence[Sequence[Any]] = ()) -> None:
    """Everything one batch holds, inside the writer's transaction.

    One ``executemany`` per table: far cheaper for SQLite than a few small
    statements per message. The rows are plain tuples in the field order of
    :class:`~nlets_switch.store.records.MessageRow`, ``DeliveryRow`` and
    ``DoneRow`` (the journal sends them so: a tuple pickles several times
    faster than a named tuple). ``refused`` are ``RefusedRow``: messages a service of
    the switch refused with an ER after they were accepted.
    """
    if messages:
        # The text is sealed here, in the writer (store/textcrypt.py), bound to its id,
        # and its words kept as blind tokens (the word index's content): in Python
        # before the insert, not as SQL functions of it (ns_seal, ns_words), which
        # cost ~8 us a message more in calls across SQLite's boundary.
        from nlets_switch.store.textcrypt import seal_text, word_tokens

        conn.executemany(_INSERT_MSG, [(*m[:12], seal_text(m[12], m[0]), word_tokens(m[12]))
                                       for m in messages])
        ids = [m[0] for m in messages]
        lo, hi = min(ids), max(ids)
        if hi - lo + 1 == len(ids):
            # The batch's ids are distinct (they were just inserted), so they are
            # exactly this range: one statement for the batch.
            conn.execute(_INDEX_MSG, (lo, hi))
        else:
            conn.executemany(_INDEX_MSG, [(i, i) for i in ids])
    if deliveries:
        conn.executemany(_INSERT_DLV, deliveries)
    if counters:
        conn.executemany(_COUNTER, counters.items())
    if sent:
        conn.executemany(
            "UPDATE deliveries SET state = 'sent', sent_at = ? WHERE id = ? AND "
            "(state = 'queued' OR state = 'held')", [(at, i) for i, at in sent.items()])
    if done:
        # A delivery sent and acknowledged within one batch is written once.
        conn.executemany(
            "UPDATE deliveries SET state = ?, done_at = ?, sent_at = COALESCE(sent_at, ?) "
            "WHERE id = ?", done)
    if refused:
        conn.executemany("UPDATE messages SET status = 'rejected', reason = ? WHERE id = ?",
                         refused)


def write_batch(conn: sqlite3.Connection, batch: Batch) -> None:
    """:func:`write_rows` of a :class:`~nlets_switch.store.records.Batch`."""
    write_rows(conn, batch.messages, batch.deliveries, batch.counters, batch.sent, batch.done,
               batch.refused)


def batch_args(batch: Batch) -> dict[str, Any]:
    """The keyword arguments of :func:`write_rows` for ``batch``, rows as plain tuples."""
    return {"messages": _plain(batch.messages), "deliveries": _plain(batch.deliveries),
            "counters": batch.counters, "sent": batch.sent, "done": _plain(batch.done),
            "refused": _plain(batch.refused)}


def _plain(rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    return list(map(tuple, rows))


def load_owed(conn: sqlite3.Connection, link: str, after: int, limit: int) -> list[OwedRow]:
    """Open deliveries of ``link`` past id ``after``, oldest first, with their bodies."""
    # Imported here: the writer process starts without the row classes (dataclasses,
    # inspect), which only these reads need.
    from nlets_switch.store.records import OwedRow

    rows = conn.execute(
        "SELECT d.id, d.msg_id, d.link, d.receiver, d.addressed, d.output_no, d.priority, "
        "m.key, m.origin, m.received_at, m.input_no, m.control, m.body_start, "
        "ns_open(m.text, m.id), d.expires_at, d.sent_at "
        " FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        f"WHERE d.link = ? AND {_OPEN_D} AND d.id > ? "
        "ORDER BY d.id LIMIT ?", (link, after, limit)).fetchall()
    return [
        OwedRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11],
                r[13][r[12]:].rstrip("\r\n"), r[14], r[15])
        for r in rows
    ]


def expire_due(conn: sqlite3.Connection, now: float, limit: int = 1000) -> list[ExpiredRow]:
    """Open deliveries whose hold ended by ``now``: marked expired and returned."""
    from nlets_switch.store.records import ExpiredRow

    # Everything open that expired at or before the watermark is already
    # expired, so only the range past it is read (expires_at never changes).
    row = conn.execute("SELECT value FROM meta WHERE name = 'expiry_watermark'").fetchone()
    mark = float(row[0]) if row else 0.0
    rows = [ExpiredRow(*r) for r in conn.execute(
        "SELECT d.id, d.addressed, m.id, m.link, m.key, m.origin, m.control, "
        "ns_open(m.text, m.id) FROM deliveries d JOIN messages m ON m.id = d.msg_id "
        f"WHERE d.expires_at > ? AND d.expires_at <= ? AND {_OPEN_D} "
        "ORDER BY d.expires_at LIMIT ?", (mark, now, limit)).fetchall()]
    conn.executemany("UPDATE deliveries SET state = 'expired', done_at = ? WHERE id = ?",
                     [(now, r.delivery_id) for r in rows])
    if len(rows) < limit:
        conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES ('expiry_watermark', ?)",
                     (repr(now),))
    return rows


def held_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Deliveries still owed, per destination link (reads only ``deliveries_owed``)."""
    rows = conn.execute(
        f"SELECT link, COUNT(*) FROM deliveries WHERE {OPEN_WHERE} GROUP BY link").fetchall()
    return {str(link): int(n) for link, n in rows}


def recover(conn: sqlite3.Connection) -> Recovered:
    """The highest message and delivery ids ever handed out, and the counters."""
    from nlets_switch.store.records import Recovered

    mid = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
    did = conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()[0]
    counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    return Recovered(max(int(mid), int(counters.get("id:msg", 0))),
                     max(int(did), int(counters.get("id:dlv", 0))), counters)
