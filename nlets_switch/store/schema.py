"""Every table of the journal database, and the migrations that bring a file up to date.

The file's version is the ``meta`` row ``schema_version`` (the journal wrote
``1`` from its first release, so files made before this module count as
version 1). :func:`migrate` runs, in one write transaction, every step above
the file's version and records the new one; a file at a *newer* version than
:data:`SCHEMA_VERSION` is refused with a :class:`~nlets_switch.errors.StoreError`
that names it, because an older program could misread or damage it.

Steps are Python functions, not scripts: ``executescript`` would commit the
caller's transaction, and a step may need to look before it changes
something (a column added later). Every step is written so that running it on
a file that already has its tables does no harm: files of version 1 differ in
what the journal created lazily.

Versions:

1. The journal: ``meta``, ``messages``, ``deliveries`` (with ``held``),
   ``counters`` and their indexes.
2. ``held`` on journals made before it (they say version 1 too); the audit
   trail's ``audit`` table and the NL service's ``help_files``, which used to
   be created on first use.
3. The owed-deliveries index with an OR predicate (``deliveries_owed``).
4. ``remove_status``: the ORIs an operator took out of service (store/console.py).
5. ``orion``: ORION changes made on the wire (``TA``/``TU``/``TD``).
6. The word index of the message log's text search: ``messages.words`` (the
   blind tokens of each message's words, store/textcrypt.py) and the FTS5
   table ``message_words`` over it (external content, kept by triggers);
   rows already there are indexed under the key that sealed them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from nlets_switch.errors import CorruptRecord, StoreError
from nlets_switch.store._sqlite import database_file, has_table, translated, write_transaction
from nlets_switch.store.ddl import SQLITE_TYPES, table

#: The newest layout this program reads and writes.
SCHEMA_VERSION: Final = 6
VERSION_KEY: Final = "schema_version"

_V1: Final = (
    table("meta", SQLITE_TYPES),
    table("messages", SQLITE_TYPES),
    # Every index costs each insert; the message log's searches scan by id
    # (newest first, with OR over origin, link and deliveries), so only the
    # time index (retention pruning) is kept.
    "DROP INDEX IF EXISTS messages_link",
    "DROP INDEX IF EXISTS messages_origin",
    "CREATE INDEX IF NOT EXISTS messages_time ON messages(received_at)",
    table("deliveries", SQLITE_TYPES),
    # What is owed to a link, in id order (a sign-on's read-back). Written with
    # ORs, not IN: SQLite evaluates a partial index's IN list through a temporary
    # table built for every row written, which cost ~5 us per message (insert
    # and acknowledgement). A query uses it only if it repeats the predicate
    # exactly (store/tables.py OPEN_WHERE).
    "DROP INDEX IF EXISTS deliveries_open",
    "CREATE INDEX IF NOT EXISTS deliveries_owed ON deliveries(link, id) "
    "WHERE state = 'queued' OR state = 'held' OR state = 'sent'",
    "CREATE INDEX IF NOT EXISTS deliveries_msg ON deliveries(msg_id)",
    # Not partial: a state change then never touches it. The expiry sweep reads
    # only the range past its watermark (meta 'expiry_watermark').
    "DROP INDEX IF EXISTS deliveries_expiry",
    "CREATE INDEX IF NOT EXISTS deliveries_expires ON deliveries(expires_at)",
    table("counters", SQLITE_TYPES),
)

_V2: Final = (
    table("audit", SQLITE_TYPES),
    "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts)",
    table("help_files", SQLITE_TYPES),
)


_V4: Final = (
    # An operator's remove status (core/controls.py): keys is a comma-separated
    # list, NULL for every key.
    """CREATE TABLE IF NOT EXISTS remove_status (
        ori TEXT PRIMARY KEY,
        keys TEXT,
        since REAL NOT NULL,
        operator TEXT NOT NULL,
        reason TEXT NOT NULL
    )""",
)


def _v1(conn: sqlite3.Connection) -> None:
    for stmt in _V1:
        conn.execute(stmt)


def _v2(conn: sqlite3.Connection) -> None:
    cols = {r[1] for r in conn.execute("PRAGMA table_info(deliveries)")}
    if "held" not in cols:
        conn.execute("ALTER TABLE deliveries ADD COLUMN held INTEGER NOT NULL DEFAULT 0")
    for stmt in _V2:
        conn.execute(stmt)


def _v3(conn: sqlite3.Connection) -> None:
    # The open-deliveries index with an OR predicate instead of IN (see _V1).
    conn.execute("DROP INDEX IF EXISTS deliveries_open")
    conn.execute("CREATE INDEX IF NOT EXISTS deliveries_owed ON deliveries(link, id) "
                 "WHERE state = 'queued' OR state = 'held' OR state = 'sent'")


def _v4(conn: sqlite3.Connection) -> None:
    for stmt in _V4:
        conn.execute(stmt)


def _v5(conn: sqlite3.Connection) -> None:
    conn.execute(table("orion", SQLITE_TYPES))


#: The word index (version 6). External content: the tokens are stored once, in
#: ``messages.words``; ``detail=none`` and ``columnsize=0`` keep only what an
#: AND/OR of terms needs (no positions, no ranking). The writer indexes each
#: batch's messages itself (store/tables.py: one statement a batch, where a
#: trigger would cost a statement a row); the trigger takes deleted rows out
#: (retention).
_V6: Final = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS message_words USING fts5(words, content='messages', "
    "content_rowid='id', detail=none, columnsize=0)",
    "CREATE TRIGGER IF NOT EXISTS message_words_delete AFTER DELETE ON messages "
    "WHEN old.words IS NOT NULL BEGIN "
    "INSERT INTO message_words (message_words, rowid, words) "
    "VALUES ('delete', old.id, old.words); END",
)


def _v6(conn: sqlite3.Connection) -> None:
    # The tokens of rows already there, under the key that sealed each (ns_stored_words;
    # NULL, so not indexed, for a row whose key is not in the keyring).
    from nlets_switch.store import textcrypt

    textcrypt.install(conn)
    cols = {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
    if "words" not in cols:
        conn.execute("ALTER TABLE messages ADD COLUMN words TEXT")
    conn.execute("UPDATE messages SET words = ns_stored_words(text, id) WHERE words IS NULL")
    for stmt in _V6:
        conn.execute(stmt)
    conn.execute("INSERT INTO message_words (message_words) VALUES ('rebuild')")
    if textcrypt.current() is None and conn.execute(
            "SELECT 1 FROM messages WHERE words IS NULL LIMIT 1").fetchone():
        # Migrated by a process without the keyring (a tool): the sealed rows wait
        # for the next process that has it (the switch's start, index_pending).
        conn.execute("INSERT OR REPLACE INTO meta (name, value) VALUES (?, '1')",
                     (WORDS_PENDING,))


#: The ``meta`` row saying rows are waiting to be indexed (migrated without the keyring).
WORDS_PENDING: Final = "words_pending"


def index_pending(conn: sqlite3.Connection) -> int:
    """Index the rows a migration without the keyring left out, when this process has
    the keyring; returns how many got tokens. Cheap when nothing waits (one read)."""
    from nlets_switch.store import textcrypt

    if textcrypt.current() is None or not has_table(conn, "meta") or conn.execute(
            "SELECT 1 FROM meta WHERE name = ?", (WORDS_PENDING,)).fetchone() is None:
        return 0
    with write_transaction(conn):
        textcrypt.install(conn)
        n = conn.execute("UPDATE messages SET words = ns_stored_words(text, id) "
                         "WHERE words IS NULL").rowcount
        conn.execute("INSERT INTO message_words (message_words) VALUES ('rebuild')")
        conn.execute("DELETE FROM meta WHERE name = ?", (WORDS_PENDING,))
    return int(n)


#: (version, step): the step brings a file of version - 1 to ``version``.
MIGRATIONS: Final[tuple[tuple[int, Callable[[sqlite3.Connection], None]], ...]] = (
    (1, _v1),
    (2, _v2),
    (3, _v3),
    (4, _v4),
    (5, _v5),
    (6, _v6),
)


@translated
def schema_version(conn: sqlite3.Connection) -> int:
    """The file's schema version: 0 for a new (empty) file."""
    if not has_table(conn, "meta"):
        return 0
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (VERSION_KEY,)).fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise CorruptRecord(f"{database_file(conn)}: unreadable schema version "
                            f"{row[0]!r}") from None


def check_version(conn: sqlite3.Connection) -> int:
    """The file's version; raises StoreError, naming the file, when it is newer than
    this program understands."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{database_file(conn)}: made by a newer nlets-switch (schema version {version}; "
            f"this one understands up to {SCHEMA_VERSION}); upgrade nlets-switch or use "
            "another data directory")
    return version


@translated
def migrate(conn: sqlite3.Connection) -> int:
    """Bring the file up to :data:`SCHEMA_VERSION` (one write transaction, joining the
    caller's when open) and return it. Cheap when the file is up to date: one read."""
    if check_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    with write_transaction(conn):
        # Read again under the write lock: another process may have migrated meanwhile.
        version = check_version(conn)
        for target, step in MIGRATIONS:
            if target > version:
                step(conn)
        if version < SCHEMA_VERSION:
            conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = excluded.value",
                         (VERSION_KEY, str(SCHEMA_VERSION)))
    return SCHEMA_VERSION
