"""The engine and the codec are pure: importing them loads no I/O, clock or logging.

Checked in a fresh interpreter (this test process has loaded everything
already). ``time`` needs care: the interpreter itself loads it at start-up
(zipimport) and ``datetime`` imports it from C, so the test instead records
every ``import`` statement that a module of this package executes and fails
on one naming ``time``. The source of ``core/`` and ``wire/`` is also read,
so that an import hidden in a function body fails here too.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import nlets_switch

PURE_MODULES = (
    "nlets_switch.core.engine",
    "nlets_switch.core.link",
    "nlets_switch.core.events",
    "nlets_switch.core.effects",
    "nlets_switch.core.router",
    "nlets_switch.core.directory",
    "nlets_switch.wire.frames",
    "nlets_switch.wire.message",
    "nlets_switch.wire.schema",
)
FORBIDDEN = ("asyncio", "socket", "ssl", "sqlite3", "time", "logging", "structlog")
PACKAGE = Path(nlets_switch.__file__).parent

_PROBE = """
import builtins, json, sys
real = builtins.__import__
seen = []

def spy(name, globals=None, locals=None, fromlist=(), level=0):
    importer = (globals or {}).get("__name__") or ""
    if importer.startswith("nlets_switch") and level == 0:
        seen.append((importer, name))
    return real(name, globals, locals, fromlist, level)

builtins.__import__ = spy
for m in MODULES:
    __import__(m)
builtins.__import__ = real
print(json.dumps({"modules": sorted(sys.modules), "imports": seen}))
"""


def _probe() -> dict[str, list[object]]:
    code = f"MODULES = {PURE_MODULES!r}\n{_PROBE}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    result: dict[str, list[object]] = json.loads(out.stdout)
    return result


def test_importing_the_engine_and_codec_loads_no_io_clock_or_logging() -> None:
    got = _probe()
    loaded = {str(m).split(".")[0] for m in got["modules"]}
    assert not {"asyncio", "socket", "ssl", "sqlite3", "logging", "structlog"} & loaded
    # The configuration (pydantic, YAML, file paths) stays out of the engine too.
    assert "nlets_switch.config" not in got["modules"]
    bad = [(imp, name) for imp, name in got["imports"]  # type: ignore[misc]
           if str(name).split(".")[0] in FORBIDDEN]
    assert bad == []


def _imports_in(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_of_core_or_wire_imports_them_anywhere() -> None:
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(_imports_in(p) & set(FORBIDDEN))
        for sub in ("core", "wire") for p in sorted((PACKAGE / sub).glob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}
