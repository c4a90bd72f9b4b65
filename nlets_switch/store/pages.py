"""An SQLite file read page by page, for salvage where SQLite itself gives up.

SQLite answers ``database disk image is malformed`` for a whole statement
when one page on its path is damaged, so a table read through SQL stops at
the first bad page, and a damaged interior page hides every row below it.
This module reads the file format directly (https://sqlite.org/fileformat.html):
it walks a table's b-tree as far as its pages parse, and finds the leaf
pages a damaged interior page no longer reaches by scanning every page, so
one damaged page costs only the rows it holds.

Everything here reads bytes and raises :class:`Damaged` on anything that
does not parse; nothing writes the file it reads, except :func:`repair_header`
and :func:`fold_wal`, which the caller runs on a copy.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

MAGIC: Final = b"SQLite format 3\x00"
HEADER_SIZE: Final = 100

#: b-tree page types (first byte of the page header).
INDEX_INTERIOR: Final = 2
TABLE_INTERIOR: Final = 5
INDEX_LEAF: Final = 10
TABLE_LEAF: Final = 13

Value = int | float | str | bytes | None

_WAL_MAGIC: Final = (0x377F0682, 0x377F0683)
_INT_SIZES: Final = (0, 1, 2, 3, 4, 6, 8)
_ENCODINGS: Final = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}


class Damaged(Exception):
    """A page, cell or record that does not parse."""


def _valid_page_size(raw: int) -> int | None:
    size = 65536 if raw == 1 else raw
    if 512 <= size <= 65536 and size & (size - 1) == 0:
        return size
    return None


def _guess_page_size(buf: bytes, file_size: int) -> int:
    """The page size whose page 2 looks like a b-tree page (the header lost it)."""
    for size in (4096, 1024, 2048, 8192, 16384, 32768, 65536, 512):
        if file_size % size == 0 and len(buf) > size and buf[size] in (
                INDEX_INTERIOR, TABLE_INTERIOR, INDEX_LEAF, TABLE_LEAF):
            return size
    return 4096  # SQLite's default, and the journal's


def repair_header(path: Path) -> list[str]:
    """Put back the header fields of ``path`` that have only one sane value.

    The magic string, the fixed payload fractions, a page size that is not a
    power of two, and file format numbers outside what SQLite accepts. Returns
    what was repaired (empty when nothing was). The WAL flag is cleared (the
    caller folds the WAL in first), so the copy opens without one.
    """
    with path.open("r+b") as f:
        buf = bytearray(f.read(65536 * 2 + HEADER_SIZE))
        if len(buf) < HEADER_SIZE:
            return []
        fixed: list[str] = []
        if buf[:16] != MAGIC:
            buf[:16] = MAGIC
            fixed.append("magic string")
        if _valid_page_size(struct.unpack_from(">H", buf, 16)[0]) is None:
            size = _guess_page_size(bytes(buf), os.fstat(f.fileno()).st_size)
            struct.pack_into(">H", buf, 16, 1 if size == 65536 else size)
            fixed.append(f"page size (now {size})")
        if buf[18:20] != b"\x01\x01":
            buf[18:20] = b"\x01\x01"  # legacy (rollback) format: no WAL needed
        if buf[20] != 0:
            buf[20] = 0  # the journal never reserves bytes per page (no checksum VFS)
            fixed.append("reserved space")
        if buf[21:24] != b"\x40\x20\x20":
            buf[21:24] = b"\x40\x20\x20"
            fixed.append("payload fractions")
        if not 1 <= struct.unpack_from(">I", buf, 44)[0] <= 4:
            struct.pack_into(">I", buf, 44, 4)
            fixed.append("schema format")
        if struct.unpack_from(">I", buf, 56)[0] not in _ENCODINGS:
            struct.pack_into(">I", buf, 56, 1)
            fixed.append("text encoding")
        f.seek(0)
        f.write(buf[:HEADER_SIZE])
    return fixed


def _wal_checksum(data: bytes, s0: int, s1: int, big: bool) -> tuple[int, int]:
    words = struct.unpack(f"{'>' if big else '<'}{len(data) // 4}I", data)
    for i in range(0, len(words), 2):
        s0 = (s0 + words[i] + s1) & 0xFFFFFFFF
        s1 = (s1 + words[i + 1] + s0) & 0xFFFFFFFF
    return s0, s1


def fold_wal(db: Path, wal: Path) -> int:
    """Write the committed frames of ``wal`` into ``db``; returns the frames applied.

    Frames count only up to the last commit whose salts and running checksum
    are intact, as SQLite itself recovers a WAL after a crash.
    """
    data = wal.read_bytes()
    if len(data) < 32:
        return 0
    magic, _version, page_size, _seq, salt1, salt2, c0, c1 = struct.unpack_from(">8I", data, 0)
    if magic not in _WAL_MAGIC or _valid_page_size(page_size) is None:
        return 0
    big = magic & 1 == 1
    s0, s1 = _wal_checksum(data[:24], 0, 0, big)
    if (s0, s1) != (c0, c1):
        return 0
    frames: dict[int, bytes] = {}
    committed: dict[int, bytes] = {}
    db_pages = 0
    pos = 32
    while pos + 24 + page_size <= len(data):
        pgno, commit, fs1, fs2, fc0, fc1 = struct.unpack_from(">6I", data, pos)
        if (fs1, fs2) != (salt1, salt2):
            break
        s0, s1 = _wal_checksum(data[pos:pos + 8], s0, s1, big)
        s0, s1 = _wal_checksum(data[pos + 24:pos + 24 + page_size], s0, s1, big)
        if (s0, s1) != (fc0, fc1):
            break
        frames[pgno] = data[pos + 24:pos + 24 + page_size]
        if commit:
            committed.update(frames)
            frames.clear()
            db_pages = commit
        pos += 24 + page_size
    if not committed:
        return 0
    with db.open("r+b") as f:
        for pgno, page in committed.items():
            if pgno <= db_pages:
                f.seek((pgno - 1) * page_size)
                f.write(page)
        f.truncate(db_pages * page_size)
    return len(committed)


def varint(buf: bytes, pos: int) -> tuple[int, int]:
    """SQLite's big-endian varint at ``pos``: (value, position after it)."""
    value = 0
    for i in range(8):
        if pos + i >= len(buf):
            raise Damaged("varint runs off the page")
        b = buf[pos + i]
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            return value, pos + i + 1
    if pos + 8 >= len(buf):
        raise Damaged("varint runs off the page")
    return (value << 8) | buf[pos + 8], pos + 9


@dataclass(slots=True)
class Page:
    """The parsed header of one b-tree page."""

    number: int
    kind: int
    cells: list[int]
    right: int = 0


@dataclass(slots=True)
class PageFile:
    """An SQLite file opened for reading pages."""

    path: Path
    page_size: int = 0
    usable: int = 0
    page_count: int = 0
    encoding: str = "utf-8"
    _data: mmap.mmap | bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        # Mapped, not read: random access to every page without holding a
        # journal of hundreds of megabytes in the process's own memory.
        with self.path.open("rb") as f:
            if os.fstat(f.fileno()).st_size < HEADER_SIZE:
                raise Damaged("not an SQLite file (shorter than its header)")
            self._data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        if self._data[:16] != MAGIC:
            self.close()
            raise Damaged("not an SQLite file (header)")
        size = _valid_page_size(struct.unpack_from(">H", self._data, 16)[0])
        if size is None or size - self._data[20] < 480:
            self.close()
            raise Damaged("invalid page size or reserved space in the header")
        self.page_size = size
        self.usable = size - self._data[20]
        self.page_count = len(self._data) // size
        self.encoding = _ENCODINGS.get(struct.unpack_from(">I", self._data, 56)[0], "utf-8")

    def close(self) -> None:
        """Unmap the file."""
        if isinstance(self._data, mmap.mmap):
            self._data.close()
        self._data = b""

    def __enter__(self) -> PageFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def page(self, number: int) -> bytes:
        """The bytes of page ``number`` (1-based)."""
        if not 1 <= number <= self.page_count:
            raise Damaged(f"page {number} is outside the file")
        return self._data[(number - 1) * self.page_size:number * self.page_size]

    def btree(self, number: int) -> Page:
        """Page ``number`` parsed as a b-tree page; raises Damaged."""
        buf = self.page(number)
        h = HEADER_SIZE if number == 1 else 0
        kind = buf[h]
        if kind not in (INDEX_INTERIOR, TABLE_INTERIOR, INDEX_LEAF, TABLE_LEAF):
            raise Damaged(f"page {number}: not a b-tree page (type {kind})")
        ncells, content = struct.unpack_from(">HH", buf, h + 3)
        content = content or 65536
        hsize = 8 if kind in (INDEX_LEAF, TABLE_LEAF) else 12
        end = h + hsize + 2 * ncells
        if end > self.usable or not end <= content <= self.usable:
            raise Damaged(f"page {number}: cell count or content area out of range")
        cells = list(struct.unpack_from(f">{ncells}H", buf, h + hsize))
        if any(not content <= c < self.usable for c in cells):
            raise Damaged(f"page {number}: cell pointer out of range")
        right = struct.unpack_from(">I", buf, h + 8)[0] if hsize == 12 else 0
        return Page(number, kind, cells, right)

    def freelist(self) -> set[int]:
        """Pages on the freelist, whose content is stale and must not be salvaged.

        Empty when the list does not add up to the count in the header (a
        damaged trunk page or header could name live pages as free; stale
        rows are the lesser harm, as rows read through a tree win over them).
        """
        free: set[int] = set()
        trunk, total = struct.unpack_from(">II", self._data, 32)
        while trunk:
            if trunk in free or len(free) > total:
                return set()
            try:
                buf = self.page(trunk)
            except Damaged:
                return set()
            nxt, n = struct.unpack_from(">II", buf, 0)
            if n > (self.usable - 8) // 4:
                return set()
            free.add(trunk)
            free.update(struct.unpack_from(f">{n}I", buf, 8))
            trunk = nxt
        return free if len(free) == total else set()

    def payload(self, buf: bytes, pos: int, size: int) -> bytes:
        """``size`` bytes of cell payload from ``pos``, following overflow pages."""
        u = self.usable
        x = u - 35
        if size <= x:
            local = size
        else:
            m = ((u - 12) * 32 // 255) - 23
            k = m + (size - m) % (u - 4)
            local = k if k <= x else m
        if pos + local > u:
            raise Damaged("cell runs off the page")
        if local == size:
            return buf[pos:pos + size]
        parts = [buf[pos:pos + local]]
        got = local
        nxt = struct.unpack_from(">I", buf, pos + local)[0]
        seen: set[int] = set()
        while got < size:
            if nxt in seen:
                raise Damaged("overflow chain loops")
            seen.add(nxt)
            page = self.page(nxt)
            take = min(u - 4, size - got)
            parts.append(page[4:4 + take])
            got += take
            nxt = struct.unpack_from(">I", page, 0)[0]
        return b"".join(parts)

    def record(self, payload: bytes) -> tuple[Value, ...]:
        """The values of one record; raises Damaged on a malformed one."""
        # One function with the common cases inline: recovery decodes every
        # row of the journal, and this loop is most of its time.
        end = len(payload)
        if not end:
            raise Damaged("empty record")
        hsize, pos = (payload[0], 1) if payload[0] < 0x80 else varint(payload, 0)
        if hsize > end:
            raise Damaged("record header size out of range")
        types: list[int] = []
        while pos < hsize:
            b = payload[pos]
            if b < 0x80:
                types.append(b)
                pos += 1
            else:
                t, pos = varint(payload, pos)
                types.append(t)
        if pos != hsize:
            raise Damaged("record header overruns")
        values: list[Value] = []
        at = hsize
        for t in types:
            if t == 0:
                values.append(None)
                continue
            if t >= 12:
                n = (t - 12) >> 1
                if at + n > end:
                    raise Damaged("text or blob runs off the record")
                if t & 1:
                    try:
                        values.append(payload[at:at + n].decode(self.encoding))
                    except UnicodeDecodeError as e:
                        raise Damaged("text that is not valid in the encoding") from e
                else:
                    values.append(payload[at:at + n])
                at += n
            elif t <= 6:
                n = _INT_SIZES[t]
                if at + n > end:
                    raise Damaged("integer runs off the record")
                values.append(int.from_bytes(payload[at:at + n], "big", signed=True))
                at += n
            elif t == 7:
                if at + 8 > end:
                    raise Damaged("real runs off the record")
                values.append(struct.unpack_from(">d", payload, at)[0])
                at += 8
            elif t <= 9:
                values.append(t - 8)
            else:
                raise Damaged("reserved serial type")
        if at != end:
            raise Damaged("record length does not match its header")
        return tuple(values)

    def leaf_rows(self, page: Page) -> Iterator[tuple[int, tuple[Value, ...]] | Damaged]:
        """(rowid, values) for each cell of a table leaf; a :class:`Damaged` per bad cell."""
        buf = self.page(page.number)
        for c in page.cells:
            try:
                size, pos = varint(buf, c)
                rowid, pos = varint(buf, pos)
                if rowid >= 1 << 63:
                    rowid -= 1 << 64
                yield rowid, self.record(self.payload(buf, pos, size))
            except (Damaged, struct.error) as e:
                yield e if isinstance(e, Damaged) else Damaged(str(e))

    def children(self, page: Page) -> list[tuple[int, int | None]]:
        """(child page, highest rowid under it or None for the right-most) of an interior page."""
        buf = self.page(page.number)
        out: list[tuple[int, int | None]] = []
        for c in page.cells:
            if c + 4 > self.usable:
                raise Damaged(f"page {page.number}: cell runs off the page")
            child = struct.unpack_from(">I", buf, c)[0]
            key, _ = varint(buf, c + 4)
            out.append((child, key))
        out.append((page.right, None))
        return out
