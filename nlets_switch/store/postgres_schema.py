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
from nlets_switch.store.ddl import POSTGRES_TYPES, table

#: The newest layout this program reads and writes.
SCHEMA_VERSION: Final = 7
VERSION_KEY: Final = "schema_version"
#: The advisory lock key migrations take (any fixed 64-bit number; "nlets-mg").
MIGRATION_LOCK: Final = 0x6E6C6574732D6D67

_V1: Final = (
    table("meta", POSTGRES_TYPES),
    table("messages", POSTGRES_TYPES),
    "CREATE INDEX IF NOT EXISTS messages_time ON messages(received_at)",
    "CREATE INDEX IF NOT EXISTS messages_reply_to ON messages(reply_to) "
    "WHERE reply_to IS NOT NULL",
    table("deliveries", POSTGRES_TYPES),
    # What is owed to a link, in id order (sign-on read-back).
    "CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries(link, id) "
    "WHERE state IN ('queued', 'held', 'sent')",
    "CREATE INDEX IF NOT EXISTS deliveries_msg ON deliveries(msg_id)",
    # Not partial, as in SQLite: a state change then never touches it.
    "CREATE INDEX IF NOT EXISTS deliveries_expires ON deliveries(expires_at)",
    table("counters", POSTGRES_TYPES),
    table("audit", POSTGRES_TYPES),
    "CREATE INDEX IF NOT EXISTS audit_ts ON audit(ts)",
    table("help_files", POSTGRES_TYPES),
)


def _v1(conn: Any) -> None:
    for stmt in _V1:
        conn.execute(stmt)


def _v2(conn: Any) -> None:
    # ORION changes made on the wire (TA/TU/TD), as in the embedded store's version 5.
    conn.execute(table("orion", POSTGRES_TYPES))


def _v3(conn: Any) -> None:
    # Cluster mode (store/postgres_cluster.py): the nodes, and which node holds which
    # ORI's link. Whether a node is alive is not a column: it is whether its
    # session still holds the node's advisory lock (lock_key), read from pg_locks.
    conn.execute("""CREATE TABLE IF NOT EXISTS nodes (
        node_id TEXT PRIMARY KEY,
        address TEXT NOT NULL,
        lock_key BIGINT NOT NULL,
        slot INTEGER NOT NULL UNIQUE,
        started_at DOUBLE PRECISION NOT NULL,
        heartbeat_at DOUBLE PRECISION NOT NULL,
        stopped_at DOUBLE PRECISION
    )""")
    conn.execute("""CREATE TABLE IF NOT EXISTS node_links (
        ori TEXT PRIMARY KEY,
        node_id TEXT NOT NULL,
        since DOUBLE PRECISION NOT NULL
    )""")
    conn.execute("CREATE INDEX IF NOT EXISTS node_links_node ON node_links(node_id)")


def _v4(conn: Any) -> None:
    # Message text sealed at rest and searched by blind tokens (store/textcrypt.py),
    # as in the embedded store: the words column of tokens (a tsvector made from the
    # tokens as they are, never parsed as language) under a GIN index. Rows written
    # before are sealed now (when a keyring is configured) and indexed under the key
    # that sealed them. The audit trail gets a chain per node. (Version 3 is the
    # cluster's node registry.)
    from nlets_switch.store.textcrypt import seal_text, stored_tokens

    conn.execute("ALTER TABLE messages ADD COLUMN IF NOT EXISTS words tsvector")
    after = -1
    while True:
        rows = conn.execute("SELECT id, text FROM messages WHERE id > %s AND words IS NULL "
                            "ORDER BY id LIMIT 1000", (after,)).fetchall()
        if not rows:
            break
        ids, texts, tokens = [], [], []
        for mid, text in rows:
            sealed = seal_text(text, int(mid))
            ids.append(int(mid))
            texts.append(sealed)
            tokens.append(stored_tokens(sealed, int(mid)) or "")
        conn.execute("UPDATE messages m SET text = u.text, "
                     "words = array_to_tsvector(string_to_array(u.w, ' ')) "
                     "FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS u(id, text, w) "
                     "WHERE m.id = u.id", (ids, texts, tokens))
        after = ids[-1]
    conn.execute("CREATE INDEX IF NOT EXISTS messages_words ON messages USING gin (words)")
    # One audit chain per node (store/postgres.py): the node that appended a record,
    # "" for a switch that is no cluster node (and every record before this version).
    # Ids count per chain, so the key is (node, id).
    conn.execute("ALTER TABLE audit ADD COLUMN IF NOT EXISTS node TEXT NOT NULL DEFAULT ''")
    conn.execute("ALTER TABLE audit DROP CONSTRAINT IF EXISTS audit_pkey")
    conn.execute("ALTER TABLE audit ADD PRIMARY KEY (node, id)")


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


def create_leis_tables(conn: Any) -> None:
    """Version 6: the DHS LEIS tables (store/postgres_leis.py), made if missing."""
    # The DHS LEIS data set (store/leis.py, store/postgres_leis.py), as the SQLite
    # file leis.sqlite holds it: one sealed record per person, the blind index of
    # keyed tags, and the build's seed, size, layout and keyring fingerprint. One
    # data set for every node: an agency's load through one is found through all.
    conn.execute("CREATE TABLE IF NOT EXISTS leis_meta (key TEXT PRIMARY KEY, "
                 "value TEXT NOT NULL)")
    conn.execute("""CREATE TABLE IF NOT EXISTS leis_person (
        id BIGINT PRIMARY KEY,
        origin TEXT NOT NULL,
        kid INTEGER NOT NULL,
        record BYTEA NOT NULL
    )""")
    conn.execute("""CREATE TABLE IF NOT EXISTS leis_term (
        tag BYTEA NOT NULL,
        id BIGINT NOT NULL,
        PRIMARY KEY (tag, id)
    )""")
    conn.execute("CREATE INDEX IF NOT EXISTS leis_term_id ON leis_term (id)")
    conn.execute("CREATE INDEX IF NOT EXISTS leis_person_origin ON leis_person (origin)")


def _v7(conn: Any) -> None:
    # Cluster mode: failed sign-ons and lock-outs every node shares
    # (store/postgres_signon.py): per (ORI, source address), and per ORI with source
    # ''. Times are the database's clock. Never a credential. (Version 6 is the
    # LEIS data's.)
    conn.execute("""CREATE TABLE IF NOT EXISTS signon_failures (
        ori TEXT NOT NULL,
        source TEXT NOT NULL,
        failures INTEGER NOT NULL,
        locked_until DOUBLE PRECISION NOT NULL DEFAULT 0,
        PRIMARY KEY (ori, source)
    )""")
    # unlock ADDRESS finds an address's rows without a scan.
    conn.execute("CREATE INDEX IF NOT EXISTS signon_failures_source "
                 "ON signon_failures(source)")


#: (version, step): the step brings a database of version - 1 to ``version``.
MIGRATIONS: Final[tuple[tuple[int, Callable[[Any], None]], ...]] = (
    (1, _v1), (2, _v2), (3, _v3), (4, _v4), (5, _v5), (6, create_leis_tables), (7, _v7))


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
