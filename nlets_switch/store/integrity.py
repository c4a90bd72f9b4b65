"""Is the journal fit to run on, and what can be saved from one that is not.

:func:`check` is what ``serve`` asks before it opens the journal (and what
``nlets-switch journal check`` prints): the file can be read, its header is
SQLite's, SQLite's ``quick_check`` finds every b-tree page sound, its schema
version is one this code knows, and the file, its directory and its WAL
files can be written. A switch that started on a damaged journal would
deliver until it reached the damaged page and then stall without a word
(issue 15); one on a read-only journal would fail on its first commit.

:func:`recover` copies every readable row of a damaged journal into a new
one (:mod:`.salvage` reads it page by page), leaving the damaged file as it
was, and says what it could not read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import stat
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Literal

from nlets_switch.store.journal import Journal
from nlets_switch.store.pages import MAGIC, Damaged, PageFile, Value, fold_wal, repair_header
from nlets_switch.store.records import OPEN_STATES
from nlets_switch.store.salvage import WORD_INDEX, Shape, TableResult, read_schema, salvage
from nlets_switch.store.schema import SCHEMA_VERSION, migrate

__all__ = ["JOURNAL_FILE", "IntegrityReport", "Problem", "RecoveryError", "RecoveryReport",
           "check", "journal_path", "recover"]

#: The journal's file name in the data directory.
JOURNAL_FILE: Final = "journal.sqlite"

Kind = Literal["damaged", "unreadable", "read-only", "newer", "busy"]


def journal_path(data_dir: str | Path) -> Path:
    """Where the switch keeps its journal in ``data_dir``."""
    return Path(data_dir) / JOURNAL_FILE


def wal_files(path: Path) -> tuple[Path, Path]:
    """The ``-wal`` and ``-shm`` files SQLite keeps beside ``path``."""
    return Path(f"{path}-wal"), Path(f"{path}-shm")


@dataclass(frozen=True, slots=True)
class Problem:
    """One reason the switch cannot run on a journal."""

    kind: Kind
    detail: str


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    """What :func:`check` found. ``ok`` when the switch can run on the journal."""

    path: Path
    problems: tuple[Problem, ...] = ()
    #: No journal yet: the switch will make one (its directory is writable).
    new: bool = False
    schema_version: int | None = None
    size: int = 0
    seconds: float = 0.0
    #: Every line ``quick_check`` gave when it was not ``ok``.
    quick_check: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when nothing stands in the switch's way."""
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem to name first: damage, then a newer schema, then access."""
        order: list[Kind] = ["damaged", "newer", "busy", "unreadable", "read-only"]
        return min(self.problems, key=lambda p: order.index(p.kind), default=None)


def check(path: Path, busy_timeout: float = 5.0) -> IntegrityReport:
    """Check the journal at ``path`` without changing it (blocking).

    Never raises for what it finds: every finding is a :class:`Problem`. A
    lock held by another process longer than ``busy_timeout`` seconds is one.
    """
    t0 = time.perf_counter()
    problems: list[Problem] = []
    try:
        st = path.stat()
    except FileNotFoundError:
        where = _creatable(path.parent)
        if where is not None:
            problems.append(Problem("read-only", where))
        return IntegrityReport(path, tuple(problems), new=True,
                               seconds=time.perf_counter() - t0)
    except OSError as e:
        return IntegrityReport(path, (Problem("unreadable", _why(e)),))
    if not stat.S_ISREG(st.st_mode):
        return IntegrityReport(path, (Problem("unreadable", "not a regular file"),))
    try:
        with path.open("rb") as f:
            head = f.read(100)
    except OSError as e:
        return IntegrityReport(path, (Problem("unreadable", _why(e)),), size=st.st_size)
    header = _header_problem(head)
    if header is not None:
        return IntegrityReport(path, (Problem("damaged", header),), size=st.st_size,
                               seconds=time.perf_counter() - t0)
    problems.extend(Problem("read-only", w) for w in _unwritable(path))
    lines: tuple[str, ...] = ()
    version: int | None = None
    if st.st_size:
        try:
            lines, version = _sqlite_checks(path, busy_timeout)
        except sqlite3.OperationalError as e:
            # Not the file's content: a lock held elsewhere, or (on a
            # read-only mount, already reported) no way to open the WAL index.
            if "locked" in str(e) or "busy" in str(e):
                problems.append(Problem("busy", str(e)))
            elif not problems:
                problems.append(Problem("unreadable", str(e)))
        except sqlite3.DatabaseError as e:
            problems.append(Problem("damaged", str(e)))
    if lines:
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        problems.append(Problem("damaged", f"quick_check: {lines[0][:160]}{more}"))
    if version is not None and version > SCHEMA_VERSION:
        problems.append(Problem("newer", f"schema version {version}, this nlets-switch "
                                         f"knows {SCHEMA_VERSION}"))
    return IntegrityReport(path, tuple(problems), new=st.st_size == 0,
                           schema_version=version, size=st.st_size,
                           seconds=time.perf_counter() - t0, quick_check=lines)


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


def _header_problem(head: bytes) -> str | None:
    if not head:
        return None  # an empty file: SQLite makes it a database
    if len(head) < 100:
        return f"file header: only {len(head)} bytes (file is not a database)"
    if head[:16] != MAGIC:
        return "file header: no SQLite magic string (file is not a database)"
    size = struct.unpack_from(">H", head, 16)[0]
    size = 65536 if size == 1 else size
    if not 512 <= size <= 65536 or size & (size - 1):
        return f"file header: invalid page size {size} (file is not a database)"
    return None


def _creatable(directory: Path) -> str | None:
    """Why a journal cannot be made in ``directory`` (created if missing), or None."""
    d = directory
    while not d.exists() and d != d.parent:
        d = d.parent
    if not d.is_dir():
        return f"{d} is not a directory"
    return _dir_unwritable(d)


def _dir_unwritable(d: Path) -> str | None:
    try:
        # An unnamed file where the system allows it: nothing is left behind.
        with tempfile.TemporaryFile(dir=d):
            pass
    except OSError as e:
        return f"cannot create files in {d}: {_why(e)}"
    return None


def _unwritable(path: Path) -> Iterator[str]:
    for p in (path, *wal_files(path)):
        if p is not path and not p.exists():
            continue
        try:
            os.close(os.open(p, os.O_RDWR))
        except OSError as e:
            yield f"cannot write {p.name}: {_why(e)}"
    # SQLite creates the -wal and -shm files beside the journal.
    why = _dir_unwritable(path.parent)
    if why is not None:
        yield why


def _sqlite_checks(path: Path, busy_timeout: float) -> tuple[tuple[str, ...], int | None]:
    """``quick_check``'s complaints (empty when ok) and the schema version."""
    conn = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True,
                           timeout=busy_timeout)
    try:
        # Rows may hold several lines; the "*** in database main ***" banner says nothing.
        lines = tuple(line.strip() for r in conn.execute("PRAGMA quick_check")
                      for line in str(r[0]).splitlines()
                      if line.strip() and not line.startswith("***"))
        if lines == ("ok",):
            lines = ()
        version: int | None = None
        has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                "name = 'meta'").fetchone()
        if has_meta:
            row = conn.execute("SELECT value FROM meta WHERE name = 'schema_version'").fetchone()
            if row is not None:
                with contextlib.suppress(TypeError, ValueError):
                    version = int(row[0])
        return lines, version
    finally:
        conn.close()


# --------------------------------------------------------------------------
# Recovery
# --------------------------------------------------------------------------


class RecoveryError(Exception):
    """Nothing could be recovered (the file cannot be read as SQLite at all)."""


@dataclass(slots=True)
class RecoveryReport:
    """What :func:`recover` saved and what it could not read."""

    damaged: Path
    new: Path
    tables: list[TableResult] = field(default_factory=list)
    #: Header fields put back before reading (the damaged file keeps its own).
    header_repairs: list[str] = field(default_factory=list)
    wal_frames: int = 0
    #: The schema page could not be read: the journal's tables were found by their rows.
    schema_lost: bool = False
    #: Per table, ids in the span of a damaged page that were not recovered.
    missing: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    #: Per table: rows read but refused by the new journal's constraints.
    refused: dict[str, int] = field(default_factory=dict)
    #: Per destination link: deliveries left out because their message was lost.
    orphans: dict[str, int] = field(default_factory=dict)
    #: Numbering counters missing from what was read, rebuilt from the newest rows.
    counters_rebuilt: list[str] = field(default_factory=list)
    #: Deliveries still owed (queued, held or sent) in the new journal.
    owed: int = 0
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """True when every row was read (no damaged page or cell on any table)."""
        return (not self.schema_lost and not self.refused
                and not any(t.lost_pages for t in self.tables))

    def table(self, name: str) -> TableResult:
        """The result for table ``name`` (empty when the journal had no such table)."""
        return next((t for t in self.tables if t.name == name), TableResult(name))


def recover(damaged: Path, new_path: Path) -> RecoveryReport:
    """Copy every readable row of ``damaged`` into a new journal at ``new_path``.

    ``damaged`` (and its ``-wal`` file) is only read: the work is done on a
    copy in a temporary directory beside ``new_path``, so count on free space
    for a copy. Raises FileExistsError when ``new_path`` exists, RecoveryError
    when the file cannot be read as SQLite at all.
    """
    t0 = time.perf_counter()
    if new_path.exists():
        raise FileExistsError(f"{new_path} exists; recover writes a new file")
    new_path.parent.mkdir(parents=True, exist_ok=True)
    report = RecoveryReport(damaged, new_path)
    with tempfile.TemporaryDirectory(prefix=".nlets-recover-", dir=new_path.parent) as tmp:
        copy = Path(tmp) / "copy.sqlite"
        shutil.copyfile(damaged, copy)
        wal = wal_files(damaged)[0]
        if wal.exists():
            report.wal_frames = fold_wal(copy, wal)
        report.header_repairs = repair_header(copy)
        try:
            pf = PageFile(copy)
        except Damaged as e:
            raise RecoveryError(f"{damaged}: {e}") from e
        journal = Journal(new_path)
        with pf:
            conn = journal.open()
            migrate(conn)  # every table the journal file holds, at the current version
            try:
                _salvage_into(conn, pf, report)
            finally:
                journal.close()
    report.seconds = time.perf_counter() - t0
    return report


def _salvage_into(conn: sqlite3.Connection, pf: PageFile, report: RecoveryReport) -> None:
    # The word index (message_words and its FTS5 shadow tables) is not copied: it is
    # rebuilt from the salvaged messages' words column at the end.
    known = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
             if not r[0].startswith(WORD_INDEX)}
    schema = read_schema(pf)
    shapes: list[Shape] = []
    if schema is None:
        report.schema_lost = True
    else:
        shapes, indexes = schema
        for s in shapes:
            if s.name not in known and s.sql and not s.name.startswith(WORD_INDEX):
                conn.execute(s.sql)  # a table the journal's other users made (audit, help)
                for tbl, sql in indexes:
                    if tbl == s.name:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute(sql)
    # Journal tables the schema does not list (its page lost) are found by their rows.
    have = {s.name for s in shapes}
    shapes += [Shape.of(conn, name) for name in sorted(known - have)
               if not name.startswith("sqlite_")]
    inserter = _Inserter(conn)
    conn.execute("BEGIN")
    report.tables = salvage(pf, shapes, inserter)
    conn.execute("COMMIT")
    report.refused = inserter.refused
    conn.execute("BEGIN")
    report.missing = _missing(conn, report)
    report.orphans = _drop_orphans(conn)
    report.counters_rebuilt = _rebuild_counters(conn)
    # The word index is made anew from the salvaged rows; those of a journal older
    # than it come without tokens and get them as the migration gives them (when
    # their key is at hand).
    conn.execute("UPDATE messages SET words = ns_stored_words(text, id) WHERE words IS NULL")
    conn.execute("INSERT INTO message_words (message_words) VALUES ('rebuild')")
    marks = ",".join("?" * len(OPEN_STATES))
    report.owed = int(conn.execute(f"SELECT COUNT(*) FROM deliveries WHERE state IN ({marks})",
                                   OPEN_STATES).fetchone()[0])
    conn.execute("COMMIT")


class _Inserter:
    """The salvage sink: one ``INSERT OR IGNORE`` per row, the rowid kept, commits in steps."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._plans: dict[tuple[str, int], tuple[str, list[int]]] = {}
        self._columns: dict[str, list[str]] = {}
        self._n = 0
        #: Rows the new journal's constraints refused, per table.
        self.refused: dict[str, int] = {}

    def __call__(self, shape: Shape, rowid: int, values: tuple[Value, ...]) -> bool:
        plan = self._plans.get((shape.name, len(values)))
        if plan is None:
            plan = self._plan(shape, len(values))
        sql, take = plan
        try:
            cur = self.conn.execute(sql, [rowid, *[values[i] for i in take]])
        except sqlite3.IntegrityError:
            self.refused[shape.name] = self.refused.get(shape.name, 0) + 1
            return False
        self._n += 1
        if self._n % 20_000 == 0:
            # Bounded transactions: the WAL of a million-row recovery stays small.
            self.conn.execute("COMMIT")
            self.conn.execute("BEGIN")
        return cur.rowcount == 1

    def _plan(self, shape: Shape, width: int) -> tuple[str, list[int]]:
        cols = self._columns.get(shape.name)
        if cols is None:
            cols = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{shape.name}")')]
            self._columns[shape.name] = cols
        # The columns the record carries that the new table has, by name; the
        # others (added since the row was written) take their defaults.
        take = [i for i, c in enumerate(shape.columns[:width]) if c in cols and i != shape.ipk]
        names = "".join(f', "{shape.columns[i]}"' for i in take)
        sql = (f'INSERT OR IGNORE INTO "{shape.name}" (rowid{names}) '
               f"VALUES ({', '.join('?' * (len(take) + 1))})")
        self._plans[(shape.name, width)] = (sql, take)
        return sql, take


def _missing(conn: sqlite3.Connection,
             report: RecoveryReport) -> dict[str, list[tuple[int, int]]]:
    counters = dict(conn.execute("SELECT name, value FROM counters").fetchall())
    ceiling = {"messages": counters.get("id:msg"), "deliveries": counters.get("id:dlv")}
    out: dict[str, list[tuple[int, int]]] = {}
    for t in report.tables:
        info = conn.execute(f'PRAGMA table_info("{t.name}")').fetchall()
        pks = [r for r in info if r[5]]
        if len(pks) != 1 or str(pks[0][2]).upper() != "INTEGER":
            continue  # rows without an id of their own (meta, counters): counted only
        spans: list[tuple[int, int]] = []
        for lp in t.lost_pages:
            top = lp.upto if lp.upto is not None else ceiling.get(t.name)
            if top is None:
                top = conn.execute(f'SELECT MAX(rowid) FROM "{t.name}"').fetchone()[0] or 0
            low = (lp.after or 0) + 1
            if top >= low:
                spans.append((low, int(top)))
        gaps: list[tuple[int, int]] = []
        for low, top in _merge(spans):
            nxt = low
            for (rid,) in conn.execute(f'SELECT rowid FROM "{t.name}" WHERE rowid BETWEEN ? '
                                       "AND ? ORDER BY rowid", (low, top)):
                if rid > nxt:
                    gaps.append((nxt, rid - 1))
                nxt = rid + 1
            if nxt <= top:
                gaps.append((nxt, top))
        if gaps:
            out[t.name] = gaps
    return out


def _merge(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for low, top in sorted(spans):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(top, merged[-1][1]))
        else:
            merged.append((low, top))
    return merged


def _rebuild_counters(conn: sqlite3.Connection) -> list[str]:
    """Numbering counters the damage took, from the newest row that carries each.

    The switch numbers ids (``id:msg``, ``id:dlv``), each link's input
    (``in:ORI``) and each destination's output (``out:LINK``); without them
    numbering would start again at 1. A counter that was read is kept as it is.
    """
    have = {r[0] for r in conn.execute("SELECT name FROM counters")}
    rebuilt: dict[str, int] = {}
    for name, sql in (
        ("id:msg", "SELECT 'id:msg', MAX(id) FROM messages"),
        ("id:dlv", "SELECT 'id:dlv', MAX(id) FROM deliveries"),
        ("in:", "SELECT 'in:' || link, input_no FROM messages WHERE id IN "
                "(SELECT MAX(id) FROM messages WHERE input_no IS NOT NULL GROUP BY link)"),
        ("out:", "SELECT 'out:' || link, output_no FROM deliveries WHERE id IN "
                 "(SELECT MAX(id) FROM deliveries GROUP BY link)"),
    ):
        for key, value in conn.execute(sql):
            if value is not None and key not in have and key.startswith(name):
                rebuilt[key] = int(value)
    conn.executemany("INSERT INTO counters (name, value) VALUES (?, ?)", rebuilt.items())
    return sorted(rebuilt)


def _drop_orphans(conn: sqlite3.Connection) -> dict[str, int]:
    """Leave out deliveries whose message was lost: nothing could render them again."""
    where = "NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.msg_id)"
    orphans = {str(link): int(n) for link, n in conn.execute(
        f"SELECT link, COUNT(*) FROM deliveries WHERE {where} GROUP BY link ORDER BY link")}
    if orphans:
        conn.execute(f"DELETE FROM deliveries WHERE {where}")
    return orphans
