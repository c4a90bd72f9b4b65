"""The DHS LEIS person tables: one SQLite file, built once, then read by the LEIS service.

The store owns the tables, their indexes and every query on them; the
search rules (ranking, phonetic matching) and the synthetic generator live
in :mod:`nlets_switch.services.leis`, which hands the store typed rows
(:class:`PersonRow`) and asks typed questions. Every method is synchronous
and may be called from any thread (one lock serialises them); the asyncio
side calls them with ``asyncio.to_thread``. Nothing here logs: names, dates
of birth and identifiers are criminal-justice information.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DB_NAME",
    "FIXED",
    "GENERATED",
    "LOADED",
    "SCHEMA_VERSION",
    "AddressMatch",
    "Contact",
    "Identifier",
    "LeisStore",
    "Location",
    "NameKey",
    "NameMatch",
    "Person",
    "PersonRow",
]

#: Bumped whenever the table layout changes; an older file is rebuilt.
SCHEMA_VERSION: Final = 1

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
class NameKey:
    """One name of a person as the name index holds it: the parts and the
    metaphone (``_mp``) and NYSIIS (``_ny``) codes of the last and first name."""

    full: str
    last: str
    first: str
    middle: str
    last_mp: str
    last_ny: str
    first_mp: str
    first_ny: str


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person ready for the tables, with the index keys the service computed.

    ``names`` are the primary name then the aliases, in order;
    ``addresses`` are the normalised addresses, one per location.
    """

    person: Person
    origin: str
    names: tuple[NameKey, ...]
    addresses: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NameMatch:
    """A name row found by :meth:`LeisStore.names_like`."""

    din: str
    alias: bool
    full: str
    last: str
    first: str
    middle: str
    first_mp: str
    first_ny: str


@dataclass(frozen=True, slots=True)
class AddressMatch:
    """A location row found by an address query; ``current`` when it has no end date."""

    din: str
    adr_norm: str
    current: bool


# --------------------------------------------------------------------------
# The tables.
# --------------------------------------------------------------------------

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS person (
    din TEXT PRIMARY KEY, name TEXT NOT NULL, sex TEXT NOT NULL, pob TEXT NOT NULL,
    status TEXT NOT NULL, remarks TEXT NOT NULL, origin TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS name (
    din TEXT NOT NULL, seq INTEGER NOT NULL, alias INTEGER NOT NULL, full TEXT NOT NULL,
    last TEXT NOT NULL, first TEXT NOT NULL, middle TEXT NOT NULL,
    last_mp TEXT NOT NULL, last_ny TEXT NOT NULL, first_mp TEXT NOT NULL,
    first_ny TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dob (din TEXT NOT NULL, seq INTEGER NOT NULL, dob TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS ident (din TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS location (
    din TEXT NOT NULL, seq INTEGER NOT NULL, address TEXT NOT NULL, city TEXT NOT NULL,
    state TEXT NOT NULL, since TEXT NOT NULL, until TEXT NOT NULL, adr_norm TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS contact (
    din TEXT NOT NULL, seq INTEGER NOT NULL, date TEXT NOT NULL, component TEXT NOT NULL,
    kind TEXT NOT NULL, place TEXT NOT NULL);
"""

# Created after the bulk insert of a fresh build: filling indexed tables
# row by row is several times slower than indexing them once.
_INDEXES = """
CREATE INDEX IF NOT EXISTS name_din ON name (din);
CREATE INDEX IF NOT EXISTS name_last_mp ON name (last_mp, first_mp);
CREATE INDEX IF NOT EXISTS name_last_ny ON name (last_ny, first_ny);
CREATE INDEX IF NOT EXISTS name_exact ON name (last, first);
CREATE INDEX IF NOT EXISTS dob_din ON dob (din);
CREATE INDEX IF NOT EXISTS dob_dob ON dob (dob);
CREATE INDEX IF NOT EXISTS ident_din ON ident (din);
CREATE INDEX IF NOT EXISTS ident_value ON ident (kind, value);
CREATE INDEX IF NOT EXISTS location_din ON location (din);
CREATE INDEX IF NOT EXISTS location_adr ON location (adr_norm);
CREATE INDEX IF NOT EXISTS contact_din ON contact (din);
CREATE INDEX IF NOT EXISTS person_origin ON person (origin);
"""

_CHILD_TABLES = ("name", "dob", "ident", "location", "contact")


@dataclass
class _Rows:
    """Rows of every table for a batch of persons, ready for executemany."""

    person: list[tuple[str, ...]] = field(default_factory=list)
    name: list[tuple[Any, ...]] = field(default_factory=list)
    dob: list[tuple[Any, ...]] = field(default_factory=list)
    ident: list[tuple[Any, ...]] = field(default_factory=list)
    location: list[tuple[Any, ...]] = field(default_factory=list)
    contact: list[tuple[Any, ...]] = field(default_factory=list)

    def add(self, row: PersonRow) -> None:
        p = row.person
        self.person.append((p.din, p.name, p.sex, p.pob, p.status, p.remarks, row.origin))
        for seq, n in enumerate(row.names):
            self.name.append((p.din, seq, int(seq > 0), n.full, n.last, n.first, n.middle,
                              n.last_mp, n.last_ny, n.first_mp, n.first_ny))
        self.dob.extend((p.din, seq, d) for seq, d in enumerate(p.dobs))
        self.ident.extend((p.din, seq, i.kind, i.value) for seq, i in enumerate(p.identifiers))
        self.location.extend(
            (p.din, seq, loc.address, loc.city, loc.state, loc.since, loc.until, adr)
            for seq, (loc, adr) in enumerate(zip(p.locations, row.addresses, strict=True)))
        self.contact.extend((p.din, seq, c.date, c.component, c.kind, c.place)
                            for seq, c in enumerate(p.contacts))

    def insert(self, db: sqlite3.Connection) -> None:
        db.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?)", self.person)
        db.executemany("INSERT INTO name VALUES (?,?,?,?,?,?,?,?,?,?,?)", self.name)
        db.executemany("INSERT INTO dob VALUES (?,?,?)", self.dob)
        db.executemany("INSERT INTO ident VALUES (?,?,?,?)", self.ident)
        db.executemany("INSERT INTO location VALUES (?,?,?,?,?,?,?,?)", self.location)
        db.executemany("INSERT INTO contact VALUES (?,?,?,?,?,?)", self.contact)


def _chunks(items: Sequence[str], size: int = 500) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


class LeisStore:
    """The DHS LEIS person tables in one SQLite file.

    Open it with :meth:`open`, fill it with :meth:`ensure_built`. Every
    method takes the store's lock; :meth:`locked` holds it across several
    calls, so that a search sees one state of the data.
    """

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        """Use :meth:`open`; this wraps an already prepared connection."""
        self._db = db
        self.path = path
        self._lock = threading.RLock()

    @classmethod
    def open(cls, path: Path) -> LeisStore:
        """Open (or create) the file at ``path``, WAL mode; its tables may not exist yet."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False,
                             timeout=30.0)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            db.close()
            raise
        return cls(db, path)

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

    def ensure_built(self, wanted: Mapping[str, str],
                     batches: Callable[[frozenset[str]], Iterable[Sequence[PersonRow]]]) -> None:
        """Build the tables unless they were built for ``wanted`` and this layout.

        ``wanted`` describes the build (the seed and the size); when the
        file's meta table says otherwise, every person that was not loaded
        by an agency is deleted and ``batches(loaded_dins)`` gives the rows
        to insert, batch by batch, all in one transaction. Records an agency
        loaded survive a rebuild for another seed or size; a file with
        another table layout is rebuilt from nothing.
        """
        wanted = {"schema": str(SCHEMA_VERSION), **wanted}
        if all(self._meta().get(k) == v for k, v in wanted.items()):
            return
        with self._lock:
            # IMMEDIATE takes the write lock first, so two processes opening a
            # new file at once build it once: the second sees the first's meta.
            self._db.execute("BEGIN IMMEDIATE")
            try:
                meta = self._meta()
                if all(meta.get(k) == v for k, v in wanted.items()):
                    self._db.execute("COMMIT")
                    return
                if meta.get("schema") != wanted["schema"]:
                    for table in ("meta", "person", *_CHILD_TABLES):
                        self._db.execute(f"DROP TABLE IF EXISTS {table}")
                # Statement by statement: executescript() would COMMIT first.
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._build(batches)
                self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                     sorted(wanted.items()))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _build(self, batches: Callable[[frozenset[str]], Iterable[Sequence[PersonRow]]]) -> None:
        db = self._db
        loaded = frozenset(row[0] for row in db.execute(
            "SELECT din FROM person WHERE origin = ?", (LOADED,)))
        old = [row[0] for row in db.execute(
            "SELECT din FROM person WHERE origin != ?", (LOADED,))]
        self._delete(old)
        for batch in batches(loaded):
            rows = _Rows()
            for row in batch:
                rows.add(row)
            rows.insert(db)
        for statement in _INDEXES.split(";"):
            if statement.strip():
                db.execute(statement)

    def _delete(self, dins: Sequence[str]) -> None:
        for chunk in _chunks(dins):
            marks = ",".join("?" * len(chunk))
            for table in ("person", *_CHILD_TABLES):
                self._db.execute(f"DELETE FROM {table} WHERE din IN ({marks})", tuple(chunk))

    def replace(self, rows: Sequence[PersonRow]) -> None:
        """Insert persons in one transaction, replacing those with the same DIN."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._delete([r.person.din for r in rows])
                batch = _Rows()
                for row in rows:
                    batch.add(row)
                batch.insert(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

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

    def get(self, din: str) -> Person | None:
        """The full record of one person (``din`` as stored), or None."""
        db = self._db
        with self._lock:
            row = db.execute("SELECT name, sex, pob, status, remarks FROM person WHERE din = ?",
                             (din,)).fetchone()
            if row is None:
                return None
            name, sex, pob, status, remarks = row
            aliases = tuple(r[0] for r in db.execute(
                "SELECT full FROM name WHERE din = ? AND alias = 1 ORDER BY seq", (din,)))
            dobs = tuple(r[0] for r in db.execute(
                "SELECT dob FROM dob WHERE din = ? ORDER BY seq", (din,)))
            idents = tuple(Identifier(k, v) for k, v in db.execute(
                "SELECT kind, value FROM ident WHERE din = ? ORDER BY seq", (din,)))
            locations = tuple(Location(*r) for r in db.execute(
                "SELECT address, city, state, since, until FROM location "
                "WHERE din = ? ORDER BY seq", (din,)))
            contacts = tuple(Contact(*r) for r in db.execute(
                "SELECT date, component, kind, place FROM contact WHERE din = ? ORDER BY seq",
                (din,)))
        return Person(din=din, name=name, aliases=aliases, dobs=dobs, sex=sex, pob=pob,
                      identifiers=idents, locations=locations, contacts=contacts,
                      status=status, remarks=remarks)

    def exists(self, din: str) -> bool:
        """True when a person has this DIN."""
        with self._lock:
            return self._db.execute("SELECT 1 FROM person WHERE din = ?",
                                    (din,)).fetchone() is not None

    def summary(self, din: str) -> tuple[str, str, str]:
        """``(name, sex, first DOB)`` of a person that exists (the DOB may be empty)."""
        with self._lock:
            name, sex = self._db.execute("SELECT name, sex FROM person WHERE din = ?",
                                         (din,)).fetchone()
            row = self._db.execute("SELECT dob FROM dob WHERE din = ? ORDER BY seq LIMIT 1",
                                   (din,)).fetchone()
        return str(name), str(sex), str(row[0]) if row else ""

    def dins_by_identifier(self, kind: str, value: str) -> list[str]:
        """The DINs of persons holding identifier ``kind``/``value`` (as stored)."""
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT din FROM ident WHERE kind = ? AND value = ?", (kind, value))]

    def dins_born(self, dob: str) -> set[str]:
        """The DINs of persons with this DOB (CCYYMMDD) among theirs."""
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT din FROM dob WHERE dob = ?", (dob,))}

    def dins_of_sex(self, dins: Iterable[str], sex: str) -> set[str]:
        """Those of ``dins`` whose sex is ``sex`` or unknown (``U``)."""
        keep: set[str] = set()
        with self._lock:
            for chunk in _chunks(sorted(dins)):
                keep.update(r[0] for r in self._db.execute(
                    f"SELECT din FROM person WHERE din IN ({','.join('?' * len(chunk))}) "
                    "AND sex IN (?, 'U')", (*chunk, sex)))
        return keep

    def addresses_from(self, adr: str) -> list[AddressMatch]:
        """Locations whose normalised address starts with ``adr`` (an index range)."""
        with self._lock:
            return [AddressMatch(din, norm, not until) for din, norm, until in self._db.execute(
                "SELECT din, adr_norm, until FROM location WHERE adr_norm >= ? AND adr_norm < ?",
                (adr, adr + "\x7f"))]

    def addresses_with_words(self, adr: str) -> list[AddressMatch]:
        """Locations whose normalised address holds ``adr`` as whole words, not at its start."""
        with self._lock:
            return [AddressMatch(din, norm, not until) for din, norm, until in self._db.execute(
                "SELECT din, adr_norm, until FROM location "
                "WHERE instr(' ' || adr_norm || ' ', ?) > 1", (f" {adr} ",))]

    def names_like(self, last: str, last_mp: str, last_ny: str) -> list[NameMatch]:
        """Names (primary and aliases) whose last name is ``last`` or sounds like it
        (the same metaphone or NYSIIS code)."""
        with self._lock:
            return [NameMatch(din, bool(alias), full, nlast, first, middle, first_mp, first_ny)
                    for din, alias, full, nlast, first, middle, first_mp, first_ny
                    in self._db.execute(
                        "SELECT din, alias, full, last, first, middle, first_mp, first_ny "
                        "FROM name WHERE last_mp = ? OR last_ny = ? OR last = ?",
                        (last_mp, last_ny, last))]
