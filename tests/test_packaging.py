"""A plain, non-editable `pip install .` carries adapters/ and schemas/ inside nlets_switch."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out),
                    str(ROOT)], check=True, timeout=300, capture_output=True)
    [whl] = out.glob("nlets_switch-*.whl")
    return whl


def test_wheel_holds_schemas_and_adapters_inside_the_package(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "nlets_switch/schemas/DQ.yaml" in names
    assert "nlets_switch/schemas/xml/nlets.xsd" in names  # XML.md's XSD (issue 12)
    assert "nlets_switch/adapters/__init__.py" in names
    tops = {n.split("/")[0] for n in names}
    assert "schemas" not in tops and "adapters" not in tops  # names taken on PyPI
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry).decode()
    assert "nlets-switch = nlets_switch.cli:main" in text
    assert "[nlets_switch.adapters]" in text


def test_installed_wheel_loads_its_schemas(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                    str(target), str(wheel)], check=True, timeout=300, capture_output=True)
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import nlets_switch, nlets_switch.wire.schema as s; "
            f"assert nlets_switch.__file__.startswith({str(target)!r}); "
            "print(len(s.load_schemas()))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout) >= 23
