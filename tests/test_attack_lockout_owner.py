"""Attack: a stranger locks a real agency out, against a real ``serve`` (issue 11, hole 2).

Before: the lock-out counted per ORI, so anyone who could reach the port
locked an agency out for 10 minutes with 5 guesses, again and again, and
there was no unlock. Now what locks is the source (for that ORI); only past
a much higher count, from many sources, the ORI itself (with an alert); and
``nlets-switch unlock ORI|ADDRESS`` lifts either, audited.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest_serve import serving, sign_on
from tests.test_attack_guessing import REJECTED, secured

STRANGER = "127.0.0.2"
AGENCY = "127.0.0.1"


async def test_a_strangers_guesses_do_not_lock_the_agency_out(tmp_path: Path) -> None:
    async with serving(tmp_path, secured(), http=True) as sw:
        for burst in range(3):
            for i in range(5):
                f, w = await sign_on(sw.port, f"AZNLETS20 guess{burst}{i}".encode(), STRANGER)
                w.close()
                assert f is not None and f.body == REJECTED
            # The agency, at its own address, signs on with its credential every time.
            f, w = await sign_on(sw.port, b"AZNLETS20 right-secret", AGENCY)
            assert f is not None and (f.letter, f.body) == ("A", b"NL0000000")
            w.close()
        # The stranger is locked out, even with the right credential.
        f, w = await sign_on(sw.port, b"AZNLETS20 right-secret", STRANGER)
        w.close()
        assert f is not None and f.body == REJECTED
        rows = await sw.wait_audit(lambda r: any(x["type"] == "lockout" for x in r))
        lock = next(r for r in rows if r["type"] == "lockout")
        assert lock["subject"] == "AZNLETS20" and lock["detail"]["source"] == STRANGER

        # The operator lifts the stranger's lock-out (audited), by address.
        done = sw.cli("unlock", STRANGER, "--http", f"127.0.0.1:{sw.http}")
        assert done.returncode == 0, done.stderr
        assert "1 lock-out(s) lifted" in done.stdout
        f, w = await sign_on(sw.port, b"AZNLETS20 right-secret", STRANGER)
        w.close()
        assert f is not None and f.letter == "A"
        rows = await sw.wait_audit(lambda r: any(x["type"] == "unlock" for x in r))
        [un] = [r for r in rows if r["type"] == "unlock"]
        assert (un["outcome"], un["detail"]["target"]) == ("success", STRANGER)
        # Nothing locked: said so, exit 0; no switch there: exit 2.
        again = sw.cli("unlock", "AZNLETS20", "--http", f"127.0.0.1:{sw.http}")
        assert (again.returncode, again.stdout.strip()) == (
            0, "AZNLETS20: nothing was locked out")
    gone = sw.cli("unlock", "AZNLETS20", "--http", f"127.0.0.1:{sw.http}", "--timeout", "2")
    assert gone.returncode == 2


async def test_many_sources_lock_the_ori_with_an_alert_and_unlock_lifts_it(
        tmp_path: Path) -> None:
    raw = secured()
    raw["security"]["ori_lockout_after"] = 8
    async with serving(tmp_path, raw, http=True) as sw:
        for i in range(8):
            f, w = await sign_on(sw.port, b"AZNLETS20 wrong", f"127.0.0.{10 + i}")
            w.close()
        await sw.wait_audit(
            lambda r: any(x["type"] == "lockout" and x["detail"].get("alert") for x in r))
        f, w = await sign_on(sw.port, b"AZNLETS20 right-secret", AGENCY)
        w.close()
        assert f is not None and f.body == REJECTED  # the ORI itself is locked now
        done = sw.cli("unlock", "AZNLETS20", "--http", f"127.0.0.1:{sw.http}")
        assert done.returncode == 0 and "lifted" in done.stdout, done
        f, w = await sign_on(sw.port, b"AZNLETS20 right-secret", AGENCY)
        w.close()
        assert f is not None and f.letter == "A"
