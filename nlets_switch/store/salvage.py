"""Every readable row of a damaged journal, page by page (see :mod:`.pages`).

Two passes. First each table's b-tree is walked from its root as far as its
pages parse; a page that does not parse is noted with the rowid range its
parent says it covered. Then every page no tree reached (and not on the
freelist, whose pages hold stale rows) is tried as a table leaf, and each of
its rows is given to the one table whose columns it fits: that is how the
rows below a damaged interior page are found. Indexes are not read at all;
the new journal rebuilds them.

A row must fit its table's declared columns (types, NOT NULL, the rowid
alias stored as NULL) and lie inside its page's rowid range, or it is
counted as unreadable: 16 bytes of garbage in a cell mostly break one of
these, although garbage inside a text value cannot be told from text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from nlets_switch.store.pages import (
    HEADER_SIZE,
    TABLE_INTERIOR,
    TABLE_LEAF,
    Damaged,
    Page,
    PageFile,
    Value,
)

__all__ = ["WORD_INDEX", "LostPage", "Shape", "TableResult", "read_schema", "salvage"]


# What a column takes, from its declared type (SQLite's affinity rules, roughly).
_ANY, _INT, _TEXT, _REAL, _ROWID = range(5)


def _kind(declared: str) -> int:
    if "INT" in declared:
        return _INT
    if any(k in declared for k in ("CHAR", "CLOB", "TEXT")):
        return _TEXT
    if any(k in declared for k in ("REAL", "FLOA", "DOUB")):
        return _REAL
    return _ANY


@dataclass(frozen=True, slots=True)
class Shape:
    """A table's columns as declared, to tell its rows from garbage and from other tables'."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]
    notnull: tuple[bool, ...]
    ipk: int | None  # the INTEGER PRIMARY KEY column (stored as NULL: it is the rowid)
    root: int | None = None
    sql: str | None = None
    kinds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        kinds = tuple(_ROWID if i == self.ipk else _kind(t) for i, t in enumerate(self.types))
        object.__setattr__(self, "kinds", kinds)

    @classmethod
    def of(cls, conn: sqlite3.Connection, name: str, root: int | None = None,
           sql: str | None = None) -> Shape:
        """The shape of table ``name`` as ``conn`` declares it."""
        info = conn.execute(f'PRAGMA table_info("{name}")').fetchall()
        pks = [r for r in info if r[5]]
        ipk = pks[0][0] if len(pks) == 1 and str(pks[0][2]).upper() == "INTEGER" else None
        return cls(name, tuple(r[1] for r in info), tuple(str(r[2]).upper() for r in info),
                   tuple(bool(r[3]) for r in info), ipk, root, sql)

    def fits(self, values: Sequence[Value]) -> bool:
        """Whether ``values`` can be a row of this table.

        Columns the record does not carry take their default (ALTER TABLE ADD COLUMN).
        """
        if not 0 < len(values) <= len(self.kinds):
            return False
        for v, kind, notnull in zip(values, self.kinds, self.notnull, strict=False):
            if v is None:
                if notnull and kind != _ROWID:
                    return False
            elif kind == _ROWID:
                return False
            elif kind == _INT:
                if type(v) is not int:
                    return False
            elif kind == _TEXT:
                if type(v) is not str:
                    return False
            elif kind == _REAL and type(v) is not float and type(v) is not int:
                return False
        return True


@dataclass(frozen=True, slots=True)
class LostPage:
    """A page that did not parse (or some of whose cells did not), and the rowids its
    parent says it held: above ``after``, up to ``upto`` (None when unknown)."""

    table: str
    page: int
    after: int | None
    upto: int | None
    reason: str
    whole: bool = True


@dataclass(slots=True)
class TableResult:
    """What was salvaged of one table."""

    name: str
    from_tree: int = 0
    from_scan: int = 0
    bad_cells: int = 0
    lost_pages: list[LostPage] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Rows salvaged."""
        return self.from_tree + self.from_scan


#: Receives each salvaged row: table, rowid, values (the rowid alias already filled in).
Sink = Callable[[Shape, int, tuple[Value, ...]], bool]

#: The word index's tables (store/schema.py version 6): rebuilt from ``messages.words``
#: after a recovery, never salvaged (their pages are FTS5's own format).
WORD_INDEX: Final = "message_words"

_MASTER = Shape("sqlite_master", ("type", "name", "tbl_name", "rootpage", "sql"),
                ("TEXT", "TEXT", "TEXT", "INT", "TEXT"), (False,) * 5, None, 1)


def read_schema(pf: PageFile) -> tuple[list[Shape], list[tuple[str, str]]] | None:
    """The rowid tables (with root pages) and the (table, statement) of each index.

    None when the schema page cannot be read at all.
    """
    rows: list[tuple[Value, ...]] = []

    def keep(_shape: Shape, _rowid: int, values: tuple[Value, ...]) -> bool:
        rows.append(values)
        return True

    res = TableResult("sqlite_master")
    _walk(pf, _MASTER, set(), res, keep)
    if not rows and res.lost_pages:
        return None
    mem = sqlite3.connect(":memory:")
    shapes: list[Shape] = []
    indexes: list[tuple[str, str]] = []
    try:
        for kind, name, tbl, root, sql in rows:
            if not isinstance(name, str) or name.startswith("sqlite_") or not isinstance(sql,
                                                                                       str):
                continue
            if sql.upper().startswith("CREATE VIRTUAL TABLE"):
                continue  # no pages of its own (the word index: its shadow tables have)
            if kind == "index":
                indexes.append((str(tbl), sql))
            elif kind == "table" and isinstance(root, int) and "WITHOUT ROWID" not in sql.upper():
                try:
                    mem.execute(sql)
                except sqlite3.Error:
                    continue  # a damaged statement: the table is found by the scan, if known
                shapes.append(Shape.of(mem, name, root, sql))
    finally:
        mem.close()
    return shapes, indexes


def salvage(pf: PageFile, shapes: Sequence[Shape], sink: Sink) -> list[TableResult]:
    """Give every readable row of ``shapes`` to ``sink``; what was read and what was lost.

    ``sink`` returns False for a row it already has (the scan meets rows the
    tree walk gave, and copies of a row on stale pages).
    """
    # The word index's tables are rebuilt, never salvaged; their pages are claimed
    # all the same, so that the scan does not take a page they reused for an orphan.
    index = [s for s in shapes if s.name.startswith(WORD_INDEX)]
    shapes = [s for s in shapes if not s.name.startswith(WORD_INDEX)]
    results = {s.name: TableResult(s.name) for s in shapes}
    # The schema's own pages: once it outgrows page 1 (the word index's tables and
    # triggers take room), its leaves must not be taken for orphans of a table
    # whose columns its rows happen to fit.
    claimed: set[int] = set()
    _walk(pf, _MASTER, claimed, TableResult("sqlite_master"), lambda *_: False)
    claimed.add(1)
    for s in index:
        if s.root is not None:
            _walk(pf, s, claimed, TableResult(s.name), lambda *_: False)
    for s in shapes:
        if s.root is not None:
            _walk(pf, s, claimed, results[s.name], sink)
    free = pf.freelist()
    for number in range(2, pf.page_count + 1):
        if number in claimed or number in free:
            continue
        buf = pf.page(number)
        if buf[0] != TABLE_LEAF:
            continue
        try:
            page = pf.btree(number)
        except Damaged:
            continue  # not a leaf after all, or a damaged one nobody owns
        for row in pf.leaf_rows(page):
            if isinstance(row, Damaged):
                continue  # whose it was is unknown; the tree walk counted what it could
            rowid, values = row
            owners = [s for s in shapes if s.fits(values)]
            if len(owners) == 1 and sink(owners[0], rowid, _with_rowid(owners[0], rowid,
                                                                         values)):
                results[owners[0].name].from_scan += 1
    return list(results.values())


def _with_rowid(shape: Shape, rowid: int, values: tuple[Value, ...]) -> tuple[Value, ...]:
    if shape.ipk is None or shape.ipk >= len(values):
        return values
    return (*values[:shape.ipk], rowid, *values[shape.ipk + 1:])


def _walk(pf: PageFile, shape: Shape, claimed: set[int], res: TableResult, sink: Sink) -> None:
    """Depth first, left to right (rowid order), from the table's root."""
    assert shape.root is not None
    stack: list[tuple[int, int | None, int | None]] = [(shape.root, None, None)]
    while stack:
        number, after, upto = stack.pop()
        if number in claimed:
            res.lost_pages.append(LostPage(shape.name, number, after, upto,
                                           "page reached twice"))
            continue
        try:
            page = pf.btree(number)
            if page.kind == TABLE_INTERIOR:
                kids = pf.children(page)
            elif page.kind != TABLE_LEAF:
                raise Damaged(f"page {number}: an index page inside a table")
        except Damaged as e:
            res.lost_pages.append(LostPage(shape.name, number, after, upto, str(e)))
            continue
        if page.kind == TABLE_LEAF:
            if _leaf(pf, shape, page, after, upto, res, sink):
                claimed.add(number)
            continue
        claimed.add(number)
        spans: list[tuple[int, int | None, int | None]] = []
        low = after
        for child, key in kids:
            spans.append((child, low, upto if key is None else key))
            low = key
        stack.extend(reversed(spans))


def _leaf(pf: PageFile, shape: Shape, page: Page, after: int | None, upto: int | None,
          res: TableResult, sink: Sink) -> bool:
    """The rows of one leaf; False when none fits (the page is someone else's or garbage)."""
    good = bad = 0
    for row in pf.leaf_rows(page):
        if isinstance(row, Damaged):
            bad += 1
            continue
        rowid, values = row
        if ((after is not None and rowid <= after) or (upto is not None and rowid > upto)
                or not shape.fits(values)):
            bad += 1
            continue
        good += 1
        # Counted even when the sink has it already: the new journal's own
        # first rows (its schema version) are the only ones it can meet twice.
        sink(shape, rowid, _with_rowid(shape, rowid, values))
        res.from_tree += 1
    if good == 0 and page.cells:
        h = HEADER_SIZE if page.number == 1 else 0
        res.lost_pages.append(LostPage(shape.name, page.number, after, upto,
                                       f"no cell of page {page.number} fits the table"
                                       f" (type {pf.page(page.number)[h]})"))
        return False
    if bad:
        res.bad_cells += bad
        res.lost_pages.append(LostPage(shape.name, page.number, after, upto,
                                       f"{bad} unreadable cells", whole=False))
    return True
