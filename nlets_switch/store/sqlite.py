"""The embedded store: every protocol of :mod:`nlets_switch.store.base` on one SQLite file.

Three ways in:

* :func:`open_store` opens the journal file itself (tools, the monitor's
  read-only counts): read-only, checking the schema version; or writable,
  bringing the file up to date first. Either refuses a file made by a newer
  version, naming it.
* :func:`journal_op` turns a function of the store into an operation for the
  switch's :class:`~nlets_switch.store.journal.Journal`, so it runs on the
  writer's connection, inside its batch, in submission order.
* :func:`as_store` accepts either a store or a bare SQLite connection (the
  connection a journal operation is given, or one a test opened), so the
  functions of ``ops/`` work with both without knowing SQLite.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import TypeAlias, TypeVar

from nlets_switch.errors import StoreError
from nlets_switch.store import textcrypt
from nlets_switch.store._sqlite import write_transaction
from nlets_switch.store.audit import SqliteAudit
from nlets_switch.store.base import Store
from nlets_switch.store.help import SqliteHelp
from nlets_switch.store.msglog import SqliteMessageLog
from nlets_switch.store.orion import SqliteOrion
from nlets_switch.store.retention import SqliteRetention
from nlets_switch.store.schema import check_version, migrate
from nlets_switch.store.tables import connect

#: A SQLite connection, for the type hints of code that passes one through.
Connection: TypeAlias = sqlite3.Connection

S = TypeVar("S")
T = TypeVar("T")


class SqliteStore(SqliteMessageLog, SqliteAudit, SqliteRetention, SqliteHelp, SqliteOrion):
    """:class:`~nlets_switch.store.base.Store` on one SQLite connection.

    Wrapping is free (no query runs), so a journal operation may wrap the
    writer's connection for each call. Only a store made by :func:`open_store`
    closes its connection.
    """

    __slots__ = ("_owned", "conn")

    def __init__(self, conn: sqlite3.Connection, *, owned: bool = False) -> None:
        self.conn = conn
        self._owned = owned
        # Message text is read through ns_open (store/textcrypt.py), whoever opened conn.
        textcrypt.install(conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction, joining the caller's when one is open."""
        try:
            with write_transaction(self.conn):
                yield
        except sqlite3.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}") from e

    def close(self) -> None:
        """Close the connection if this store opened it."""
        if self._owned:
            self.conn.close()

    def __enter__(self) -> SqliteStore:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def open_store(path: Path, *, readonly: bool = False) -> SqliteStore:
    """The store in journal file ``path``; close it (or use it as a context manager).

    Read-only: works beside a running switch (WAL), changes nothing, and
    refuses a newer file. Writable: creates the file if needed and migrates it
    to the current schema. Raises :class:`StoreError` naming the file.
    """
    try:
        conn = connect(Path(path), readonly=readonly)
    except sqlite3.Error as e:
        raise StoreError(f"{path}: cannot open: {e}") from e
    try:
        if readonly:
            check_version(conn)
        else:
            migrate(conn)
    except BaseException:
        conn.close()
        raise
    return SqliteStore(conn, owned=True)


def as_store(db: S | sqlite3.Connection) -> S | SqliteStore:
    """``db`` itself, or a :class:`SqliteStore` on it when it is a SQLite connection."""
    if isinstance(db, sqlite3.Connection):
        return SqliteStore(db)
    return db


def journal_op(fn: Callable[[Store], T]) -> Callable[[sqlite3.Connection], T]:
    """An operation for :meth:`Journal.submit`/:meth:`Journal.call` that runs ``fn``
    against the store on the writer's connection, inside its batch.

    A ``functools.partial`` of a module-level function, not a closure: the
    writer is a process of its own, and operations cross to it pickled.
    """
    return functools.partial(_on_store, fn)


def _on_store(fn: Callable[[Store], T], conn: sqlite3.Connection) -> T:
    # as_store: a PostgreSQL journal hands its operations a store already.
    return fn(as_store(conn))
