"""The PostgreSQL store's tables, and the versioned migrations that bring a database up to date.

The same tables as the embedded store (:mod:`nlets_switch.store.schema`), in
PostgreSQL's types: ids ``BIGINT``, times ``DOUBLE PRECISION`` (POSIX
seconds, as the rows carry them), text ``TEXT``. The database's version is
the ``meta`` row ``schema_version``; its history is its own (version 1 is
the whole of today's layout), independent of the SQLite file's.

:func:`migrate` runs every step above the database's version in one
transaction, under a transaction-level advisory lock so that two nodes (or
a node and ``nlets-switch store migrate``) starting together do not both
migrate. A database at a *newer* version than :data:`SCHEMA_VERSION` is
refused with a :class:`~nlets_switch.errors.StoreError` and nothing is
written.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from nlets_switch.errors import CorruptRecord, StoreError

#: The newest layout this program reads and writes.
SCHEMA_VERSION: Final = 5
VERSION_KEY: Final = "schema_version"
#: The advisory lock key migrations take (any fixed 64-bit number; "nlets-mg").
MIGRATION_LOCK: Final = 0x6E6C6574732D6D67

_V1: Final = (
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS messages (
        id BIGINT PRIMARY KEY,
        received_at DOUBLE PRECISION NOT NULL,
        link TEXT NOT NULL,
        key TEXT,
        origin TEXT,
        destinations TEXT,
        control TEXT,
        input_no INTEGER,
        status TEXT NOT NULL,
        reason TEXT,
        reply_to BIGINT,
        body_start INTEGER NOT NULL DEFAULT 0,
        text TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS messages_time ON messages(received_at)",
    "CREATE INDEX IF NOT EXISTS messages_reply_to ON messages(reply_to) "
    "WHERE reply_to IS NOT NULL",
    """CREATE TABLE IF NOT EXISTS deliveries (
        id BIGINT PRIMARY KEY,
        msg_id BIGINT NOT NULL,
        link TEXT NOT NULL,
        receiver TEXT NOT NULL,
        addressed TEXT NOT NULL,
        output_no INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        expires_at DOUBLE PRECISION NOT NULL,
        sent_at DOUBLE PRECISION,
        done_at DOUBLE PRECISION,
        held INTEGER NOT NULL DEFAULT 0
    )""",
    # What is owed to a link, in id order (sign-on read-back).
    "CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(link, id) "
    "WHERE state IN ('queued', 'held', 'sent')",
    "CREATE INDEX IF NOT EXISTS deliveries_msg ON deliveries(msg_id)",
    # Not partial, as in SQLite: a state change then never touches it.
    "CREATE INDEX IF NOT EXISTS deliveries_expires ON deliveries(expires_at)",
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
    # The audit trail (ops/audit.py): ts is ISO 8601 UTC text, so it sorts.
    """CREATE TABLE IF NOT EXISTS audit (
        id BIGINT PRIMARY KEY,
        ts TEXT NOT NULL,
        component TEXT NOT NULL,
        type TEXT NOT NULL,
        subject TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        mac TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts)",
    # The NL service's help files (PROTOCOL part 5).
    """CREATE TABLE IF NOT EXISTS help_files (
        state TEXT NOT NULL,
        file TEXT NOT NULL,
        text TEXT NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (state, file)
    )""",
)


def _v1(conn: Any) -> None:
    for stmt in _V1:
        conn.execute(stmt)


def _v2(conn: Any) -> None:
    # ORION changes made on the wire (TA/TU/TD), as in the embedded store's version 4.
    conn.execute("""CREATE TABLE IF NOT EXISTS orion (
        ori TEXT PRIMARY KEY,
        record TEXT,
        updated_at DOUBLE PRECISION NOT NULL,
        updated_by TEXT NOT NULL
    )""")


def _v5(conn: Any) -> None:
    # The operator console (store/postgres_console.py), as in the embedded store's
    # version 4: an operator's remove status (keys comma-separated, NULL for every
    # key), and the intervention queue's deliveries found without a scan.
    conn.execute("""CREATE TABLE IF NOT EXISTS remove_status (
        ori TEXT PRIMARY KEY,
        keys TEXT,
        since DOUBLE PRECISION NOT NULL,
        operator TEXT NOT NULL,
        reason TEXT NOT NULL
    )""")
    conn.execute("CREATE INDEX IF NOT EXISTS deliveries_review ON deliveries(link, id) "
                 "WHERE state = 'review'")


#: (version, step): the step brings a database of version - 1 to ``version``.
#: (Versions 3 and 4 come from other work on the store; each step stands alone.)
MIGRATIONS: Final[tuple[tuple[int, Callable[[Any], None]], ...]] = (
    (1, _v1), (2, _v2), (5, _v5))


def schema_version(conn: Any) -> int:
    """The database's schema version: 0 for a database without the switch's tables."""
    if conn.execute("SELECT to_regclass('meta')").fetchone()[0] is None:
        return 0
    row = conn.execute("SELECT value FROM meta WHERE name = %s", (VERSION_KEY,)).fetchone()
    if row is None:
        return 0
    try:
        return int(row[0])
    except (TypeError, ValueError):
        raise CorruptRecord(f"unreadable schema version {row[0]!r} in the database") from None


def check_version(conn: Any, where: str) -> int:
    """The database's version; raises StoreError, naming ``where``, when it is newer
    than this program understands."""
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where}: made by a newer nlets-switch (schema version {version}; this one "
            f"understands up to {SCHEMA_VERSION}); upgrade nlets-switch")
    return version


def migrate(conn: Any, where: str) -> tuple[int, int]:
    """Bring the database up to :data:`SCHEMA_VERSION`; returns (version before, after).

    ``conn`` is a psycopg connection in autocommit mode (outside a
    transaction). Cheap when up to date: one read, nothing written.
    """
    before = check_version(conn, where)
    if before == SCHEMA_VERSION:
        return before, before
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        # Read again under the lock: another node may have migrated meanwhile.
        version = check_version(conn, where)
        for target, step in MIGRATIONS:
            if target > version:
                step(conn)
        if version < SCHEMA_VERSION:
            conn.execute("INSERT INTO meta (name, value) VALUES (%s, %s) ON CONFLICT (name) "
                         "DO UPDATE SET value = excluded.value",
                         (VERSION_KEY, str(SCHEMA_VERSION)))
    return before, SCHEMA_VERSION
