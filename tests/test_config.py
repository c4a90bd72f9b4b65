"""Configuration: the demo world, and errors named by key path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlets_switch.config import config_from_dict, demo_config, load_config, with_overrides
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
    # A Canadian province is Canada, answered by the simulated CPIC (issue 13);
    # a code that is no state, province or counterpart is unknown.
    assert d.resolve("ON", "state").link == "CNNLETS00"  # type: ignore[union-attr]
    assert d.resolve("ZZ", "state") is None


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


# -- pydantic models: every problem at once, in the switch's words ---------------------


@pytest.mark.parametrize(("raw", "problem"), [
    ({"limits": {"window": 0}}, "limits.window: must be between 1 and 10000, got 0"),
    ({"limits": {"window": "x"}}, "limits.window: expected a whole number, got 'x'"),
    ({"limits": {"max_frame": 100, "max_message": 96}},
     "limits.max_message: must be at most limits.max_frame - 5 (95)"),
    ({"limits": [1]}, "limits: expected a mapping"),
    ({"security": {"lockout_minutes": True}},
     "security.lockout_minutes: expected a number, got True"),
    ({"switch": {"listen": "nowhere"}}, "switch.listen[0].address: expected HOST:PORT, "
                                        "got 'nowhere'"),
    ({"listeners": []}, "listeners: expected a non-empty list"),
    ({"listeners": [{"address": "127.0.0.1:1", "no_credential": "some"}]},
     "listeners[0].no_credential: expected loopback, any or never"),
    ({"listeners": [{"address": "127.0.0.1:1", "tls": {"cert": "/nonexistent.pem"}}]},
     "listeners[0].tls.cert: no such file: /nonexistent.pem"),
    ({"listeners": [{"address": "127.0.0.1:1", "tls": {}}]},
     "listeners[0].tls.ca: missing (a PEM file; `nlets-switch pki init` makes them)"),
    ({"hold": {"AM": {"expire": 0}}}, "hold.AM.expire: must be between 1 and 3.1536e+07, got 0"),
    ({"hold": {"AM": None}}, "hold.AM: expected a mapping with 'held' and/or 'expire'"),
    ({"links": {"ori": "AZNLETS20"}}, "links: expected a list of ORIs"),
    ({"links": [{"ori": "NL0000000"}]}, "links[0].ori: NL0000000 is the switch itself"),
    ({"links": [{"ori": "AZ0070500", "speaks_for": ["AZ0070500", "X"]}]},
     "links[0].speaks_for[1]: not a 9-character ORI: 'X'"),
    ({"links": [{"ori": "AZ0070500", "credential": "secret"}]},
     "links[0].credential: expected a scrypt hash made by `nlets-switch hash-credential` "
     "(never the credential itself)"),
    ({"links": [{"ori": "ON0070500", "signon": "control_terminal"}]},
     "links[0].signon: served through a control terminal, but state ON has none"),
    ({"links": [{"ori": "AZNLETS20", "role": "control_terminal"},
                {"ori": "AZNLETS30", "role": "control_terminal"}]},
     "links[1].role: state AZ already has control terminal AZNLETS20"),
    ({"mqtt": {"port": 1}}, "mqtt.host: required, the broker's host name"),
    ({"mqtt": {"host": "h", "keepalive": 0}},
     "mqtt.keepalive: expected whole seconds 1-65535, got 0"),
    ({"api": {"tokens": [{"name": "a", "token": "x" * 16}, {"name": "a", "token": "y" * 16}]}},
     "api.tokens[1].name: 'a' appears twice"),
    ({"audit": {"key": "00" * 16, "key_file": "k"}}, "audit.key: give key or key_file, not both"),
    ({"services": {"nl": {"gather_s": 601}}},
     "services.nl.gather_s: must be between 0 and 600, got 601"),
    ({"services": {"leis": {"colour": 1}}},
     "services.leis.colour: unknown key (known: enabled, delay_s, seed, persons, limit)"),
    ([], "(top): expected a mapping"),
])
def test_problem_wording(raw: object, problem: str) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw)
    assert problem in e.value.problems


def test_every_problem_of_every_section_comes_back_at_once() -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict({"limits": {"window": 0}, "mqtt": {"port": 0},
                          "retention": {"audit_days": 0}, "links": [{"ori": "X"}],
                          "services": {"states": {"no_answer": 2}}})
    assert [p.split(":")[0] for p in e.value.problems] == [
        "limits.window", "links[0].ori", "services.states.no_answer", "mqtt.host", "mqtt.port",
        "retention.audit_days"]


def test_switch_listen_and_listeners_together_are_refused_naming_both(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as e:
        config_from_dict({"switch": {"listen": "127.0.0.1:7330"},
                          "listeners": [{"address": "127.0.0.1:7443"}]})
    assert e.value.problems == ("listeners: give switch.listen or listeners, not both",)
    f = tmp_path / "both.yaml"
    f.write_text("switch: {listen: 127.0.0.1:7330}\nlisteners: [{address: 127.0.0.1:7443}]\n")
    r = run("check-config", str(f))
    assert r.returncode == 1 and "switch.listen" in r.stderr and "listeners" in r.stderr
    # Either alone is fine; switch.listen also takes a list.
    one = config_from_dict({"listeners": [{"address": "127.0.0.1:7443", "no_credential": "any"}]})
    assert [(lst.address, lst.no_credential) for lst in one.listeners] == [
        ("127.0.0.1:7443", "any")]
    two = config_from_dict({"switch": {"listen": ["127.0.0.1:1", {"address": "[::1]:2"}]}})
    assert [lst.address for lst in two.listeners] == ["127.0.0.1:1", "::1:2"]


def _doc() -> str:
    return (Path(__file__).parent.parent / "docs" / "configuration.md").read_text()


def test_documented_example_is_valid_but_for_its_pem_files() -> None:
    import yaml

    text = _doc()
    example = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    with pytest.raises(ConfigError) as e:
        config_from_dict(yaml.safe_load(example))
    # The TLS listener names files the reader makes with `pki init`; nothing else is wrong
    # (the example once set both switch.listen and listeners).
    assert all(p.startswith("listeners[1].tls.") and ": no such file:" in p
               for p in e.value.problems), e.value.problems


def test_reference_table_in_the_docs_is_made_from_the_models() -> None:
    from nlets_switch.config.reference import BEGIN, END, reference

    text = _doc()
    block = text.split(BEGIN, 1)[1].split(END, 1)[0]
    assert block.strip() == reference().strip(), (
        "docs/configuration.md is out of date: run python -m nlets_switch.config.reference "
        "and paste its output between the markers")
    # Every key of every section model is there, with its default.
    from nlets_switch.adapters.leis import LeisSettings
    from nlets_switch.adapters.states import StatesSettings

    from nlets_switch.config import Limits, Security
    from nlets_switch.ops.settings import MqttSettings, RetentionSettings
    from nlets_switch.services.settings import NlSettings

    for prefix, model in (("limits", Limits), ("security", Security), ("mqtt", MqttSettings),
                          ("retention", RetentionSettings), ("services.nl", NlSettings),
                          ("services.leis", LeisSettings), ("services.states", StatesSettings)):
        for name in model.model_fields:
            assert f"| `{prefix}.{name}` |" in block, f"{prefix}.{name}"
    assert "| `limits.window` | 32 |" in block and "| `services.leis.persons` | 10000 |" in block


def test_configuration_is_frozen_and_overrides_make_a_new_one() -> None:
    cfg = demo_config()
    with pytest.raises(ValueError):
        cfg.switch_id = "other"  # type: ignore[misc]
    tls = {"ca": __file__, "cert": __file__, "key": __file__}
    base = config_from_dict({"listeners": [{"address": "127.0.0.1:7443", "tls": tls}]})
    moved = with_overrides(base, ["127.0.0.1:0", "127.0.0.2:9"], "/tmp/elsewhere")
    assert [lst.address for lst in moved.listeners] == ["127.0.0.1:0", "127.0.0.2:9"]
    assert all(lst.tls == base.listeners[0].tls for lst in moved.listeners)
    assert moved.data_dir == Path("/tmp/elsewhere") and base.data_dir == Path("nlets-data")
    assert moved.listeners[0].tls is not None and moved.listeners[0].tls["ca"] == __file__
    with pytest.raises(ConfigError) as e:
        with_overrides(base, ["nowhere"])
    assert e.value.problems == ("--listen[0]: expected HOST:PORT, got 'nowhere'",)


def test_sections_are_typed_with_their_defaults() -> None:
    cfg = config_from_dict({"retention": {"audit_days": 30},
                            "services": {"leis": {"persons": 500}, "nl": {"gather_s": 1}}})
    assert cfg.retention.audit_days == 30 and cfg.retention.messages_days == 365
    assert cfg.services.nl.gather_s == 1.0 and cfg.mqtt is None
    assert cfg.http.listen == "127.0.0.1:7331" and not cfg.api.configured
    from nlets_switch.adapters.leis import LeisSettings
    from nlets_switch.adapters.states import StatesSettings

    leis = cfg.services.section("leis", LeisSettings)
    assert isinstance(leis.settings, LeisSettings)
    assert (leis.settings.persons, leis.settings.delay_s) == (500, 2.0)
    assert leis.options["persons"] == 500 and leis.enabled
    states = cfg.services.section("states", StatesSettings)  # not in the file: defaults
    assert isinstance(states.settings, StatesSettings) and states.settings.simulate == "all"


def test_links_empty_is_a_directory_of_simulated_states_only() -> None:
    cfg = config_from_dict({"links": []})
    assert cfg.entries and all(e.simulated for e in cfg.entries)
    assert len(cfg.entries) == 54  # 51 states and DC; Canada, INTERPOL, Mexico


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)


def test_the_pure_core_does_not_load_the_configuration() -> None:
    r = _fresh("import sys, nlets_switch.core.router, nlets_switch.core.directory\n"
               "bad = {'pydantic', 'nlets_switch.config'} & set(sys.modules)\n"
               "assert not bad, bad")
    assert r.returncode == 0, r.stderr


def test_importing_the_configuration_stays_light() -> None:
    # Every section model is composed: the ops and services sections included.
    r = _fresh("import sys\n"
               "from nlets_switch.config import Config, config_from_dict, load_config\n"
               "import nlets_switch.config.model, nlets_switch.ops.settings\n"
               "import nlets_switch.services.settings\n"
               "bad = {'asyncio', 'sqlite3', 'ssl', 'socket', 'structlog'} & set(sys.modules)\n"
               "assert not bad, bad")
    assert r.returncode == 0, r.stderr


_SCALARS = st.none() | st.booleans() | st.integers(-5, 70_000) | st.floats(allow_nan=False) | \
    st.sampled_from(["", "AZNLETS20", "127.0.0.1:0", "off", "all", "{held, expire}", "x" * 20])
_KEYS = st.sampled_from(["switch", "listen", "listeners", "limits", "window", "hold", "AM",
                         "held", "expire", "links", "ori", "role", "services", "nl", "leis",
                         "states", "simulate", "mqtt", "host", "api", "tokens", "name", "audit",
                         "key", "retention", "security", "tls", "address", "bogus"])
_YAML = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4) |
                     st.dictionaries(_KEYS | st.integers(0, 3), inner, max_size=5), max_leaves=25)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.dictionaries(_KEYS, _YAML, max_size=6))
def test_any_yaml_gives_a_configuration_or_key_path_problems(raw: dict[str, object]) -> None:
    try:
        config_from_dict(raw)
    except ConfigError as e:
        assert e.problems and all(": " in p for p in e.problems)


@pytest.mark.parametrize("module", ["nlets_switch.config.model", "nlets_switch.config.sections",
                                    "nlets_switch.ops.settings",
                                    "nlets_switch.services.settings"])
def test_each_section_module_imports_on_its_own(module: str) -> None:
    # A section owner imports config.model, which runs the config package first:
    # the package must not import the owners back at that moment.
    r = _fresh(f"import {module}")
    assert r.returncode == 0, r.stderr
