"""Helpers for the journal-integrity tests: journals to damage, pages to aim at, and
read-only places (which take more than chmod when the tests run as root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlets_switch.store.journal import Journal, write_batch
from nlets_switch.store.records import Batch, DeliveryRow, MessageRow

T0 = 1_700_000_000.0


def text_of(i: int) -> str:
    """Message ``i``'s text; every 97th is long enough to need overflow pages."""
    tail = "Y" * 9000 if i % 97 == 0 else "X" * (i % 61)
    return f"AM.AZNLETS20.NY.*C{i}.TXT\nHELD MESSAGE {i:06d} {tail}"


def make_journal(path: Path, n: int) -> None:
    """A journal of ``n`` messages, each held for NYNLETS00 (as the switch writes them)."""
    journal = Journal(path)
    conn = journal.open()
    b = Batch()
    for i in range(1, n + 1):
        b.messages.append(MessageRow(i, T0 + i, "AZNLETS20", "AM", "AZNLETS20", "NY", f"C{i}",
                                     i, "accepted", None, None, 26, text_of(i)))
        b.deliveries.append(DeliveryRow(i, i, "NYNLETS00", "NYNLETS00", "NY", i, 2, "held",
                                        T0 + i, T0 + 86_400 * 30, 1))
    b.counters = {"id:msg": n, "id:dlv": n, "in:AZNLETS20": n, "out:NYNLETS00": n}
    conn.execute("BEGIN")
    write_batch(conn, b)
    conn.execute("COMMIT")
    journal.close()


def pages(path: Path) -> dict[str, list[tuple[int, str]]]:
    """Each table's and index's pages (number, kind), from SQLite's dbstat."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, pageno, pagetype FROM dbstat "
                            "ORDER BY name, pageno").fetchall()
    except sqlite3.OperationalError:
        pytest.skip("this SQLite has no dbstat table")
    finally:
        conn.close()
    out: dict[str, list[tuple[int, str]]] = {}
    for name, number, kind in rows:
        out.setdefault(name, []).append((number, kind))
    return out


def root_of(path: Path, name: str) -> int:
    """The root page of table or index ``name``."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?",
                                (name,)).fetchone()[0])
    finally:
        conn.close()


def middle_leaf(path: Path, name: str) -> int:
    """A leaf page in the middle of ``name``'s b-tree."""
    leaves = [n for n, kind in pages(path)[name] if kind == "leaf"]
    return leaves[len(leaves) // 2]


def page_size(path: Path) -> int:
    """The file's page size."""
    return int.from_bytes(path.read_bytes()[16:18], "big")


def damage(path: Path, page: int, offset: int = 0, size: int = 16) -> None:
    """Overwrite ``size`` bytes at ``offset`` of page ``page`` (1-based)."""
    ps = page_size(path) if page > 1 else 0
    with path.open("r+b") as f:
        f.seek((page - 1) * ps + offset)
        f.write(bytes([0xDE, 0xAD, 0xBE, 0xEF] * (size // 4)))


def rows(path: Path, table: str) -> dict[int, tuple[object, ...]]:
    """Every row of ``table`` by id, read by SQLite."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {r[0]: r for r in conn.execute(f"SELECT * FROM {table} ORDER BY id")}
    finally:
        conn.close()


@contextlib.contextmanager
def read_only_dir(path: Path) -> Iterator[Path]:
    """``path`` made a read-only directory with what it holds, for as long as the block runs.

    Not root: chmod 0500. Root (whom permissions do not bind): a read-only
    tmpfs mount with a copy of the contents, else ``chattr +i``, else skip.
    """
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
        return
    keep = path.with_name(path.name + ".orig")
    path.rename(keep)
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(path)],
                             capture_output=True).returncode == 0
    if mounted:
        try:
            shutil.copytree(keep, path, dirs_exist_ok=True)
            if subprocess.run(["mount", "-o", "remount,ro", str(path)],
                              capture_output=True).returncode != 0:
                pytest.skip("cannot remount the tmpfs read-only")
            yield path
        finally:
            subprocess.run(["umount", str(path)], check=False)
            path.rmdir()
            keep.rename(path)
        return
    path.rmdir()
    keep.rename(path)
    with immutable(path):
        yield path


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[Path]:
    """``path`` (a file or a directory) made unwritable even for root: ``chattr +i``, or
    chmod when not root; skips when neither binds."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o500 if path.is_dir() else 0o400)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root, and neither a read-only mount nor chattr +i works here")
    try:
        yield path
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=False)
