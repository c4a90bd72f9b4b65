"""The operator commands against a running switch's API: queue, remove-status, broadcast;
their output, exit statuses, and permissions."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from nlets_switch.cli import main
from nlets_switch.core.events import Audit
from nlets_switch.tools.client import Client
from tests.test_operator_api import OFFICER, OPERATOR, READER, RULES, TOKENS, call

if TYPE_CHECKING:
    from nlets_switch.server.switch import Switch
    from tests.conftest_monitoring import MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]


_LOG = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cli:
    """Runs ``nlets-switch`` in a thread (the switch's loop goes on meanwhile)."""

    def __init__(self, addr: tuple[str, int] | None, capsys: pytest.CaptureFixture[str]) -> None:
        assert addr is not None
        self.http = f"{addr[0]}:{addr[1]}"
        self.capsys = capsys

    async def __call__(self, *argv: str, token: str | None = OPERATOR) -> tuple[int, str, str]:
        args = [argv[0], *argv[1:], "--http", self.http]
        if token is not None:
            args += ["--token", token]
        self.capsys.readouterr()
        code = await asyncio.to_thread(main, args)
        out, err = self.capsys.readouterr()
        # The switch's own log lines (same process) are not the command's output.
        out = "".join(ln for ln in out.splitlines(keepends=True) if not _LOG.match(ln))
        return code, out, err


def operator_audits(sw: Switch) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []

    def keep(e: Any) -> None:
        if isinstance(e, Audit) and e.type == "operator_action":
            found.append((e.subject, e.outcome, str(e.detail.get("action"))))
    sw.observers.append(keep)
    return found


async def test_queue_commands_list_show_release_edit_reroute_purge(
        monitored: MonitoredFactory, capsys: pytest.CaptureFixture[str]) -> None:
    sw, mon = await monitored({"api": TOKENS, "intervention": RULES})
    audits = operator_audits(sw)
    cli = Cli(mon.http_address, capsys)
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    agency = await Client.connect(host, port, "AZ0070500")
    code, out, _ = await cli("queue", "list", token=READER)
    assert code == 0 and "the intervention queue is empty" in out
    for word in ("ONE", "TWO", "THREE", "FOUR"):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT MESSAGE {word}")).ok
    await sw.journal.barrier()
    code, out, _ = await cli("queue", "list", token=READER)
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["ID", "MSG", "KEY", "FROM", "TO", "STATE",
                                              "RECEIVED", "(UTC)"]
    ids = [ln.split()[0] for ln in lines[1:]]
    assert len(ids) == 4 and all(ln.split()[2:6] == ["AM", "AZNLETS20", "NY", "review"]
                                 for ln in lines[1:])
    code, out, _ = await cli("queue", "show", ids[0], token=READER)
    assert code == 0 and "text withheld" in out and "MESSAGE ONE" not in out
    code, out, _ = await cli("queue", "show", ids[0], token=OFFICER)
    assert code == 0 and "MESSAGE ONE" in out

    code, out, _ = await cli("queue", "release", ids[0], "--reason", "fine")
    assert code == 0 and out.startswith("release: 1 delivery")
    assert "MESSAGE ONE" in await ny.receive(5)
    code, out, _ = await cli("queue", "edit", ids[1], "--text", "MESSAGE 2", "--reason", "x")
    assert code == 0 and "waits for review" in out
    code, out, _ = await cli("queue", "reroute", ids[2], "--to", "AZ0070500")
    assert code == 0
    assert "MESSAGE THREE" in await agency.receive(5)
    code, _, err = await cli("queue", "purge", ids[3])
    assert code == 3 and "reason" in err
    code, out, _ = await cli("queue", "purge", ids[3], "--reason", "duplicate")
    assert code == 0
    assert ".04." in await az.receive(5)
    await sw.journal.barrier()
    code, out, _ = await cli("queue", "list", token=READER)
    edited = out.splitlines()[1].split()
    assert len(out.splitlines()) == 2 and edited[5] == "review"
    code, out, _ = await cli("queue", "release", edited[0])
    got = await ny.receive(5)
    assert "MESSAGE 2" in got and "MESSAGE TWO" not in got
    code, _, err = await cli("queue", "release", ids[0])
    assert code == 3 and "already acted on" in err
    code, _, err = await cli("queue", "release", "999999")
    assert code == 3 and "no delivery 999999" in err
    assert audits == [("jane", "success", "release"), ("jane", "success", "edit"),
                      ("jane", "success", "reroute"), ("jane", "success", "purge"),
                      ("jane", "success", "release"), ("jane", "failure", "release")]
    for c in (az, ny, agency):
        await c.close()


async def test_held_queue_and_resend_commands(
        monitored: MonitoredFactory, capsys: pytest.CaptureFixture[str]) -> None:
    sw, mon = await monitored({"api": TOKENS})
    cli = Cli(mon.http_address, capsys)
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    for i in range(2):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT OWED {i}")).ok
        await az.receive(5)  # SM .02.
    await sw.journal.barrier()
    code, out, _ = await cli("queue", "list", "--held", "NYNLETS00", token=READER)
    assert code == 0 and len(out.splitlines()) == 3 and " held " in out
    code, out, _ = await cli("queue", "reroute", "--held", "NYNLETS00", "--to", "AZNLETS20")
    assert code == 0 and out.startswith("reroute: 2 deliveries (NYNLETS00)")
    assert {"OWED 0", "OWED 1"} == {next(w for w in ("OWED 0", "OWED 1") if w in t)
                                   for t in [await az.receive(5), await az.receive(5)]}
    code, _, err = await cli("queue", "purge", "--held", "NYNLETS00", "--reason", "x")
    assert code == 3 and "nothing is held for NYNLETS00" in err
    await sw.journal.barrier()
    code, out, _ = await cli("queue", "list", "--held", "NYNLETS00", token=READER)
    assert "nothing is owed to NYNLETS00" in out
    ny = await Client.connect(host, port, "NYNLETS00")
    assert (await az.send("AM.AZNLETS20.NY.TXT ONCE MORE")).ok
    await ny.receive(5)
    await sw.journal.barrier()
    # The message id, as an operator reads it in the message log.
    _, res = await call(mon.http_address, "GET", "/api/messages?key=AM&ori=NYNLETS00&limit=1",
                        READER)
    code, out, _ = await cli("queue", "resend", str(res["messages"][0]["id"]))
    assert code == 0 and out.startswith("resend: 1 delivery")
    assert "ONCE MORE" in await ny.receive(5)
    await az.close()
    await ny.close()


async def test_remove_status_and_broadcast_commands(
        monitored: MonitoredFactory, capsys: pytest.CaptureFixture[str]) -> None:
    sw, mon = await monitored({"api": TOKENS})
    audits = operator_audits(sw)
    cli = Cli(mon.http_address, capsys)
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    code, out, _ = await cli("remove-status", "NYNLETS00", "--keys", "AM", "--reason", "drill")
    assert code == 0 and out.strip() == (
        "NYNLETS00: on remove status for AM (senders get SM .04.)")
    code, out, _ = await cli("remove-status", "--list", token=READER)
    assert out.strip() == "NYNLETS00  AM  by jane: drill"
    assert (await az.send("AM.AZNLETS20.NY.TXT HI")).ok
    assert ".04." in await az.receive(5)
    code, out, _ = await cli("remove-status", "NYNLETS00", "--lift")
    assert code == 0 and "lifted" in out
    code, _, err = await cli("remove-status", "NYNLETS00", "--lift")
    assert code == 3 and "not on remove status" in err
    code, _, err = await cli("remove-status", "XX1234567")
    assert code == 3 and "not in the directory" in err

    code, out, _ = await cli("broadcast", "out-of-service", "--until", "0300")
    assert code == 0 and out.strip() == "sent to 2 terminal(s): AZNLETS20 NYNLETS00"
    for c in (az, ny):
        assert "NLETS TEMPORARILY OUT OF SERVICE UNTIL 0300 UTC" in await c.receive(5)
    code, out, _ = await cli("broadcast", "in-service")
    assert code == 0
    for c in (az, ny):
        assert "NLETS IN SERVICE" in await c.receive(5)
    code, out, _ = await cli("broadcast", "out-of-service")
    assert code == 3 and "--until" in out
    assert audits == [("jane", "success", "remove_status"),
                      ("jane", "success", "lift_remove_status"),
                      ("jane", "failure", "lift_remove_status"),
                      ("jane", "success", "broadcast"), ("jane", "success", "broadcast")]
    await az.close()
    await ny.close()


async def test_release_of_a_held_queue_per_destination_and_per_delivery(
        monitored: MonitoredFactory, capsys: pytest.CaptureFixture[str]) -> None:
    sw, mon = await monitored({"api": TOKENS, "intervention": {"rules": [
        {"name": "watch-word", "text": "CONTRABAND"}]}})
    audits = operator_audits(sw)
    cli = Cli(mon.http_address, capsys)
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT PLAIN")).ok
    assert ".02." in await az.receive(5)  # NY is not signed on: owed
    assert (await az.send("AM.AZNLETS20.NY.TXT CONTRABAND LIST")).ok  # held for review
    await sw.journal.barrier()
    code, out, _ = await cli("queue", "list", "--held", "NYNLETS00", token=READER)
    rows = [ln.split() for ln in out.splitlines()[1:]]
    assert code == 0 and sorted(r[5] for r in rows) == ["held", "review"]
    owed = next(r[0] for r in rows if r[5] == "held")
    code, _, err = await cli("queue", "release", owed, "--reason", "go")
    assert code == 3 and "wait for NYNLETS00 to sign on and go then" in err
    code, out, _ = await cli("queue", "release", "--held", "NYNLETS00", "--reason", "cleared")
    assert code == 0, out
    assert out.strip() == ("release: 1 delivery (NYNLETS00); 1 owed until it signs on; "
                           "1 already owed, unchanged")
    ny = await Client.connect(host, port, "NYNLETS00")
    got = [await ny.receive(5), await ny.receive(5)]
    assert "PLAIN" in got[0] and "CONTRABAND LIST" in got[1]
    assert audits == [("jane", "failure", "release"), ("jane", "success", "release")]
    await az.close()
    await ny.close()


@pytest.mark.parametrize("argv", [
    ("queue", "release", "1"), ("queue", "edit", "1", "--text", "X"),
    ("queue", "reroute", "1", "--to", "AZ"), ("queue", "purge", "1", "--reason", "r"),
    ("queue", "purge", "--held", "NYNLETS00", "--reason", "r"),
    ("queue", "reroute", "--held", "NYNLETS00", "--to", "AZ"), ("queue", "resend", "1"),
    ("queue", "release", "--held", "NYNLETS00"),
    ("remove-status", "NYNLETS00"), ("remove-status", "NYNLETS00", "--lift"),
    ("broadcast", "in-service"), ("broadcast", "out-of-service", "--until", "0300"),
])
async def test_every_action_with_a_read_token_is_refused_with_status_1(
        monitored: MonitoredFactory, capsys: pytest.CaptureFixture[str],
        argv: tuple[str, ...]) -> None:
    sw, mon = await monitored({"api": TOKENS})
    audits = operator_audits(sw)
    cli = Cli(mon.http_address, capsys)
    code, _, err = await cli(*argv, token=READER)
    assert code == 1 and "needs a token with operate" in err
    assert [(s, o) for s, o, _ in audits] == [("ops", "denied")]
    code, _, err = await cli(*argv, token="not-a-token-at-all-000")
    assert code == 1


async def test_the_real_command_uses_the_environment_token_and_says_no_switch(
        monitored: MonitoredFactory) -> None:
    _sw, mon = await monitored({"api": TOKENS})
    assert mon.http_address is not None
    h, p = mon.http_address
    env = {**os.environ, "NLETS_API_TOKEN": OPERATOR}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nlets_switch", "queue", "list", "--http", f"{h}:{p}",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert b"the intervention queue is empty" in out
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "nlets_switch", "broadcast", "in-service", "--http",
        f"127.0.0.1:{free_port()}", stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"no switch API at" in err
