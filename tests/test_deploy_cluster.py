"""deploy/cluster/ stays true to the program: the compose file's and the systemd unit's
commands parse with the real command line, the shared configuration is valid and points
every node at one store and one set of shared keys, and the three nodes differ only in
what must differ (node id, published port, data volume)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from nlets_switch.cli import build_parser
from nlets_switch.config import load_config

DEPLOY = Path(__file__).resolve().parent.parent / "deploy" / "cluster"


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def test_the_shared_configuration_is_valid_and_names_one_store_and_shared_keys() -> None:
    cfg = load_config(str(DEPLOY / "switch.yaml"))
    assert cfg.store.url and cfg.store.url.startswith("postgresql://")
    assert cfg.store.node_id is None  # each node names itself (--node-id)
    assert cfg.security.text_key_file == "/etc/nlets-switch/keys/text.keys"
    assert cfg.audit.key_file == "/etc/nlets-switch/keys/audit.key"
    # Keys outside the data directory (issue 11).
    assert not str(cfg.security.text_key_file).startswith(str(cfg.data_dir))


def test_three_nodes_on_one_database_each_its_own_id_port_and_volume() -> None:
    services = _compose()["services"]
    nodes = {name: s for name, s in services.items() if "serve" in (s.get("command") or [])}
    assert sorted(nodes) == ["n1", "n2", "n3"]
    parser = build_parser()
    ids, ports, volumes = set(), set(), set()
    for name, s in nodes.items():
        args = parser.parse_args(s["command"])
        assert args.node_id == name and args.config == "/etc/nlets-switch/switch.yaml"
        ids.add(args.node_id)
        ports.update(s["ports"])
        mounts = set(s["volumes"])
        assert "keys:/etc/nlets-switch/keys:ro" in mounts
        assert "./switch.yaml:/etc/nlets-switch/switch.yaml:ro" in mounts
        volumes.update(m.split(":")[0] for m in mounts if m.endswith("/var/lib/nlets-switch")
                       or "/var/lib/nlets-switch " in m)
        assert s["depends_on"]["db"] == {"condition": "service_healthy"}
        assert s["depends_on"]["keys"] == {"condition": "service_completed_successfully"}
    assert len(ids) == len(ports) == 3 and volumes == {"n1", "n2", "n3"}
    assert services["db"]["image"].startswith("postgres:15")
    # The shared configuration's store is the compose file's database service.
    assert "@db/" in load_config(str(DEPLOY / "switch.yaml")).store.url


def test_the_systemd_unit_runs_a_node_named_by_its_instance() -> None:
    unit = (DEPLOY / "nlets-switch@.service").read_text().replace("\\\n", " ")
    exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit, re.M)
    assert exec_start is not None and exec_start[1].endswith("nlets-switch")
    argv = shlex.split(exec_start[2].replace("${LISTEN}", "10.0.0.1:7330")
                       .replace("${HTTP}", "127.0.0.1:7331").replace("%i", "n1"))
    args = build_parser().parse_args(argv)
    assert (args.node_id, args.listen) == ("n1", ["10.0.0.1:7330"])
    # A duplicate node id exits 2 (tests/test_cluster.py): systemd must not loop on it.
    assert re.search(r"^RestartPreventExitStatus=2$", unit, re.M)
    assert re.search(r"^UMask=0077$", unit, re.M)
