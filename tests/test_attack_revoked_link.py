"""Attack: a revoked certificate keeps its live link, against a real ``serve`` (issue 11, hole 6).

Before: after ``pki revoke``, a link already signed on with that certificate
kept sending and receiving until it reconnected. Now the switch looks at the
CRL once a second; when it changes, every live link whose certificate it
revokes gets ``N .01. CERTIFICATE REVOKED`` and is closed, within 5 s, and
the sign-off is audited (a security event).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from nlets_switch.server import pki
from nlets_switch.wire import frames as fr
from tests.conftest import free_port
from tests.conftest_serve import serving


async def _tls_sign_on(port: int, d: Path, ori: str) -> tuple[asyncio.StreamReader,
                                                             asyncio.StreamWriter]:
    p = pki.pki_paths(d)
    cert, key = p.client(ori)
    ctx = pki.client_ssl_context(p.ca, cert, key)
    r, w = await asyncio.open_connection("127.0.0.1", port, ssl=ctx,
                                         server_hostname="localhost")
    w.write(fr.encode_frame(fr.SIGN_ON, 1, ori.encode()))
    [f] = fr.FrameBuffer().feed(await asyncio.wait_for(r.read(4096), 10))
    assert (f.letter, f.body) == ("A", b"NL0000000")
    return r, w


async def _frames_until_closed(r: asyncio.StreamReader, timeout: float) -> list[fr.Frame]:
    buf, got = fr.FrameBuffer(), []
    async with asyncio.timeout(timeout):
        while data := await r.read(4096):
            got += buf.feed(data)
    return got


async def test_a_revoked_certificates_live_link_is_signed_off_within_5_s(
        tmp_path: Path) -> None:
    d = tmp_path / "pki"
    pki.init_ca(d)
    for ori in ("AZNLETS20", "NYNLETS00"):
        pki.issue_client(d, ori)
    p = pki.pki_paths(d)
    port = free_port()
    raw = {"listeners": [{"address": f"127.0.0.1:{port}", "tls": {
        "ca": str(p.ca), "cert": str(p.cert), "key": str(p.key), "crl": str(p.crl),
        "require_client_cert": True}}]}
    async with serving(tmp_path, raw, port=port) as sw:
        az_r, az_w = await _tls_sign_on(port, d, "AZNLETS20")
        ny_r, ny_w = await _tls_sign_on(port, d, "NYNLETS00")
        done = await asyncio.to_thread(sw.cli, "pki", "revoke", "AZNLETS20", "--dir", str(d))
        assert done.returncode == 0, done.stderr
        t0 = time.monotonic()
        got = await _frames_until_closed(az_r, 5.0)
        assert time.monotonic() - t0 < 5.0
        assert [(f.letter, f.seq, f.body) for f in got] == [
            ("N", 0, b".01. CERTIFICATE REVOKED")]
        # NY's link is not touched: it still carries a message and gets its A.
        ny_w.write(fr.encode_frame(fr.MESSAGE, 2, b"AM.NYNLETS00.NYNLETS00.TXT STILL UP"))
        frames = fr.FrameBuffer().feed(await asyncio.wait_for(ny_r.read(4096), 10))
        assert ("A", 2) in [(f.letter, f.seq) for f in frames]
        rows = await sw.wait_audit(lambda r: any(x["type"] == "revoked" for x in r))
        [rev] = [x for x in rows if x["type"] == "revoked"]
        assert (rev["subject"], rev["outcome"]) == ("AZNLETS20", "signed_off")
        assert rev["detail"]["serial"]
        # And it cannot come back with that certificate.
        try:
            await _tls_sign_on(port, d, "AZNLETS20")
            raise AssertionError("a revoked certificate signed on again")
        except (OSError, AssertionError, ValueError, asyncio.IncompleteReadError) as e:
            assert "signed on again" not in str(e)
        az_w.close()
        ny_w.close()
