"""The tables both stores keep, written once and rendered in each database's types.

SQLite (:mod:`nlets_switch.store.schema`) and PostgreSQL
(:mod:`nlets_switch.store.postgres_schema`) hold the same rows; what differs
is the type of ids and counters (SQLite's ``INTEGER``, which makes an
``INTEGER PRIMARY KEY`` the rowid; PostgreSQL's ``BIGINT``) and of times
(``REAL``; ``DOUBLE PRECISION``: POSIX seconds either way). Indexes stay in
each schema module: what the planners need of them differs (SQLite's
partial index with ORs, PostgreSQL's with ``IN``). No SQL runs here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["POSTGRES_TYPES", "SQLITE_TYPES", "TABLES", "Types", "table"]


@dataclass(frozen=True, slots=True)
class Types:
    """The column types of one database."""

    #: Ids, counters and other 64-bit integers.
    big: str
    #: POSIX times.
    real: str


SQLITE_TYPES: Final = Types("INTEGER", "REAL")
POSTGRES_TYPES: Final = Types("BIGINT", "DOUBLE PRECISION")

#: Each shared table's ``CREATE TABLE IF NOT EXISTS``, with ``{big}`` and ``{real}``.
TABLES: Final = {
    "meta": "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "messages": """CREATE TABLE IF NOT EXISTS messages (
        id {big} PRIMARY KEY,
        received_at {real} NOT NULL,
        link TEXT NOT NULL,
        key TEXT,
        origin TEXT,
        destinations TEXT,
        control TEXT,
        input_no INTEGER,
        status TEXT NOT NULL,
        reason TEXT,
        reply_to {big},
        body_start INTEGER NOT NULL DEFAULT 0,
        text TEXT NOT NULL
    )""",
    "deliveries": """CREATE TABLE IF NOT EXISTS deliveries (
        id {big} PRIMARY KEY,
        msg_id {big} NOT NULL,
        link TEXT NOT NULL,
        receiver TEXT NOT NULL,
        addressed TEXT NOT NULL,
        output_no INTEGER NOT NULL,
        priority INTEGER NOT NULL,
        state TEXT NOT NULL,
        created_at {real} NOT NULL,
        expires_at {real} NOT NULL,
        sent_at {real},
        done_at {real},
        held INTEGER NOT NULL DEFAULT 0
    )""",
    "counters": "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, "
                "value {big} NOT NULL)",
    # The audit trail (ops/audit.py): ts is ISO 8601 UTC text, so it sorts.
    "audit": """CREATE TABLE IF NOT EXISTS audit (
        id {big} PRIMARY KEY,
        ts TEXT NOT NULL,
        component TEXT NOT NULL,
        type TEXT NOT NULL,
        subject TEXT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT NOT NULL,
        mac TEXT NOT NULL
    )""",
    # The NL service's help files (PROTOCOL part 5).
    "help_files": """CREATE TABLE IF NOT EXISTS help_files (
        state TEXT NOT NULL,
        file TEXT NOT NULL,
        text TEXT NOT NULL,
        updated_at {real} NOT NULL,
        updated_by TEXT NOT NULL,
        PRIMARY KEY (state, file)
    )""",
    # ORION changes made on the wire (TA/TU/TD).
    "orion": """CREATE TABLE IF NOT EXISTS orion (
        ori TEXT PRIMARY KEY,
        record TEXT,
        updated_at {real} NOT NULL,
        updated_by TEXT NOT NULL
    )""",
}


def table(name: str, types: Types) -> str:
    """The ``CREATE TABLE`` of shared table ``name`` in ``types``."""
    return TABLES[name].format(big=types.big, real=types.real)
