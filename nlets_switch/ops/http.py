"""The operator HTTP server (aiohttp): metrics, the JSON API, the live dashboard.

Routes (docs/operators.md has curl examples)::

    GET /                    the dashboard (static HTML + vanilla JS, no build step)
    GET/POST/DELETE /session the dashboard's sign-in: a token in, a session cookie out
    GET /events              Server-Sent Events: snapshot, routing events, stats every second
    GET /metrics             Prometheus text format
    GET /api/links           links and their state              (bearer token)
    GET /api/held            deliveries owed per destination    (bearer token)
    GET /api/stats           the counters                       (bearer token)
    GET /api/messages        message log search                 (bearer token)
    GET /api/messages/{id}   one message; its text only for a token with see_text
    /api/queue, /api/held/{dest}, /api/remove-status, /api/broadcast, ...
                             the operator console (ops/console_http.py): actions need
                             a token with ``operate``

The dashboard, ``/events`` and ``/metrics`` carry counters, ORIs and message
ids, never message text. When ``api.tokens`` is configured they need a
token too, as the API does: ``/metrics`` a bearer token, ``/events`` a bearer
token or the session cookie the dashboard gets by signing in (the page itself
holds no data). With no tokens configured they stay open, and the API open
to loopback (the demo world). A control field (``*CONTROL``, which agencies
fill with their own references) is shown on ``/events`` only to a token with
``see_text``. At most ``http.sse_max`` streams at once; past it 503. Every
``/api`` request and every sign-in is audited (``switch.audit("api_access",
...)``), allowed or not. Every response carries a CSP, X-Frame-Options and
X-Content-Type-Options, and the server names no version (issue 11).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any, Final

import aiohttp.web_response
from aiohttp import web

from nlets_switch.errors import StoreError
from nlets_switch.log import get_logger
from nlets_switch.ops.console_http import ConsoleApi
from nlets_switch.ops.http_guard import COOKIE, SECURITY_HEADERS, OneLineLogger, Sessions, csp
from nlets_switch.ops.metrics import CONTENT_TYPE
from nlets_switch.ops.monitor import (
    ApiToken,
    HttpSettings,
    link_states,
    stats_snapshot,
    token_hash,
)

if TYPE_CHECKING:
    from nlets_switch.ops.monitoring import Monitoring

log = get_logger("http")

# aiohttp names itself and its version in a default ``Server`` header on every
# response, its own error pages included (they bypass middlewares): one name,
# no version, tells a scanner nothing to look up.
aiohttp.web_response.SERVER_SOFTWARE = "nlets-switch"  # type: ignore[attr-defined]

_SSE_EVENTS: Final = frozenset(
    {"routed", "held", "status", "rejected", "refused", "delivered", "expired",
     "refused_by_receiver", "link", "stats", "review", "operator"})
_LOOPBACK_TOKEN: Final = ApiToken("loopback", "", see_text=False)
_TOKEN: Final = web.RequestKey("token", ApiToken)
_SEARCH_PARAMS: Final = ("ori", "key", "control", "since", "until", "text", "limit")
_MAX_LIMIT: Final = 1000
#: Paths that need a token (or a session) once tokens are configured.
_GUARDED: Final = ("/api/", "/events", "/metrics")
_NONCE: Final = web.RequestKey("nonce", str)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status,
                             dumps=lambda o: json.dumps(o, default=str, indent=1))


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _without_control(ev: dict[str, Any]) -> dict[str, Any]:
    """``ev`` without its control field (for a viewer not allowed message details)."""
    if ev.get("control") is None:
        return ev
    return {k: v for k, v in ev.items() if k != "control"}


class HttpServer:
    """The aiohttp application and its runner; ``start()`` then ``stop()``."""

    def __init__(self, monitoring: Monitoring, settings: HttpSettings) -> None:
        self.monitoring = monitoring
        self.switch = monitoring.switch
        self.settings = settings
        self.address: tuple[str, int] | None = None
        self._runner: web.AppRunner | None = None
        self._streams: set[web.StreamResponse] = set()
        self._closing = asyncio.Event()
        self.sessions = Sessions(settings.session_s)
        #: ``/events`` streams open now (at most ``settings.sse_max``).
        self.sse_open = 0
        app = web.Application(middlewares=[self._headers, self._api_guard])
        app.router.add_get("/", self.dashboard)
        app.router.add_get("/dashboard", self.dashboard)
        app.router.add_get("/session", self.session_state)
        app.router.add_post("/session", self.sign_in)
        app.router.add_delete("/session", self.sign_out)
        app.router.add_get("/events", self.events)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_get("/api/links", self.api_links)
        app.router.add_get("/api/held", self.api_held)
        app.router.add_get("/api/stats", self.api_stats)
        app.router.add_get("/api/messages", self.api_messages)
        app.router.add_get("/api/messages/{id}", self.api_message)
        app.router.add_post("/api/unlock", self.api_unlock)
        # The operator console's routes (queues, remove status, broadcasts; roles).
        ConsoleApi(self, lambda r: r[_TOKEN]).add_routes(app)
        self.app = app

    async def start(self) -> None:
        """Listen on the configured address (port 0 picks a free one)."""
        assert self.settings.listen is not None
        host, port = self.settings.listen
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0,
                                     logger=OneLineLogger())
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        names = self._runner.addresses  # the bound sockets (the real port when 0 was asked)
        name = names[0] if names else (host, port)
        self.address = (str(name[0]), int(name[1]))
        log.info("http_listening", address=f"{self.address[0]}:{self.address[1]}")

    async def stop(self) -> None:
        """End the SSE streams and stop listening."""
        self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- the guard ----------------------------------------------------------

    def authenticate(self, request: web.Request) -> ApiToken | None:
        """The token of a request, or None when it has no valid one."""
        auth = request.headers.get("Authorization", "")
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            digest = token_hash(value.strip())
            for sha, tok in self.settings.tokens_by_hash.items():
                # Constant-time comparison: no timing hint about configured hashes.
                if hmac.compare_digest(sha, digest):
                    return tok
            return None
        session = self.sessions.get(request.cookies.get(COOKIE))
        if session is not None:
            return session
        if self.settings.open_loopback and _is_loopback(request.remote):
            return _LOOPBACK_TOKEN
        return None

    @property
    def guarded(self) -> bool:
        """Whether tokens are configured, so monitoring needs one too."""
        return not self.settings.open_loopback

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        nonce = secrets.token_urlsafe(16)
        request[_NONCE] = nonce
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            e.headers.update(SECURITY_HEADERS)
            e.headers["Content-Security-Policy"] = csp()
            raise
        if not resp.prepared:  # an SSE stream set its own before it started
            resp.headers.update(SECURITY_HEADERS)
            resp.headers.setdefault("Content-Security-Policy", csp())
        return resp

    @web.middleware
    async def _api_guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            if request.path in ("/events", "/metrics", "/dashboard/directory.json",
                                "/dashboard/history.json"):
                tok = self.authenticate(request)
                if tok is None and self.guarded:
                    self.switch.audit("api_access", "(no valid token)", "denied",
                                      path=request.path, peer=request.remote or "",
                                      component="http")
                    return web.json_response({"error": "a valid bearer token is required"},
                                             status=401, headers={"WWW-Authenticate": "Bearer"})
                request[_TOKEN] = tok or _LOOPBACK_TOKEN
            return await handler(request)
        tok = self.authenticate(request)
        # Which search criteria were used, never their values (a text search is CJI).
        used = sorted(k for k in request.query if k in _SEARCH_PARAMS)
        if tok is None:
            self.switch.audit("api_access", "(no valid token)", "denied", path=request.path,
                              peer=request.remote or "", component="http")
            return web.json_response({"error": "a valid bearer token is required"},
                                     status=401, headers={"WWW-Authenticate": "Bearer"})
        request[_TOKEN] = tok
        try:
            resp = await handler(request)
        except web.HTTPException as e:
            self.switch.audit("api_access", tok.name, "failure", path=request.path,
                              status=e.status, params=used, peer=request.remote or "",
                              component="http")
            raise
        except Exception:
            # An unexpected error is audited too (as the 500 it becomes).
            self.switch.audit("api_access", tok.name, "failure", path=request.path,
                              status=500, params=used, peer=request.remote or "",
                              component="http")
            raise
        outcome = "success" if resp.status < 400 else "failure"
        self.switch.audit("api_access", tok.name, outcome, path=request.path,
                          status=resp.status, params=used, peer=request.remote or "",
                          component="http")
        return resp

    # -- pages and streams -------------------------------------------------

    async def dashboard(self, request: web.Request) -> web.Response:
        """The dashboard page (package data nlets_switch/ops/static/dashboard.html).

        Its scripts run by the nonce of this response's CSP.
        """
        html = resources.files("nlets_switch.ops").joinpath("static/dashboard.html").read_text()
        nonce = request[_NONCE]
        # Every script, inline or the vendored files, runs by this response's nonce.
        html = html.replace("<script", f'<script nonce="{nonce}"')
        return web.Response(text=html, content_type="text/html",
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": csp(nonce)})

    # -- the dashboard's sign-in --------------------------------------------

    async def session_state(self, request: web.Request) -> web.Response:
        """``{"signed_in": bool, "needed": bool}``: whether the page must ask for a token."""
        tok = self.authenticate(request)
        return _json({"signed_in": tok is not None or not self.guarded,
                      "needed": self.guarded})

    async def sign_in(self, request: web.Request) -> web.Response:
        """A token (JSON ``{"token": ...}``) in, a session cookie out; audited."""
        try:
            body = await request.json()
            token = body.get("token") if isinstance(body, dict) else None
        except (ValueError, UnicodeDecodeError):
            token = None
        tok = None
        if isinstance(token, str) and token.strip():
            digest = token_hash(token.strip())
            for sha, t in self.settings.tokens_by_hash.items():
                if hmac.compare_digest(sha, digest):
                    tok = t
        peer = request.remote or ""
        if tok is None:
            self.switch.audit("api_access", "(no valid token)", "denied", path="/session",
                              peer=peer, component="http")
            return _json({"error": "that token is not valid"}, 401)
        self.switch.audit("api_access", tok.name, "success", path="/session", peer=peer,
                          component="http")
        resp = _json({"signed_in": True, "name": tok.name})
        resp.set_cookie(COOKIE, self.sessions.open(tok), httponly=True, samesite="Strict",
                        path="/", max_age=int(self.settings.session_s),
                        secure=request.secure)
        return resp

    async def sign_out(self, request: web.Request) -> web.Response:
        """End this browser's session."""
        self.sessions.close(request.cookies.get(COOKIE))
        resp = _json({"signed_in": False})
        resp.del_cookie(COOKIE, path="/")
        return resp

    async def metrics(self, request: web.Request) -> web.Response:
        """Prometheus text exposition."""
        held = await self.monitoring.refresh_held()
        body = self.monitoring.metrics.render(held)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def events(self, request: web.Request) -> web.StreamResponse:
        """Server-Sent Events: a snapshot first, then events as they happen.

        At most ``sse_max`` at once: past it a 503 before anything is kept.
        """
        if self.sse_open >= self.settings.sse_max:
            return _json({"error": "too many event streams"}, 503)
        self.sse_open += 1
        try:
            return await self._stream(request, request[_TOKEN].see_text)
        finally:
            self.sse_open -= 1

    async def _stream(self, request: web.Request, see_control: bool) -> web.StreamResponse:
        mon = self.monitoring
        sub = mon.monitor.subscribe("sse", self.settings.sse_queue, _SSE_EVENTS)
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no",
                                           "Content-Security-Policy": csp(),
                                           **SECURITY_HEADERS})
        frame = self._frame if see_control else self._frame_without_control
        try:
            await resp.prepare(request)
            recent = [ev if see_control else _without_control(ev) for ev in mon.monitor.recent]
            snap = {"event": "snapshot", "switch_id": self.switch.config.switch_id,
                    "links": list(link_states(self.switch).values()),
                    "recent": recent,
                    "stats": mon.last_stats or stats_snapshot(self.switch, mon.monitor,
                                                              mon.held, mon.cluster)}
            await self._send(resp, "snapshot", snap)
            closing = asyncio.ensure_future(self._closing.wait())
            try:
                while True:
                    getter = asyncio.ensure_future(sub.get())
                    done, _ = await asyncio.wait({getter, closing}, timeout=15,
                                                 return_when=asyncio.FIRST_COMPLETED)
                    if closing in done:
                        getter.cancel()
                        break
                    if getter in done:
                        # Whatever else is queued goes in the same write: one
                        # wake-up per burst, not per event.
                        batch = [getter.result()]
                        while not sub.queue.empty() and len(batch) < 500:
                            batch.append(sub.queue.get_nowait())
                        await resp.write(b"".join(frame(ev) for ev in batch))
                    else:
                        getter.cancel()
                        await resp.write(b": keep-alive\n\n")
            finally:
                closing.cancel()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except OSError:  # the peer went away as the stream started
            pass
        finally:
            sub.close()
        with contextlib.suppress(Exception):
            await resp.write_eof()
        return resp

    @staticmethod
    async def _send(resp: web.StreamResponse, name: str, data: Any) -> None:
        payload = json.dumps(data, separators=(",", ":"), default=str)
        await resp.write(f"event: {name}\ndata: {payload}\n\n".encode())

    @staticmethod
    def _frame(ev: dict[str, Any]) -> bytes:
        name = "stats" if ev.get("event") == "stats" else "event"
        payload = json.dumps(ev, separators=(",", ":"), default=str)
        return f"event: {name}\ndata: {payload}\n\n".encode()

    @classmethod
    def _frame_without_control(cls, ev: dict[str, Any]) -> bytes:
        return cls._frame(_without_control(ev))

    # -- the JSON API --------------------------------------------------------

    async def api_links(self, request: web.Request) -> web.Response:
        """Every ORI that signs on, online or not."""
        return _json({"links": list(link_states(self.switch).values())})

    async def api_held(self, request: web.Request) -> web.Response:
        """Deliveries owed per destination link."""
        held = await self.monitoring.refresh_held()
        return _json({"held": held, "total": sum(held.values())})

    async def api_stats(self, request: web.Request) -> web.Response:
        """The counters, as the dashboard and MQTT stats carry them."""
        return _json(await self.monitoring.snapshot())

    def _query(self, request: web.Request) -> Any:
        from nlets_switch.ops import msglog

        q = request.query
        now = time.time()
        tz = self.switch.config.tz
        try:
            since = msglog.parse_when(q["since"], now, tz) if q.get("since") else None
            until = (msglog.parse_when(q["until"], now, tz, end_of_day=True)
                     if q.get("until") else None)
            limit = min(_MAX_LIMIT, int(q.get("limit", msglog.DEFAULT_LIMIT)))
        except ValueError as e:
            raise web.HTTPBadRequest(text=json.dumps({"error": str(e)}),
                                     content_type="application/json") from None
        return msglog.Query(ori=q.get("ori") or None, key=(q.get("key") or "").upper() or None,
                            control=q.get("control") or None, since=since, until=until,
                            text=q.get("text") or None, limit=max(1, limit))

    async def api_messages(self, request: web.Request) -> web.Response:
        """Search the message log (never returns message text)."""
        from nlets_switch.ops import msglog

        query = self._query(request)
        if query.text and not request[_TOKEN].see_text:
            # Searching the text would tell whether a word occurs in it.
            return _json({"error": "text search needs a token allowed to see message text"},
                         403)
        rows = await asyncio.to_thread(self._with_conn, lambda c: msglog.search(c, query))
        return _json({"messages": rows, "count": len(rows)})

    async def api_message(self, request: web.Request) -> web.Response:
        """One message; its text only when the token may see text."""
        from nlets_switch.ops import msglog

        try:
            msg_id = int(request.match_info["id"])
        except ValueError:
            return _json({"error": "message id must be a number"}, 400)
        if not 0 <= msg_id < 2**63:  # SQLite's integer range
            return _json({"error": "no such message"}, 404)
        tok = request[_TOKEN]
        row = await asyncio.to_thread(
            self._with_conn, lambda c: msglog.get(c, msg_id, with_text=tok.see_text))
        if row is None:
            return _json({"error": f"no message {msg_id}"}, 404)
        if not tok.see_text:
            row.pop("text", None)
            row["text_withheld"] = True
        return _json(row)

    async def api_unlock(self, request: web.Request) -> web.Response:
        """``POST /api/unlock {"target": ORI or address}``: lift lock-outs (admin tokens).

        Without ``api.tokens``, a loopback client may (the operator at the console).
        The unlock is audited with the token's name; the answer lists what stays locked.
        """
        tok = request[_TOKEN]
        if not (tok.admin or tok is _LOOPBACK_TOKEN):
            return _json({"error": "unlocking needs a token with admin: true"}, status=403)
        try:
            body = await request.json()
            target = str(body["target"]).strip()
        except (ValueError, KeyError, TypeError):
            return _json({"error": 'expected {"target": "ORI or address"}'}, status=400)
        if not target or len(target) > 64 or not target.isprintable():
            return _json({"error": "target: an ORI or an IP address"}, status=400)
        try:
            lifted, remaining = await self.switch.unlock_everywhere(target, by=tok.name)
        except StoreError as e:  # cluster mode: the shared lock-outs are out of reach
            return _json({"error": f"cannot unlock: {e}"}, status=503)
        return _json({"target": target, "lifted": lifted, "locked": remaining})

    def _with_conn(self, fn: Callable[[Any], Any]) -> Any:
        """Run ``fn`` on a fresh read-only journal connection (in a worker thread)."""
        from nlets_switch.store import journal
        from nlets_switch.store.postgres_journal import PostgresJournal

        j = self.switch.journal
        if isinstance(j, PostgresJournal):
            from nlets_switch.store.postgres import open_pg_store

            with open_pg_store(j.url, readonly=True) as store:
                return fn(store)
        path = j.path
        if not path.exists():
            raise web.HTTPServiceUnavailable(text='{"error": "the journal is not open yet"}',
                                             content_type="application/json")
        conn = journal.connect(path, readonly=True)
        try:
            return fn(conn)
        finally:
            conn.close()
