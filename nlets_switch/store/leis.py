"""The DHS LEIS person tables: one SQLite file, built once, then read by the LEIS service.

The store owns the tables and every query on them; the search rules
(ranking, phonetic matching, what the search keys are) and the synthetic
generator live in :mod:`nlets_switch.services.leis`, which hands the store
typed rows (:class:`PersonRow`) and asks for the rows holding search keys.

Nothing in the file is clear criminal-justice information (issue 11, CJIS
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
import json
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

from nlets_switch.store.leiscrypt import LeisCipher, LeisKeyError

__all__ = [
    "DB_NAME",
    "FIXED",
    "GENERATED",
    "LOADED",
    "SCHEMA_VERSION",
    "Contact",
    "Identifier",
    "LeisKeyError",
    "LeisStore",
    "Location",
    "Person",
    "PersonRow",
    "Record",
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
# Typed rows.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier: ``kind`` is ARN, SOC, PPN or FBI."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Location:
    """A known location; ``since``/``until`` are CCYYMMDD or empty (unknown /
    still there)."""

    address: str
    city: str
    state: str
    since: str = ""
    until: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """A prior DHS contact: when, which component, what kind, where."""

    date: str
    component: str
    kind: str
    place: str


@dataclass(frozen=True, slots=True)
class Person:
    """One person in the DHS data set.

    ``name`` and each alias are ``LAST,FIRST MIDDLE``; ``dobs`` are CCYYMMDD,
    the first being the one a summary shows.
    """

    din: str
    name: str
    dobs: tuple[str, ...]
    sex: str = "U"
    pob: str = "XX"
    aliases: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    locations: tuple[Location, ...] = ()
    contacts: tuple[Contact, ...] = ()
    status: str = ""
    remarks: str = ""

    def ids(self, kind: str) -> tuple[str, ...]:
        """The values of the identifiers of one kind."""
        return tuple(i.value for i in self.identifiers if i.kind == kind)

    @property
    def arn(self) -> str:
        """The first alien registration number, or empty."""
        found = self.ids("ARN")
        return found[0] if found else ""


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person ready for the tables, with the search keys the service computed.

    ``terms`` are ``(field, value)`` pairs (the phonetic codes and spelling of
    each last name, each DOB, each identifier, each address word, the DIN):
    the store keeps only their keyed tags (:mod:`nlets_switch.store.leiscrypt`).
    """

    person: Person
    origin: str
    terms: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------
# Records.
# --------------------------------------------------------------------------


def pack(p: Person) -> bytes:
    """A person as the bytes a sealed record holds (compact JSON)."""
    return json.dumps(
        [p.din, p.name, p.dobs, p.sex, p.pob, p.aliases,
         [[i.kind, i.value] for i in p.identifiers],
         [[loc.address, loc.city, loc.state, loc.since, loc.until] for loc in p.locations],
         [[c.date, c.component, c.kind, c.place] for c in p.contacts],
         p.status, p.remarks], separators=(",", ":")).encode()


class Record(NamedTuple):
    """A decrypted person as searches read it: the JSON of :func:`pack`, as is.

    Made for every candidate of a search, so it is a plain tuple (a
    :class:`Person`, frozen dataclasses all the way down, costs several
    times more); :meth:`person` makes the typed row for those that are kept.
    """

    din: str
    name: str
    dobs: list[str]
    sex: str
    pob: str
    aliases: list[str]
    identifiers: list[list[str]]     # [kind, value]
    locations: list[list[str]]       # [address, city, state, since, until]
    contacts: list[list[str]]        # [date, component, kind, place]
    status: str
    remarks: str

    def person(self) -> Person:
        """The typed row."""
        return Person(din=self.din, name=self.name, dobs=tuple(self.dobs), sex=self.sex,
                      pob=self.pob, aliases=tuple(self.aliases),
                      identifiers=tuple(Identifier(*i) for i in self.identifiers),
                      locations=tuple(Location(*loc) for loc in self.locations),
                      contacts=tuple(Contact(*c) for c in self.contacts),
                      status=self.status, remarks=self.remarks)


def unpack(data: bytes) -> Record:
    """The record :func:`pack` made ``data`` from."""
    return Record(*json.loads(data))


# --------------------------------------------------------------------------
# The tables.
# --------------------------------------------------------------------------

# person: one sealed record per person (kid: the keyring id it is sealed
# under); term: the blind index, one row per (tag, person), the tag being a
# keyed HMAC of a search key, never the key itself.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS person (
    id INTEGER PRIMARY KEY, origin TEXT NOT NULL, kid INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS term (
    tag BLOB NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (tag, id)) WITHOUT ROWID;
"""

# Created after the bulk insert of a fresh build: filling indexed tables
# row by row is slower than indexing them once.
_INDEXES = """
CREATE INDEX IF NOT EXISTS term_id ON term (id);
CREATE INDEX IF NOT EXISTS person_origin ON person (origin);
"""

#: The tables of the clear-text layout (schema 1), dropped when it is migrated.
_V1_TABLES = ("name", "dob", "ident", "location", "contact")


def _chunks(items: Sequence[int], size: int = 500) -> Iterator[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class LeisStore:
    """The DHS LEIS person tables in one SQLite file, sealed under ``cipher``.

    Open it with :meth:`open`, fill it with :meth:`ensure_built`. Every
    method takes the store's lock; :meth:`locked` holds it across several
    calls, so that a search sees one state of the data.
    """

    def __init__(self, db: sqlite3.Connection, path: Path, cipher: LeisCipher) -> None:
        """Use :meth:`open`; this wraps an already prepared connection."""
        self._db = db
        self.path = path
        self.cipher = cipher
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path, cipher: LeisCipher) -> LeisStore:
        """Open (or create) the file at ``path``, WAL mode; its tables may not exist yet."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            # What is deleted is overwritten, not left in free pages.
            db.execute("PRAGMA secure_delete=ON")
        except BaseException:
            db.close()
            raise
        return cls(db, path, cipher)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lock across several calls (it is re-entrant)."""
        with self._lock:
            yield

    # -- building ----------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        try:
            return dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError:
            return {}

    def _check_keyring(self, meta: Mapping[str, str]) -> None:
        """A file indexed under another keyring: say so, never rebuild over it
        (the records an agency loaded would be lost)."""
        if meta.get("schema") == str(SCHEMA_VERSION) and \
                meta.get("index", self.cipher.fingerprint()) != self.cipher.fingerprint():
            raise LeisKeyError(
                f"{self.path} was sealed under another keyring than "
                f"{self.cipher.ring.path} (its first key differs): restore that keyring "
                f"(security.text_key_file), or remove {self.path.name} to build the "
                "synthetic data again (persons loaded by agencies are then lost)")

    def ensure_built(self, wanted: Mapping[str, str],
                     batches: Callable[[frozenset[str]], Iterable[Sequence[PersonRow]]],
                     row: Callable[[Person, str], PersonRow]) -> None:
        """Build the tables unless they were built for ``wanted`` and this layout.

        ``wanted`` describes the build (the seed and the size); when the
        file's meta table says otherwise, every person that was not loaded
        by an agency is deleted and ``batches(loaded_dins)`` gives the rows
        to insert, batch by batch, all in one transaction. Records an agency
        loaded survive a rebuild for another seed or size. A file of the
        clear-text layout (schema 1) keeps its loaded persons too (``row``
        makes their rows), and is vacuumed after so that nothing of it is left;
        another layout is rebuilt from nothing. Raises :class:`LeisKeyError`
        when the file was sealed under another keyring.
        """
        wanted = {"schema": str(SCHEMA_VERSION), **wanted,
                  "index": self.cipher.fingerprint()}
        meta = self._meta()
        self._check_keyring(meta)
        if all(meta.get(k) == v for k, v in wanted.items()):
            if meta.get("purge"):
                self._purge()
            return
        with self._lock:
            # IMMEDIATE takes the write lock first, so two processes opening a
            # new file at once build it once: the second sees the first's meta.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                meta = self._meta()
                self._check_keyring(meta)
                if all(meta.get(k) == v for k, v in wanted.items()):
                    self._db.execute("COMMIT")
                    return
                kept: list[PersonRow] = []
                purge = False
                if meta.get("schema") != wanted["schema"]:
                    if meta.get("schema") == "1":
                        kept = [row(p, LOADED) for p in self._v1_loaded()]
                    purge = bool(meta)  # a file that held tables
                    for table in ("meta", "person", "term", *_V1_TABLES):
                        self._db.execute(f"DROP TABLE IF EXISTS {table}")
                # Statement by statement: executescript() would COMMIT first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._build(batches, kept)
                if purge:
                    # Done after the commit; until then, at every open.
                    wanted["purge"] = "pending"
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                     sorted(wanted.items()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            if purge:
                self._purge()

    def _purge(self) -> None:
        """After a migration: the old layout's pages held clear text, in the file's
        free pages and in its WAL. Rewrite the file (VACUUM) and empty the WAL."""
        with self._lock:
            self._db.execute("VACUUM")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.execute("DELETE FROM meta WHERE key = 'purge'")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _build(self, batches: Callable[[frozenset[str]], Iterable[Sequence[PersonRow]]],
               kept: Sequence[PersonRow]) -> None:
        db = self._db
        loaded = {r.din for _, r in self._where("origin = ?", (LOADED,))}
        loaded.update(r.person.din for r in kept)
        db.execute("DELETE FROM term WHERE id IN (SELECT id FROM person WHERE origin != ?)",
                   (LOADED,))
        db.execute("DELETE FROM person WHERE origin != ?", (LOADED,))
        for batch in batches(frozenset(loaded)):
            self._insert(batch)
        self._insert(kept)
        for statement in _INDEXES.split(";"):
            if statement.strip():
                db.execute(statement)

    def _insert(self, rows: Sequence[PersonRow]) -> None:
        """Seal and index ``rows`` on new row ids (inside the caller's transaction)."""
        db = self._db
        (top,) = db.execute("SELECT coalesce(max(id), 0) FROM person").fetchone()
        persons: list[tuple[int, str, int, bytes]] = []
        terms: list[tuple[bytes, int]] = []
        tag = self.cipher.tag
        for n, r in enumerate(rows, int(top) + 1):
            kid, blob = self.cipher.seal(n, pack(r.person))
            persons.append((n, r.origin, kid, blob))
            terms.extend((t, n) for t in {tag(field, value) for field, value in r.terms})
        db.executemany("INSERT INTO person VALUES (?,?,?,?)", persons)
        terms.sort()  # fewer page changes in the index than in random order
        db.executemany("INSERT INTO term VALUES (?,?)", terms)

    def _delete(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(ids):
            marks = ",".join("?" * len(chunk))
            self._db.execute(f"DELETE FROM term WHERE id IN ({marks})", tuple(chunk))
            self._db.execute(f"DELETE FROM person WHERE id IN ({marks})", tuple(chunk))

    def replace(self, rows: Sequence[PersonRow]) -> None:
        """Insert persons in one transaction, replacing those with the same DIN."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._delete([row_id for r in rows for row_id in self._ids_of(r.person.din)])
                self._insert(rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _v1_loaded(self) -> list[Person]:
        """The persons an agency loaded into a file of the clear-text layout (schema 1)."""
        db = self._db
        out = []
        for din, name, sex, pob, status, remarks in db.execute(
                "SELECT din, name, sex, pob, status, remarks FROM person WHERE origin = ? "
                "ORDER BY rowid", (LOADED,)).fetchall():
            def rows(sql: str, din: str = din) -> list[tuple[str, ...]]:
                return db.execute(sql + " WHERE din = ? ORDER BY seq", (din,)).fetchall()
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
        """Close the database file."""
        with self._lock:
            self._db.close()

    def backup_to(self, target: Path) -> None:
        """A consistent copy of the whole data set at ``target`` (SQLite's backup API)."""
        with self._lock:
            dst = sqlite3.connect(target)
            try:
                self._db.backup(dst)
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
            row = self._db.execute("SELECT count(*) FROM person").fetchone()
        return int(row[0])

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
            return {r[0] for r in self._db.execute(
                f"SELECT id FROM term WHERE tag IN ({','.join('?' * len(tags))})", tags)}

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
        return [(row_id, unpack(opened(row_id, kid, blob))) for row_id, kid, blob
                in self._db.execute(f"SELECT id, kid, record FROM person WHERE {where}", args)]

    def _ids_of(self, din: str) -> list[int]:
        return [row_id for row_id, r in self.records(self.find([("din", din)])) if r.din == din]

    def get(self, din: str) -> Person | None:
        """The full record of one person (``din`` as stored), or None."""
        for _, record in self.records(self.find([("din", din)])):
            if record.din == din:
                return record.person()
        return None
