"""The adapter loader: refusals with names, the listing, and a third-party adapter package."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from nlets_switch.adapters.states import StatesAdapter

from nlets_switch.cli import main
from nlets_switch.errors import AdapterError
from nlets_switch.services import adapter as ad
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from nlets_switch.wire.schema import load_schemas
from tests.conftest_services import FAST, world

FIXTURE = Path(__file__).parent / "fixtures" / "thirdparty_adapter"


class Fake(StatesAdapter):
    """A states-like adapter whose identity the tests choose."""

    def __init__(self, name: str, keys: set[str], api: int = ad.API_VERSION) -> None:
        super().__init__()
        self.name = name
        self.keys = frozenset(keys)
        self.API_VERSION = api  # type: ignore[misc]


def loaded(a: Fake, dist: str = "acme-adapters 2.0") -> ad.Loaded:
    return ad.check_one(a, a.name, dist, f"{a.name} = acme:{a.name.title()}")


def test_bundled_adapters_load_through_the_entry_point_group() -> None:
    found = {a.name: a for a in ad.discover()}
    assert {"leis", "states"} <= set(found)
    assert found["leis"].keys == {"IAQ", "GPQ"}
    assert found["states"].distribution.startswith("nlets-switch ")
    ad.check_adapters([found["leis"], found["states"]], load_schemas())


def test_wrong_api_version_is_refused_with_its_source() -> None:
    with pytest.raises(AdapterError) as e:
        loaded(Fake("oldie", {"YQ"}, api=0))
    msg = str(e.value)
    assert "'oldie'" in msg and "acme-adapters 2.0" in msg and "oldie = acme:Oldie" in msg
    assert "version 0" in msg and f"supports version {ad.API_VERSION}" in msg


def test_key_without_schema_is_refused() -> None:
    with pytest.raises(AdapterError) as e:
        ad.check_adapters([loaded(Fake("zed", {"ZZQ"}))], load_schemas())
    assert "'zed'" in str(e.value) and "ZZQ" in str(e.value) and "acme-adapters" in str(e.value)


def test_two_adapters_claiming_one_key_are_refused() -> None:
    first = loaded(Fake("alpha", {"DQ", "YQ"}), "alpha-dist 1.0")
    second = loaded(Fake("beta", {"YQ"}), "beta-dist 3.1")
    with pytest.raises(AdapterError) as e:
        ad.check_adapters([first, second], load_schemas())
    msg = str(e.value)
    assert "key YQ" in msg and "'alpha'" in msg and "'beta'" in msg
    assert "alpha-dist 1.0" in msg and "beta-dist 3.1" in msg


async def test_build_switch_refuses_a_conflict(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="key DQ is claimed by two adapters"):
        async with world(tmp_path, FAST, [loaded(Fake("states", {"DQ"})),
                                          loaded(Fake("other", {"DQ"}))]):
            pass


def test_adapters_command_lists_name_version_keys_distribution(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["adapters"]) == 0
    out = capsys.readouterr().out
    assert "leis" in out and "GPQ IAQ" in out and "AQ DNQ DQ FQ IQ KQ RQ SOQ" in out
    assert "nlets-switch 0.1.0" in out


@pytest.fixture
def thirdparty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The fixture distribution pip-installed (offline) into a directory on sys.path.

    A target directory rather than the shared virtualenv, so that other test
    runs never see the extra adapter.
    """
    target = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-input", "--quiet",
         "--disable-pip-version-check", "--target", str(target), str(FIXTURE)],
        capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        pytest.skip(f"cannot build the fixture package offline: {proc.stderr[-300:]}")
    monkeypatch.syspath_prepend(str(target))
    return target


async def test_thirdparty_adapter_package_answers_yq(
        thirdparty: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    names = {a.name: a for a in ad.discover()}
    assert names["yqdemo"].distribution == "nlets-yq-demo 0.3.0"
    assert main(["adapters"]) == 0
    assert "yqdemo" in capsys.readouterr().out
    services = {**FAST, "yqdemo": {"answer": "CONFIRMED STILL STOLEN"}}
    async with world(tmp_path / "data", services) as sw:
        host, port = sw.addresses[0]
        c = await Client.connect(host, port, "AZNLETS20")
        ans = await c.send("YQ.AZNLETS20.TX0000000.*HC1.TXT\nRTY/SL.RNO/1.PRI/U.OCA/23-0001."
                           "NIC/V123456789.LIC/ABC1234.LIS/TX.LIY/2026.LIT/PC")
        assert ans.ok
        yr = parse_output(await c.receive(5))
        assert (yr.key, yr.sender, yr.receiver, yr.control) == ("YR", "TX0000000", "AZNLETS20",
                                                                "HC1")
        assert yr.text == "HIT CONFIRMED STILL STOLEN\nNIC/V123456789"
        # The bundled adapters still answer beside it.
        assert (await c.send("DQ.AZNLETS20.TX.TXT\nOLN/D11111111")).ok
        dr = parse_output(await c.receive(5))
        assert dr.key == "DR"
        await c.close()
