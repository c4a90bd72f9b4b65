"""The DHS LEIS person tables: built once, then read by the LEIS service.

The store owns the tables and every query on them; the search rules
(ranking, phonetic matching, what the search keys are) and the synthetic
generator live in :mod:`nlets_switch.services.leis`, which hands the store
typed rows (:class:`PersonRow`) and asks for the rows holding search keys.

The tables live in one of two homes, and :class:`LeisStore` is the same
code for both: every statement is written once, and a small *dialect*
(:class:`LeisDb`) says how to run it there. The embedded default is one
SQLite file (:class:`SqliteLeisDb`, ``DATA_DIR/leis.sqlite``); with a
PostgreSQL store the tables are the database's ``leis_*`` tables
(:mod:`nlets_switch.store.postgres_leis`), shared by every node of a cluster.

Nothing in either is clear criminal-justice information (issue 11, CJIS
Security Policy 5.10.1.2): each person is one record sealed with
AES-256-GCM, bound to its row id, under the message-text keyring; searches
go through a keyed blind index of the search keys
(:mod:`nlets_switch.store.leiscrypt`), and the service decrypts the
candidate rows and applies its rules to them. A file of the clear-text
layout (schema 1) is migrated at the first open: persons an agency loaded
are sealed, the rest is built again, and the file is vacuumed and its WAL
truncated so that no clear page is left behind.

Every method is synchronous and may be called from any thread (one lock
serialises them); the asyncio side calls them with ``asyncio.to_thread``.
Nothing here logs: names, dates of birth and identifiers are
criminal-justice information.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, Protocol

from nlets_switch.errors import StoreError
from nlets_switch.store.leis_rows import (
    Contact,
    Identifier,
    Location,
    Person,
    PersonRow,
    Record,
    pack,
    unpack,
)
from nlets_switch.store.leis_sqlite import SqliteLeisDb
from nlets_switch.store.leiscrypt import LeisCipher, LeisKeyError

__all__ = [
    "DB_NAME",
    "FIXED",
    "GENERATED",
    "LOADED",
    "SCHEMA_VERSION",
    "Contact",
    "Identifier",
    "LeisDb",
    "LeisKeyError",
    "LeisStore",
    "Location",
    "Person",
    "PersonRow",
    "Record",
    "SqliteLeisDb",
    "pack",
    "unpack",
]

#: Bumped whenever the table layout changes; an older file is rebuilt (from
#: 1, the clear-text layout, the persons an agency loaded are carried over).
SCHEMA_VERSION: Final = 2

#: The file name of the data set inside the switch's data directory.
DB_NAME: Final = "leis.sqlite"

#: Where a person came from (the ``person.origin`` column): generated from
#: the seed, one of the fixed test records, or loaded by an agency.
GENERATED: Final = "generated"
FIXED: Final = "fixed"
LOADED: Final = "loaded"


# --------------------------------------------------------------------------
# Dialects: where the tables live.
# --------------------------------------------------------------------------


class LeisDb(Protocol):
    """How :class:`LeisStore`'s statements run in one database.

    Statements use ``?`` placeholders and the table names :attr:`person`,
    :attr:`term` and :attr:`meta` (``meta`` has columns ``key`` and ``value``;
    ``person`` ``id, origin, kid, record``; ``term`` ``tag, id``).
    """

    person: str
    term: str
    meta: str
    #: Where the data is, for messages (a file, a redacted URL).
    where: str
    #: How to start again from nothing, for the wrong-keyring message.
    reset_hint: str
    #: The file, for the embedded store; None in a database server.
    path: Path | None

    def rows(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement that returns none)."""

    def insert(self, table: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Add many rows to ``table`` (all its columns, in order)."""

    def write(self) -> contextlib.AbstractContextManager[None]:
        """One transaction that no other writer (process or node) runs beside."""

    def has_tables(self) -> bool:
        """Whether the tables exist (a new file has none)."""

    def reset(self) -> None:
        """Inside :meth:`write`: empty tables of this layout, whatever was there."""

    def built(self) -> None:
        """Inside :meth:`write`, after a build's bulk insert (indexes)."""

    def purge(self) -> None:
        """After a migration from the clear-text layout: leave no page of it."""

    def close(self) -> None:
        """Close the connection."""


def _same_build(meta: Mapping[str, str], wanted: Mapping[str, str]) -> bool:
    """Whether data with ``meta`` is the build ``wanted`` describes, complete."""
    return all(meta.get(k) == v for k, v in wanted.items()) and not meta.get("purge")


def _chunks(items: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --------------------------------------------------------------------------
# The store.
# --------------------------------------------------------------------------


class LeisStore:
    """The DHS LEIS person tables, sealed under ``cipher``, in the database ``db`` speaks for.

    Open the SQLite file with :meth:`open` (PostgreSQL:
    :func:`nlets_switch.store.postgres_leis.open_leis`), fill it with
    :meth:`ensure_built`. Every method takes the store's lock; :meth:`locked`
    holds it across several calls, so that a search sees one state of the data.
    """

    def __init__(self, db: LeisDb, cipher: LeisCipher) -> None:
        """Use :meth:`open`; this wraps an already prepared database."""
        self._db = db
        self.cipher = cipher
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path, cipher: LeisCipher) -> LeisStore:
        """Open (or create) the SQLite file at ``path``; its tables may not exist yet."""
        return cls(SqliteLeisDb.open(path), cipher)

    @property
    def path(self) -> Path | None:
        """The SQLite file, or None when the tables are in a database server."""
        return self._db.path

    @property
    def where(self) -> str:
        """Where the data is, for messages: the file, or the database's redacted URL."""
        return self._db.where

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock across several calls (it is re-entrant)."""
        with self._lock:
            yield

    # -- building ----------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        if not self._db.has_tables():
            return {}
        return {str(k): str(v) for k, v in self._db.rows(
            f"SELECT key, value FROM {self._db.meta}")}

    def _check_keyring(self, meta: Mapping[str, str]) -> None:
        """Data indexed under another keyring: say so, never rebuild over it
        (the records an agency loaded would be lost)."""
        if meta.get("schema") == str(SCHEMA_VERSION) and \
                meta.get("index", self.cipher.fingerprint()) != self.cipher.fingerprint():
            raise LeisKeyError(
                f"{self._db.where} was sealed under another keyring than "
                f"{self.cipher.ring.path} (its first key differs): restore that keyring "
                f"(security.text_key_file), or {self._db.reset_hint} to build the "
                "synthetic data again (persons loaded by agencies are then lost)")

    def ensure_built(self, wanted: Mapping[str, str],
                     batches: Callable[[frozenset[str]], Iterable[Sequence[PersonRow]]],
                     row: Callable[[Person, str], PersonRow],
                     source: LeisStore | None = None) -> bool:
        """Build the tables unless they were built for ``wanted`` and this layout.

        ``wanted`` describes the build (the seed and the size); when the
        meta table says otherwise, every person that was not loaded
        by an agency is deleted and ``batches(loaded_dins)`` gives the rows
        to insert, batch by batch, all in one transaction. Records an agency
        loaded survive a rebuild for another seed or size. A file of the
        clear-text layout (schema 1) keeps its loaded persons too (``row``
        makes their rows), and is vacuumed after so that nothing of it is left;
        another layout is rebuilt from nothing. The build runs under the
        database's write lock (SQLite's, or an advisory lock on PostgreSQL),
        so processes (or cluster nodes) opening the data together build it
        once: the others wait and find it built. Returns whether this call
        built. Raises :class:`LeisKeyError` when the data was sealed under
        another keyring. ``source``, data built for ``wanted`` under the same
        keyring (the build cache), is copied row for row instead of building
        when nothing was loaded here (a record is bound to its row id only).
        """
        wanted = {"schema": str(SCHEMA_VERSION), **wanted,
                  "index": self.cipher.fingerprint()}
        with self._lock:
            meta = self._meta()
            self._check_keyring(meta)
            if all(meta.get(k) == v for k, v in wanted.items()):
                if meta.get("purge"):
                    self._db.purge()
                return False
            purge = False
            with self._db.write():
                meta = self._meta()
                self._check_keyring(meta)
                if all(meta.get(k) == v for k, v in wanted.items()):
                    return False
                kept: list[PersonRow] = []
                if meta.get("schema") != wanted["schema"]:
                    if meta.get("schema") == "1":
                        kept = [row(p, LOADED) for p in self._v1_loaded()]
                    purge = bool(meta)  # a file that held tables
                    self._db.reset()
                if source is not None and not _same_build(source._meta(), wanted):
                    source = None  # a cache of another build or keyring: build
                self._build(batches, kept, source)
                purge = purge or bool(meta.get("purge"))
                if purge:
                    # Done after the commit; until then, at every open.
                    wanted["purge"] = "pending"
                self._db.rows(f"DELETE FROM {self._db.meta}")
                self._db.insert(self._db.meta, sorted(wanted.items()))
            if purge:
                self._db.purge()
            return True

    def _build(self, batches: Callable[[frozenset[str]], Iterable[Sequence[PersonRow]]],
               kept: Sequence[PersonRow], source: LeisStore | None = None) -> None:
        db = self._db
        loaded = {r.din for _, r in self._where("origin = ?", (LOADED,))}
        loaded.update(r.person.din for r in kept)
        db.rows(f"DELETE FROM {db.term} WHERE id IN "
                f"(SELECT id FROM {db.person} WHERE origin != ?)", (LOADED,))
        db.rows(f"DELETE FROM {db.person} WHERE origin != ?", (LOADED,))
        if source is not None and not loaded:
            src = source._db
            db.insert(db.person, src.rows(f"SELECT id, origin, kid, record FROM {src.person}"))
            db.insert(db.term, src.rows(f"SELECT tag, id FROM {src.term}"))
        else:
            for batch in batches(frozenset(loaded)):
                self._insert(batch)
            self._insert(kept)
        db.built()

    def _insert(self, rows: Sequence[PersonRow]) -> None:
        """Seal and index ``rows`` on new row ids (inside the caller's transaction)."""
        db = self._db
        ((top,),) = db.rows(f"SELECT coalesce(max(id), 0) FROM {db.person}")
        persons: list[tuple[int, str, int, bytes]] = []
        terms: list[tuple[bytes, int]] = []
        tag = self.cipher.tag
        for n, r in enumerate(rows, int(top) + 1):
            kid, blob = self.cipher.seal(n, pack(r.person))
            persons.append((n, r.origin, kid, blob))
            terms.extend((t, n) for t in {tag(field, value) for field, value in r.terms})
        db.insert(db.person, persons)
        terms.sort()  # fewer page changes in the index than in random order
        db.insert(db.term, terms)

    def _delete(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            self._db.rows(f"DELETE FROM {self._db.term} WHERE id IN ({marks})", tuple(chunk))
            self._db.rows(f"DELETE FROM {self._db.person} WHERE id IN ({marks})", tuple(chunk))

    def replace(self, rows: Sequence[PersonRow]) -> None:
        """Insert persons in one transaction, replacing those with the same DIN."""
        with self._lock, self._db.write():
            self._delete([row_id for r in rows for row_id in self._ids_of(r.person.din)])
            self._insert(rows)

    def _v1_loaded(self) -> list[Person]:
        """The persons an agency loaded into a file of the clear-text layout (schema 1)."""
        db = self._db
        out = []
        for din, name, sex, pob, status, remarks in db.rows(
                "SELECT din, name, sex, pob, status, remarks FROM person WHERE origin = ? "
                "ORDER BY rowid", (LOADED,)):
            def rows(sql: str, din: str = din) -> list[tuple[Any, ...]]:
                return db.rows(sql + " WHERE din = ? ORDER BY seq", (din,))
            out.append(Person(
                din=din, name=name, sex=sex, pob=pob, status=status, remarks=remarks,
                aliases=tuple(r[1] for r in rows("SELECT alias, full FROM name") if r[0]),
                dobs=tuple(r[0] for r in rows("SELECT dob FROM dob")),
                identifiers=tuple(Identifier(*r) for r in rows("SELECT kind, value FROM ident")),
                locations=tuple(Location(*r) for r in rows(
                    "SELECT address, city, state, since, until FROM location")),
                contacts=tuple(Contact(*r) for r in rows(
                    "SELECT date, component, kind, place FROM contact"))))
        return out

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    def backup_to(self, target: Path) -> None:
        """A consistent copy of the whole SQLite file at ``target`` (SQLite's backup API)."""
        if not isinstance(self._db, SqliteLeisDb):
            raise StoreError(f"{self._db.where}: only the SQLite file can be copied")
        with self._lock:
            dst = sqlite3.connect(target)
            try:
                self._db.conn.backup(dst)
            finally:
                dst.close()

    def __enter__(self) -> LeisStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ---------------------------------------------------------------

    def count(self) -> int:
        """How many persons the data set holds."""
        with self._lock:
            ((n,),) = self._db.rows(f"SELECT count(*) FROM {self._db.person}")
        return int(n)

    def find(self, terms: Iterable[tuple[str, str]]) -> set[int]:
        """The row ids of persons holding any of the search keys ``terms``
        (``(field, value)`` pairs, as :class:`PersonRow` has them).

        A candidate set: the caller checks each person it reads against its
        own rule (two keys share a tag only by a 128-bit collision, and a
        person matches through any of its names or addresses).
        """
        tags = sorted(self.cipher.tags(terms))
        if not tags:
            return set()
        with self._lock:
            return {int(r[0]) for r in self._db.rows(
                f"SELECT id FROM {self._db.term} WHERE tag IN ({','.join('?' * len(tags))})",
                tags)}

    def records(self, ids: Iterable[int]) -> list[tuple[int, Record]]:
        """The persons on rows ``ids``, decrypted, in row order.

        Raises :class:`LeisKeyError` for a row that does not open."""
        wanted = sorted(ids)
        out: list[tuple[int, Record]] = []
        with self._lock:
            for chunk in _chunks(wanted):
                out.extend(self._where(f"id IN ({','.join('?' * len(chunk))})", tuple(chunk)))
        out.sort(key=lambda item: item[0])
        return out

    def _where(self, where: str, args: Sequence[object]) -> list[tuple[int, Record]]:
        """``(row id, record)`` of the rows ``where`` selects, decrypted."""
        opened = self.cipher.open
        return [(int(row_id), unpack(opened(int(row_id), int(kid), bytes(blob))))
                for row_id, kid, blob in self._db.rows(
                    f"SELECT id, kid, record FROM {self._db.person} WHERE {where}", args)]

    def _ids_of(self, din: str) -> list[int]:
        return [row_id for row_id, r in self.records(self.find([("din", din)])) if r.din == din]

    def get(self, din: str) -> Person | None:
        """The full record of one person (``din`` as stored), or None."""
        for _, record in self.records(self.find([("din", din)])):
            if record.din == din:
                return record.person()
        return None
