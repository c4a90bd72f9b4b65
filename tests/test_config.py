"""Configuration: the demo world, and errors named by key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nlets_switch.config import config_from_dict, demo_config, load_config
from nlets_switch.core.directory import Directory
from nlets_switch.errors import ConfigError


def test_demo_world_of_part_8() -> None:
    cfg = demo_config()
    d = Directory(cfg.entries)
    assert [lst.address for lst in cfg.listeners] == ["127.0.0.1:7330"]
    for ori in ("AZNLETS20", "NYNLETS00", "AZ0070500", "VTICE0900"):
        assert d.sign_on_entry(ori) is not None
    assert d.sign_on_entry("NY0303000") is None
    assert len(d.states()) == 51  # 50 states and DC
    assert d.resolve("NY0303000", "ori").link == "NYNLETS00"  # type: ignore[union-attr]
    assert d.resolve("AX", "ax").link == "VTICE0900"  # type: ignore[union-attr]
    assert d.resolve("ON", "state") is None  # no Canadian province in the demo world


def test_every_error_is_named_by_its_key_path() -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict({
            "links": [{"ori": "AZNLETS20", "role": "control_terminal"},
                      {"ori": "AZNLETS20"},
                      {"ori": "BAD"},
                      {"ori": "NY0303000", "role": "boss", "colour": "red"}],
            "limits": {"window": 0, "speed": 3},
            "switch": {"timezone": "Mars/Olympus"},
            "listeners": [{"address": "localhost"}],
            "hold": {"AM": {"held": "yes"}},
            "bogus": 1,
        })
    problems = "\n".join(e.value.problems)
    for path in ("links[1].ori: AZNLETS20 is already defined at links[0]",
                 "links[2].ori: not a 9-character ORI",
                 "links[3].role:", "links[3].colour: unknown key",
                 "limits.window: must be between", "limits.speed: unknown limit",
                 "switch.timezone: unknown time zone", "listeners[0].address:",
                 "hold.AM.held: expected true or false", "bogus: unknown section"):
        assert path in problems


def test_load_config_reports_yaml_syntax_with_line(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("links:\n  - ori: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert "line" in e.value.problems[0]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", *args], capture_output=True,
                          text=True, timeout=60)


def test_check_config_command(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("links:\n  - {ori: AZNLETS20, role: control_terminal}\n")
    r = run("check-config", str(good))
    assert r.returncode == 0 and "OK" in r.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("links:\n" + "".join(f"  - {{ori: AZ00{i}0000}}\n" for i in range(3)) +
                   "  - {ori: NOPE}\n")
    r = run("check-config", str(bad))
    assert r.returncode == 1
    assert "links[3].ori: not a 9-character ORI" in r.stderr


def test_serve_refuses_a_bad_configuration(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("limits: {window: -1}\n")
    r = run("serve", "--config", str(bad), "--listen", "127.0.0.1:0", "--data-dir",
            str(tmp_path / "d"))
    assert r.returncode == 1
    assert "limits.window: must be between" in r.stderr


def test_deploy_examples_are_valid() -> None:
    for f in sorted(Path(__file__).parent.parent.joinpath("deploy").glob("*.yaml")):
        load_config(f)
