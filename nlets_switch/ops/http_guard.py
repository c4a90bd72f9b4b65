"""What guards the operator HTTP server (issue 11): dashboard sessions, the
security headers, and malformed requests logged in one line.

* :class:`Sessions`: a dashboard signs in once with a bearer token
  (``POST /session``) and keeps a random session id in a cookie (HttpOnly,
  SameSite=Strict); the id maps to the token it was made with, in memory
  only, and lapses after ``http.session_minutes`` unused. A bounded table:
  past :data:`MAX_SESSIONS` the least recently used session goes.
* :data:`SECURITY_HEADERS` and :func:`csp`: every response says what a
  browser may do with it (no framing, no MIME sniffing, scripts only with the
  page's nonce, fetches only to this origin).
* :class:`OneLineLogger`: aiohttp logs a request it cannot parse, or a
  handler's exception, with a traceback; this logger writes one line naming
  the peer and the error's class instead, so a scan of the port cannot fill
  the log (CJIS 5.4: the log stays readable), and never a request's bytes.
"""

from __future__ import annotations

import secrets
import time
import traceback
from collections import OrderedDict
from typing import Any, Final

from nlets_switch.log import get_logger
from nlets_switch.ops.monitor import ApiToken

__all__ = ["COOKIE", "MAX_SESSIONS", "SECURITY_HEADERS", "OneLineLogger", "Sessions", "csp"]

#: The session cookie's name.
COOKIE: Final = "nlets_session"
#: Sessions kept at most; a flood of sign-ins cannot grow the table.
MAX_SESSIONS: Final = 1000

#: Headers on every response (the CSP is added per response, with its nonce).
SECURITY_HEADERS: Final = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def csp(nonce: str | None = None) -> str:
    """The Content-Security-Policy: nothing but this origin, scripts by nonce only.

    Styles may be inline (the dashboard's own ``<style>`` and attributes it
    sets); scripts may not, unless they carry ``nonce``.
    """
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return ("default-src 'none'; "
            f"script-src {script}; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'")


class Sessions:
    """Dashboard sessions: a random id per sign-in, the token it stands for.

    Pure bookkeeping; ``clock`` is monotonic seconds (tests pass their own).
    """

    def __init__(self, lifetime_s: float, clock: Any = time.monotonic,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self.lifetime_s = lifetime_s
        self._clock = clock
        self._max = max_sessions
        self._by_id: OrderedDict[str, tuple[ApiToken, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._by_id)

    def open(self, token: ApiToken) -> str:
        """A new session for ``token``; returns its id (the cookie's value)."""
        sid = secrets.token_urlsafe(32)
        self._by_id[sid] = (token, self._clock() + self.lifetime_s)
        while len(self._by_id) > self._max:
            self._by_id.popitem(last=False)
        return sid

    def get(self, sid: str | None) -> ApiToken | None:
        """The token of a live session (and its lifetime starts again), else None."""
        if not sid:
            return None
        entry = self._by_id.get(sid)
        now = self._clock()
        if entry is None:
            return None
        token, expires = entry
        if expires <= now:
            del self._by_id[sid]
            return None
        self._by_id[sid] = (token, now + self.lifetime_s)
        self._by_id.move_to_end(sid)
        return token

    def close(self, sid: str | None) -> None:
        """End a session (sign-out)."""
        if sid:
            self._by_id.pop(sid, None)


def _where(exc: BaseException) -> str:
    """``file:line`` of the innermost frame of ``exc`` (enough to find a bug)."""
    tb = traceback.extract_tb(exc.__traceback__)
    if not tb:
        return ""
    last = tb[-1]
    return f"{last.filename.rsplit('/', 1)[-1]}:{last.lineno}"


class OneLineLogger:
    """Stands in for aiohttp's server logger (``AppRunner(logger=...)``).

    aiohttp calls ``exception(msg, *args, exc_info=exc)`` and ``debug(...)``:
    an error becomes one ``http_error`` line with the peer, the error's class
    and the first line of its message (cut short, as repr, so a request's
    bytes cannot forge log lines); debug chatter is dropped.
    """

    def __init__(self) -> None:
        self._log = get_logger("http")

    def _line(self, msg: str, args: tuple[Any, ...], exc: Any) -> None:
        peer = args[0] if args and isinstance(args[0], str) else None
        if isinstance(exc, BaseException):
            first = (str(exc).strip().splitlines() or [""])[0]
            self._log.warning("http_error", peer=peer, error=type(exc).__name__,
                              detail=repr(first[:120]), at=_where(exc))
        else:
            self._log.warning("http_error", peer=peer, detail=repr(str(msg)[:120]))

    def exception(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        """An error: one warning line, no traceback."""
        self._line(msg, args, exc_info)

    def error(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        """Same as :meth:`exception`."""
        self._line(msg, args, exc_info)

    def warning(self, msg: str, *args: Any, exc_info: Any = None, **kw: Any) -> None:
        """Same as :meth:`exception`."""
        self._line(msg, args, exc_info)

    def info(self, *args: Any, **kw: Any) -> None:
        """Dropped."""

    def debug(self, *args: Any, **kw: Any) -> None:
        """Dropped (aiohttp's per-connection chatter, with tracebacks)."""

    def isEnabledFor(self, level: int) -> bool:
        """aiohttp asks before formatting debug lines: never."""
        return False
