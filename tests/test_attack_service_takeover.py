"""Attack: taking over a service ORI, against a real ``serve`` (issue 11, hole 5).

Before: from loopback, with no credential, anyone signed on as ``VTICE0900``
or a simulated state terminal, received the inquiries (names, dates of
birth) and sent forged answers. Now service ORIs sign on only with a
credential or a client certificate; ``serve`` makes the credential its
out-of-process responders use at start-up (``DATA/service.credential``,
0600) and shows it in its banner.
"""

from __future__ import annotations

import asyncio
import stat
import sys
from pathlib import Path

import pytest

from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest_serve import serving, sign_on

REJECTED = b".01. SIGN-ON REJECTED"


@pytest.mark.parametrize("ori", ["VTICE0900", "TXNLETS00"])
async def test_a_service_ori_cannot_be_taken_over_from_loopback(tmp_path: Path,
                                                                ori: str) -> None:
    async with serving(tmp_path) as sw:
        for body in (ori.encode(), f"{ori} guess".encode()):
            f, w = await sign_on(sw.port, body)
            w.close()
            assert f is not None and (f.letter, f.body) == ("N", REJECTED)
        # The in-process service still answers for it: nothing was taken over.
        az = await Client.connect("127.0.0.1", sw.port, "AZNLETS20")
        try:
            if ori == "TXNLETS00":
                assert (await az.send("DQ.AZNLETS20.TX.*T1.TXT\nOLN/D11111111")).ok
                answer = parse_output(await az.receive(10))
                assert (answer.key, answer.sender) == ("DR", "TXNLETS00")
            else:
                assert (await az.send("AM.AZNLETS20.VTICE0900.TXT HELLO")).ok
                assert await az.drain(0.5) == []  # taken by the local service, not a stranger
        finally:
            await az.close()
        rows = await sw.wait_audit(lambda r: sum(x["type"] == "sign_on" and x["subject"] == ori
                                                 and x["outcome"] == "failure" for x in r) == 2)
        # (The in-process service's own attachment is audited too, as peer "local".)
        assert not any(x["type"] == "sign_on" and x["subject"] == ori
                       and x["outcome"] == "success" and x["detail"].get("peer") != "local"
                       for x in rows)


async def test_the_responder_signs_on_with_the_credential_serve_made(tmp_path: Path) -> None:
    async with serving(tmp_path) as sw:
        cred = sw.data / "service.credential"
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nlets_switch", "responder", "states",
            "--connect", f"127.0.0.1:{sw.port}", "--credential-file", str(cred),
            "--data-dir", str(tmp_path / "responder"), "--log-level", "warning",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"signed on as" in line and b"TXNLETS00" in line
        finally:
            proc.terminate()
            await proc.wait()
    # Good for one run only: gone once serve stops.
    assert not cred.exists()
