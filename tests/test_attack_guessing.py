"""Attack: credential guessing in parallel, against a real ``serve`` (issue 11, hole 1).

Before: the failure count was read before the credential check was awaited,
so 60 parallel wrong guesses caused no lock-out, and a burst of 200 guesses
that held the right credential signed on. Now the checks for one ORI run one
at a time and each failure is counted before the next is looked at: however
many connections carry them, at most ``lockout_after`` guesses are checked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from nlets_switch.server.credentials import hash_credential
from tests.conftest_serve import serving, sign_on

REJECTED = b".01. SIGN-ON REJECTED"


def secured(lockout_after: int = 5) -> dict[str, Any]:
    return {
        "links": [
            {"ori": "AZNLETS20", "role": "control_terminal",
             "credential": hash_credential("right-secret", n=2**12)},
            {"ori": "NYNLETS00", "role": "control_terminal",
             "credential": hash_credential("ny-secret", n=2**12)},
            {"ori": "AZ0070500"},
        ],
        "security": {"lockout_after": lockout_after, "lockout_minutes": 10},
    }


async def _burst(port: int, bodies: list[bytes]) -> list[bytes | None]:
    got = await asyncio.gather(*(sign_on(port, b, timeout=60) for b in bodies))
    for _, w in got:
        w.close()
    return [(f.letter.encode() + b" " + f.body) if f is not None else None for f, _ in got]


def burst_world() -> dict[str, Any]:
    # Every guess is let in (none gives way to the others as an idle connection
    # would), so each one reaches the credential check's queue.
    return {**secured(), "limits": {"max_unauthenticated_per_peer": 1000,
                                    "max_unauthenticated": 1000,
                                    "max_connections_per_peer": 1000,
                                    "max_connections": 1000}}


async def test_60_parallel_guesses_get_five_checks_then_the_lockout(tmp_path: Path) -> None:
    async with serving(tmp_path, burst_world()) as sw:
        answers = await _burst(sw.port, [f"AZNLETS20 guess{i}".encode() for i in range(60)])
        assert answers == [b"N " + REJECTED] * 60
        rows = await sw.wait_audit(lambda r: any(x["type"] == "lockout" for x in r))
        failures = [r for r in rows if r["type"] == "sign_on" and r["subject"] == "AZNLETS20"]
        reasons = [r["detail"]["reason"] for r in failures]
        # Five guesses were checked; the other 55 were refused as locked out, unchecked.
        assert reasons.count("bad credential or certificate") == 5
        assert reasons.count("locked out") == 55
        assert [r["subject"] for r in rows if r["type"] == "lockout"] == ["AZNLETS20"]
        # Three more bursts: still no more checks, and the right credential is refused.
        for _ in range(3):
            await _burst(sw.port, [f"AZNLETS20 again{i}".encode() for i in range(60)])
        frame, w = await sign_on(sw.port, b"AZNLETS20 right-secret")
        w.close()
        assert frame is not None and frame.body == REJECTED
        rows = await asyncio.to_thread(sw.audits, "sign_on")
        assert sum(r["detail"].get("reason") == "bad credential or certificate"
                   for r in rows) == 5
        # Never a credential in the trail.
        assert not any("guess" in str(r) or "secret" in str(r) for r in rows)
        # Another ORI is not touched.
        ny, w = await sign_on(sw.port, b"NYNLETS00 ny-secret")
        w.close()
        assert ny is not None and (ny.letter, ny.body) == ("A", b"NL0000000")


async def test_a_burst_of_200_holding_the_right_credential_does_not_sign_on(
        tmp_path: Path) -> None:
    async with serving(tmp_path, burst_world()) as sw:
        bodies = [f"AZNLETS20 guess{i}".encode() for i in range(200)]
        bodies[100] = b"AZNLETS20 right-secret"
        answers = await _burst(sw.port, bodies)
        assert b"A NL0000000" not in answers
        assert answers.count(b"N " + REJECTED) == 200, set(answers)
