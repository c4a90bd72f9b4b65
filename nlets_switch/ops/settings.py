"""The configuration sections of operations: ``mqtt``, ``http``, ``api``, ``audit``, ``retention``.

Declared here, apart from the modules that use them (:mod:`~nlets_switch.ops.monitor`,
:mod:`~nlets_switch.ops.audit`, :mod:`~nlets_switch.ops.retention`), so that the
configuration can compose them without importing asyncio, sqlite3 or the
monitoring stack. Documented in docs/operators.md and docs/records.md; every
key and its default is in docs/configuration.md.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import re
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Final

from pydantic import AfterValidator, BeforeValidator, Field

from nlets_switch.config.model import FLAG, Between, Check, Problem, Section
from nlets_switch.config.sections import parse_address

#: Where the operator HTTP server listens unless told otherwise (issue 4).
DEFAULT_HTTP: Final = ("127.0.0.1", 7331)
#: Audit keys shorter than this are refused (128 bits).
MIN_KEY_BYTES: Final = 16


def decode_key(text: str) -> bytes:
    """An audit key written as hex or base64; raises ValueError (too short or neither)."""
    s = text.strip()
    key: bytes | None = None
    if re.fullmatch(r"(?:[0-9a-fA-F]{2})+", s):
        key = bytes.fromhex(s)
    else:
        with contextlib.suppress(binascii.Error, ValueError):
            key = base64.b64decode(s, validate=True)
    if key is None:
        raise ValueError("not hex or base64")
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"too short: {len(key)} bytes, need at least {MIN_KEY_BYTES}")
    return key


def token_hash(token: str) -> str:
    """The SHA-256 (hex) under which a bearer token is configured."""
    return hashlib.sha256(token.encode()).hexdigest()


def _text(v: Any) -> bool:
    return isinstance(v, str)


def _seconds(lo: float) -> Between:
    return Between(lo, message=f"expected a number of seconds >= {lo:g}, got {{got}}")


class MqttSettings(Section):
    """The ``mqtt:`` section: where to publish events (absent: no MQTT)."""

    _expected = "expected a mapping (host, port, prefix, ...)"
    _required: ClassVar[Mapping[str, str]] = {"host": "required, the broker's host name"}

    host: Annotated[str, Check(lambda v: isinstance(v, str) and bool(v),
                               "required, the broker's host name")] = Field(
        description="the broker's host name (required)")
    port: Annotated[int, Between(1, 65535, whole=True,
                                 message="expected a port number 1-65535, got {got}")] = Field(
        1883, description="the broker's port")
    prefix: Annotated[str, Check(
        lambda v: isinstance(v, str) and bool(v) and not any(c in v for c in "#+\0"),
        "expected a topic prefix without # or +, got {got}"),
        # Topics are ``<prefix>/<switch id>/...``: a slash at either end would double.
        AfterValidator(lambda v: v.strip("/"))] = Field("nlets", description="topic prefix")
    client_id: Annotated[str, Check(_text, "expected a string")] | None = Field(
        None, description="MQTT client id (absent: nlets-switch-<switch id>-<pid>)")
    username: Annotated[str, Check(_text, "expected a string")] | None = Field(
        None, description="broker user name")
    password: Annotated[str, Check(_text, "expected a string")] | None = Field(
        None, description="broker password")
    queue_size: Annotated[int, Between(
        1, 1_000_000, whole=True, message="expected a whole number 1-1000000, got {got}")] = (
        Field(1000, description="events waiting for the broker; beyond: dropped, counted"))
    stats_interval: Annotated[float, _seconds(0.1)] = Field(
        5.0, description="seconds between .../stats messages")
    reconnect_min: Annotated[float, _seconds(0.01)] = Field(
        0.5, description="backoff: first delay (seconds)")
    reconnect_max: Annotated[float, _seconds(0.01)] = Field(
        30.0, description="backoff: longest delay (seconds), jittered")
    keepalive: Annotated[int, Between(
        1, 65535, whole=True, message="expected whole seconds 1-65535, got {got}")] = Field(
        30, description="MQTT keep-alive (seconds)")


def _http_listen(value: Any) -> str:
    text = str(value)
    if text.strip().lower() != "off":
        try:
            parse_address(text)
        except ValueError as e:
            raise ValueError(f"{e} (or 'off')") from None
    return text


class HttpSection(Section):
    """The ``http:`` section: the operator HTTP server (metrics, API, dashboard)."""

    _expected = "expected a mapping (listen)"

    listen: Annotated[str, BeforeValidator(_http_listen)] = Field(
        f"{DEFAULT_HTTP[0]}:{DEFAULT_HTTP[1]}",
        description="HOST:PORT, or off; `serve --http` overrides it")


def _hex64(v: Any) -> bool:
    return isinstance(v, str) and len(v) == 64 and all(c in "0123456789abcdef"
                                                       for c in v.lower())


class ApiTokenSection(Section):
    """``api.tokens[i]``: one bearer token; only its SHA-256 is kept."""

    _null_ok = False

    name: Annotated[str, Check(lambda v: isinstance(v, str) and bool(v), "required")] = Field(
        description="who holds it (audited; required, unique)")
    token: Annotated[str, Check(lambda v: isinstance(v, str) and len(v) >= 16,
                                "expected a string of at least 16 characters")] | None = Field(
        None, description="the plain token, for tests and demos")
    token_sha256: Annotated[str, Check(
        _hex64, "expected 64 hex digits (sha256sum of the token)")] | None = Field(
        None, description="sha256sum of the token")
    see_text: Annotated[bool, FLAG] = Field(
        False, description="may read message text in /api/messages/{id}")
    admin: Annotated[bool, FLAG] = Field(
        False, description="may lift lock-outs (POST /api/unlock, `nlets-switch unlock`)")

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        if "token" not in data and "token_sha256" not in data:
            return data, [((), "needs token_sha256 (or token)")]
        return data, []

    @property
    def sha256(self) -> str:
        """The SHA-256 (hex, lower case) the token is checked against."""
        if self.token_sha256:
            return self.token_sha256.lower()
        return token_hash(self.token or "")


class ApiSection(Section):
    """The ``api:`` section: who may use the operator API (docs/operators.md)."""

    _expected = "expected a mapping (tokens)"

    tokens: Annotated[tuple[ApiTokenSection, ...], Check(
        lambda v: isinstance(v, list | tuple),
        "expected a list of {name, token_sha256 | token, see_text}")] = Field(
        (), description="bearer tokens for /api/...; none: loopback may read, "
        "never message text")

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        found: list[Problem] = []
        names: set[str] = set()
        tokens = data.get("tokens")
        for i, t in enumerate(tokens if isinstance(tokens, list) else ()):
            name = t.get("name") if isinstance(t, dict) else None
            if isinstance(name, str) and name:
                if name in names:
                    found.append((("tokens", i, "name"), f"{name!r} appears twice"))
                names.add(name)
        return data, found

    @property
    def configured(self) -> bool:
        """Whether ``api.tokens`` was given (even empty): then every request needs one."""
        return "tokens" in self.model_fields_set


def _audit_key(value: Any) -> str:
    text = str(value)
    try:
        decode_key(text)
    except ValueError as e:
        raise ValueError(f"{e} (hex or base64, at least {MIN_KEY_BYTES} bytes)") from None
    return text


class AuditSettings(Section):
    """The ``audit:`` section: the key of the audit chain (docs/records.md)."""

    _expected = "expected a mapping (key, key_file)"
    _unknown = "unknown setting (known: {known})"

    key: Annotated[str, BeforeValidator(_audit_key)] | None = Field(
        None, description="hex or base64, at least 16 bytes")
    key_file: Annotated[str, Check(lambda v: isinstance(v, str) and bool(v),
                                   "expected a file path")] | None = Field(
        None, description="a file holding the key (absent, and no key: "
        "<data_dir>/audit.key, made on first use)")

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        if data.get("key") is not None and data.get("key_file") is not None:
            return data, [(("key",), "give key or key_file, not both")]
        return data, []


def _positive() -> Between:
    return Between(0, above=True, message="expected a positive number, got {got}")


class RetentionSettings(Section):
    """The ``retention:`` section: how long records are kept (days), how often the job runs."""

    _expected = "expected a mapping (messages_days, audit_days, interval_s)"
    _unknown = "unknown setting (known: {known})"

    messages_days: Annotated[float, _positive()] = Field(
        365.0, description="messages and their deliveries")
    audit_days: Annotated[float, _positive()] = Field(365.0, description="audit records")
    interval_s: Annotated[float, _positive()] = Field(
        3600.0, description="how often the background job runs (seconds)")


