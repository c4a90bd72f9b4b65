"""Small SQLite helpers shared by the embedded store's modules (private to the store)."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from typing import ParamSpec, TypeVar

from nlets_switch.errors import StoreError

P = ParamSpec("P")
R = TypeVar("R")


def has_table(conn: sqlite3.Connection, name: str) -> bool:
    """Whether the database has table ``name`` (a read-only tool may meet an old file)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                        (name,)).fetchone() is not None


def database_file(conn: sqlite3.Connection) -> str:
    """The file behind ``conn`` (for error messages), or ``(memory)``."""
    try:
        for _, name, file in conn.execute("PRAGMA database_list"):
            if name == "main":
                return str(file) or "(memory)"
    except sqlite3.Error:
        pass
    return "(unknown file)"


@contextlib.contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction: the caller's when one is open (a journal operation runs
    inside the writer's batch), else a new ``BEGIN IMMEDIATE`` ... ``COMMIT``.

    IMMEDIATE takes the write lock up front, so a read-then-write (the audit
    chain's next MAC) cannot interleave with another process's.
    """
    if conn.in_transaction:
        yield
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def translated(fn: Callable[P, R]) -> Callable[P, R]:
    """Raise :class:`StoreError` for SQLite's errors, so that callers above the store
    never need to know the driver (a PostgreSQL store raises the same)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}") from e

    return wrapper


def like_pattern(text: str) -> str:
    """A ``LIKE ... ESCAPE '\\'`` pattern matching ``text`` anywhere, literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
