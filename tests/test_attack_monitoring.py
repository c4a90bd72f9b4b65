"""Attack: reading the monitoring without a token (issue 11, hole 8), against a real ``serve``.

With ``api.tokens`` configured, ``/events``, ``/metrics`` and the API answer
401 without a token; a bearer token opens them, and so does the session
cookie the dashboard gets by signing in (HttpOnly, SameSite=Strict). A token
without ``see_text`` does not see control fields on the event stream. Every
response carries the security headers and no server version.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import aiohttp

from nlets_switch.tools.client import Client
from tests.conftest_serve_process import Served, serve_process

OPS = "ops-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"
CONFIG = {"api": {"tokens": [{"name": "ops", "token": OPS, "see_text": True},
                             {"name": "reader", "token": READER}]}}


async def _status(s: aiohttp.ClientSession, url: str, **kw: object) -> int:
    async with s.get(url, **kw) as r:  # type: ignore[arg-type]
        return r.status


async def _events_until(s: aiohttp.ClientSession, url: str, want: str,
                        headers: dict[str, str] | None = None) -> str:
    """Read the SSE stream until ``want`` occurs in it; return what was read."""
    seen = ""
    async with s.get(url, headers=headers) as r:
        assert r.status == 200
        async with asyncio.timeout(10):
            async for chunk in r.content.iter_any():
                seen += chunk.decode()
                if want in seen:
                    return seen
    return seen


async def _routed_with_control(served: Served) -> None:
    az = await Client.connect("127.0.0.1", served.port, "AZNLETS20")
    ny = await Client.connect("127.0.0.1", served.port, "NYNLETS00")
    assert (await az.send("AM.AZNLETS20.NY.*CTLSECRET1.TXT HELLO")).ok
    await ny.receive(5)
    await az.close()
    await ny.close()


async def test_monitoring_needs_a_token_once_tokens_are_configured(tmp_path: Path) -> None:
    with serve_process(tmp_path, CONFIG) as served:
        base = served.base
        # unsafe=True: keep cookies of an IP address host (127.0.0.1), as a browser does.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            for path in ("/events", "/metrics", "/api/links", "/api/stats"):
                assert await _status(s, base + path) == 401, path
                assert await _status(s, base + path, headers={
                    "Authorization": "Bearer not-a-token-0123456789"}) == 401, path
            assert await _status(s, base + "/metrics",
                                 headers={"Authorization": f"Bearer {READER}"}) == 200
            # The page itself holds no data and loads; it asks for a token.
            async with s.get(base + "/session") as r:
                assert await r.json() == {"signed_in": False, "needed": True}

            # A wrong token gets no session; the right one gets an HttpOnly,
            # SameSite=Strict cookie that opens the stream (and nothing else needed).
            async with s.post(base + "/session", json={"token": "wrong-0123456789abc"}) as r:
                assert r.status == 401
                assert "nlets_session" not in r.cookies
            async with s.post(base + "/session", json={"token": READER}) as r:
                assert r.status == 200
                cookie = r.headers["Set-Cookie"]
            assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
            assert READER not in cookie
            task = asyncio.ensure_future(
                _events_until(s, base + "/events", '"event":"delivered"'))
            await asyncio.sleep(0.5)
            await _routed_with_control(served)
            # The reader may not see control fields: the routed event comes without it.
            seen = await task
            assert '"event":"routed"' in seen and '"key":"AM"' in seen
            assert "CTLSECRET1" not in seen
            async with s.delete(base + "/session") as r:
                assert r.status == 200
            assert await _status(s, base + "/events") == 401

        # A token allowed to see message details sees the control field.
        async with aiohttp.ClientSession() as s:
            seen = await _events_until(s, base + "/events", "CTLSECRET1",
                                       headers={"Authorization": f"Bearer {OPS}"})
            assert "CTLSECRET1" in seen
        assert "CTLSECRET1" not in served.log_text()


async def test_every_response_carries_security_headers_and_no_version(tmp_path: Path) -> None:
    with serve_process(tmp_path, CONFIG) as served:
        async with aiohttp.ClientSession() as s:
            for path in ("/", "/metrics", "/nothing-here", "/api/links"):
                async with s.get(served.base + path) as r:
                    h = r.headers
                    assert h["X-Frame-Options"] == "DENY", path
                    assert h["X-Content-Type-Options"] == "nosniff", path
                    assert "frame-ancestors 'none'" in h["Content-Security-Policy"], path
                    assert h.get("Server", "") == "nlets-switch", path
            async with s.get(served.base + "/") as r:
                html = await r.text()
                policy = r.headers["Content-Security-Policy"]
            nonce = re.search(r"'nonce-([^']+)'", policy)
            assert nonce is not None and f'<script nonce="{nonce.group(1)}">' in html
            assert "unsafe-inline" not in policy.split("script-src", 1)[1].split(";")[0]
        # A request aiohttp cannot parse gets an answer without a version either.
        r2, w2 = await asyncio.open_connection("127.0.0.1", served.http_port)
        w2.write(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        head = (await asyncio.wait_for(r2.read(4096), 5)).decode(errors="replace")
        w2.close()
        assert head.startswith("HTTP/1.") and " 400 " in head.split("\r\n")[0], head
        assert "aiohttp" not in head and "Python" not in head



def test_sessions_lapse_unused_and_are_bounded() -> None:
    from nlets_switch.ops.http_guard import Sessions
    from nlets_switch.ops.monitor import ApiToken

    now = [0.0]
    s = Sessions(60.0, clock=lambda: now[0], max_sessions=3)
    tok = ApiToken("ops", "x")
    sid = s.open(tok)
    now[0] = 59.0
    assert s.get(sid) is tok  # used: its minute starts again
    now[0] = 118.0
    assert s.get(sid) is tok
    now[0] = 179.0
    assert s.get(sid) is None  # a minute unused
    ids = [s.open(tok) for _ in range(5)]
    assert len(s) == 3 and s.get(ids[0]) is None and s.get(ids[-1]) is tok
    s.close(ids[-1])
    assert s.get(ids[-1]) is None
    assert s.get("") is None and s.get("forged") is None
