"""The store owns the database: no module outside ``nlets_switch/store/`` imports sqlite3
or holds SQL (issue 9, item 3)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = (ROOT / "nlets_switch", ROOT / "adapters")  # adapters install as nlets_switch.adapters
STORE = ROOT / "nlets_switch" / "store"

# Modules outside the store allowed to hold SQL or import sqlite3: none. (While
# issue 9 moved the hot path and the LEIS data in, they were listed here; an
# entry that is no longer needed fails the last test below.)
ALLOWED: frozenset[str] = frozenset()

# SQL as it is written in this code base: upper-case keywords, in a string literal.
_SQL = re.compile(r"\bSELECT\b[^\n]*\bFROM\b|\bINSERT\s+(?:OR\s+[A-Z]+\s+)?INTO\b|"
                  r"\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\b(?:CREATE|DROP|ALTER)\s+"
                  r"(?:TABLE|INDEX|VIEW|TRIGGER)\b|\bPRAGMA\s+\w+|\bBEGIN\s+IMMEDIATE\b")


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for pkg in PACKAGES:
        for path in sorted(pkg.rglob("*.py")):
            if STORE in path.parents:
                continue
            yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(), str(path))


def _imports_sqlite(tree: ast.Module) -> list[int]:
    """Lines importing sqlite3: ``import``, ``from ... import`` or importlib by name."""
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(a.name == "sqlite3" or a.name.startswith("sqlite3.") for a in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level == 0 and (mod == "sqlite3" or mod.startswith("sqlite3.")):
                lines.append(node.lineno)
        elif isinstance(node, ast.Call) and node.args:
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            arg = node.args[0]
            if (name in ("import_module", "__import__") and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str) and arg.value.split(".")[0] == "sqlite3"):
                lines.append(node.lineno)
    return lines


def _sql_strings(tree: ast.Module) -> list[int]:
    """Lines of string literals (f-string parts included) that read as SQL statements."""
    return sorted({node.lineno for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and _SQL.search(node.value)})


def test_no_module_outside_the_store_imports_sqlite3() -> None:
    offenders = [f"{path}:{line}" for path, tree in _modules() if path not in ALLOWED
                 for line in _imports_sqlite(tree)]
    assert offenders == [], "sqlite3 imported outside nlets_switch/store/: " + ", ".join(
        offenders)


def test_no_sql_outside_the_store() -> None:
    offenders = [f"{path}:{line}" for path, tree in _modules() if path not in ALLOWED
                 for line in _sql_strings(tree)]
    assert offenders == [], "SQL outside nlets_switch/store/: " + ", ".join(offenders)


def test_the_checks_see_what_they_look_for() -> None:
    # The detectors themselves: each spelling of the import, and SQL in plain and f-strings.
    src = ("import sqlite3\nimport sqlite3 as db\nfrom sqlite3 import connect\n"
           "import importlib\nimportlib.import_module('sqlite3')\n__import__('sqlite3')\n"
           "from . import sqlite3\n")
    assert _imports_sqlite(ast.parse(src)) == [1, 2, 3, 5, 6]
    sql = ('q = "SELECT id FROM messages"\nt = f"DELETE FROM {x} WHERE id = ?"\n'
           'h = "SELECT THE FILE YOU WANT"\nc = "CREATE TABLE IF NOT EXISTS t (a)"\n')
    assert _sql_strings(ast.parse(sql)) == [1, 2, 4]


def test_the_allow_list_holds_only_modules_that_still_need_it() -> None:
    # Once a module is moved into the store, its entry must go, so the list only shrinks.
    needed = {path for path, tree in _modules()
              if _imports_sqlite(tree) or _sql_strings(tree)}
    assert needed >= ALLOWED, f"no longer needed, remove: {sorted(ALLOWED - needed)}"
