"""The switch's own configuration sections: switch, listeners, limits, security, hold, links.

One model per section, defaults written once in its fields; the plug-in
sections are declared by the modules that own them (:mod:`nlets_switch.ops.settings`,
:mod:`nlets_switch.services.settings`, the adapters) and composed in
:mod:`nlets_switch.config.load`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, field_validator, model_validator

from nlets_switch.config.model import (
    FLAG,
    Between,
    Check,
    Problem,
    Section,
    as_text,
    fail,
    one_of,
)
from nlets_switch.core.entries import FORMATS, ROLES, Entry, HoldOverride
from nlets_switch.wire.domain import SWITCH_ORI, is_ori


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` into its parts; raises ValueError with a readable reason."""
    host, sep, port_s = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    host = host.strip("[]")
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range")
    return host, port


def is_loopback(host: str) -> bool:
    """True for a loopback address (the demo world's no-credential rule)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_zone(name: Any) -> bool:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _is_list_of(test: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(test(x) for x in v)


_PEM_MISSING = "missing (a PEM file; `nlets-switch pki init` makes them)"
PemFile = Annotated[str, BeforeValidator(as_text), Check(
    lambda v: Path(str(v)).is_file(), "no such file: {value}", "a PEM file")]


class TlsSettings(Section):
    """``listeners[i].tls``: TLS on that listener (PROTOCOL part 7, docs/tls.md)."""

    _expected = "expected a mapping (ca, cert, key, crl, require_client_cert)"
    _required: ClassVar[Mapping[str, str]] = dict.fromkeys(("ca", "cert", "key"), _PEM_MISSING)

    ca: PemFile = Field(description="CA certificate that client certificates must chain to")
    cert: PemFile = Field(description="the switch's certificate")
    key: PemFile = Field(description="the switch's private key")
    crl: PemFile | None = Field(None, description="certificate revocation list, re-read "
                                "when it changes")
    require_client_cert: Annotated[bool, FLAG] = Field(
        True, description="refuse a handshake without a client certificate")

    # Read as a mapping too (``tls["ca"]``), as the listener's TLS setup was written.
    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The setting ``key``, or ``default`` when it is not set."""
        value = getattr(self, key, None)
        return default if value is None else value


class Listener(Section):
    """One address the switch accepts links on (``listeners[i]``, or ``switch.listen``)."""

    _expected = "expected a mapping with 'address'"
    _null_ok = False

    host: str = Field(description="from `address: HOST:PORT`")
    port: int = Field(description="from `address: HOST:PORT` (0: any free port)")
    no_credential: Annotated[Literal["loopback", "any", "never"], one_of(
        ("loopback", "any", "never"), "expected loopback, any or never")] = Field(
        "loopback", description="where a sign-on without a credential is accepted from, "
        "for ORIs that have none configured")
    tls: TlsSettings | None = Field(None, description="TLS settings; absent: plain TCP")

    @property
    def address(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"

    @classmethod
    def _keys(cls) -> tuple[str, ...]:
        return ("address", "no_credential", "tls")

    @classmethod
    def _coerce(cls, data: Any) -> Any:
        return {"address": data} if isinstance(data, str) else data

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        data = dict(data)
        try:
            data["host"], data["port"] = parse_address(str(data.pop("address", "")))
        except ValueError as e:
            data["host"], data["port"] = "", 0  # the problem is reported once, here
            return data, [(("address",), str(e))]
        return data, []


def _listeners(v: Any) -> bool:
    return isinstance(v, list | tuple) and len(v) > 0


class SwitchSection(Section):
    """``switch``: who the switch is and where it keeps its state."""

    id: Annotated[str, BeforeValidator(as_text)] = Field(
        "demo", description="names this switch in monitoring topics")
    timezone: Annotated[str, BeforeValidator(as_text),
                        Check(_is_zone, "unknown time zone {got}", "an IANA zone name")] = Field(
        "UTC", description="output header times (PROTOCOL part 3)")
    listen: Annotated[tuple[Listener, ...], Check(_listeners, "expected a non-empty list")] = (
        Field(default_factory=lambda: (Listener(host="127.0.0.1", port=7330),),
              description="where to accept links (give this or `listeners`, not both)",
              json_schema_extra={"allowed": "HOST:PORT, or a list like `listeners`"}))
    data_dir: Annotated[Path, BeforeValidator(as_text)] = Field(
        Path("nlets-data"), description="journal.sqlite and other state")

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        if data.get("listen", "") is None:
            data = {k: v for k, v in data.items() if k != "listen"}  # `listen:` alone: default
        return data, []

    @field_validator("listen", mode="before")
    @classmethod
    def _one_address(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class Limits(Section):
    """``limits``: link limits; every one cites the PROTOCOL part it comes from."""

    _expected = "expected a mapping"
    _unknown = "unknown limit (known: {known})"

    max_frame: Annotated[int, Between(64, 16 * 1024 * 1024, whole=True)] = Field(
        65_536, description="part 1: largest frame length")
    max_message: Annotated[int, Between(16, 16 * 1024 * 1024, whole=True)] = Field(
        65_531, description="part 1: largest M body (N .03.); at most max_frame - 5")
    window: Annotated[int, Between(1, 10_000, whole=True)] = Field(
        32, description="part 1: messages outstanding per link")
    heartbeat_interval: Annotated[float, Between(0.05, 86_400)] = Field(
        30.0, description="part 1: seconds of silence before the switch sends H")
    heartbeat_timeout: Annotated[float, Between(0.05, 3_600)] = Field(
        10.0, description="part 1: seconds to answer H before the link is closed")
    signon_timeout: Annotated[float, Between(0.05, 3_600)] = Field(
        10.0, description="part 1: seconds to sign on after connecting")
    max_queued: Annotated[int, Between(1, 1_000_000, whole=True)] = Field(
        1_000, description="deliveries in memory per link; the rest wait in the journal")
    max_inflight: Annotated[int, Between(1, 100_000, whole=True)] = Field(
        256, description="messages one link may have awaiting custody")
    max_connections: Annotated[int, Between(1, 1_000_000, whole=True)] = Field(
        512, description="connections in all (past it: N .06. and close)")
    max_connections_per_peer: Annotated[int, Between(1, 1_000_000, whole=True)] = Field(
        64, description="connections from one peer address")
    max_unauthenticated: Annotated[int, Between(1, 1_000_000, whole=True)] = Field(
        128, description="connections not yet signed on, in all; past it the oldest of "
        "them is closed (N .06.) to make room")
    max_unauthenticated_per_peer: Annotated[int, Between(1, 1_000_000, whole=True)] = Field(
        16, description="connections not yet signed on from one peer address; past it "
        "that peer's oldest is closed (N .06.)")
    frame_timeout: Annotated[float, Between(0.05, 3_600)] = Field(
        10.0, description="part 1: seconds a signed-on link may take to send one frame "
        "once it began (past it: N .01. and close)")
    rate_per_ori: Annotated[float, Between(0.1, 1_000_000)] = Field(
        200.0, description="messages per second per ORI (token bucket; past it: N .04.)")
    rate_burst: Annotated[int, Between(1, 10_000_000, whole=True)] = Field(
        400, description="the token bucket's size")
    max_write_buffer: Annotated[int, Between(4096, 1 << 31, whole=True)] = Field(
        1 << 20, description="bytes waiting to be written to one link; past it the rest "
        "waits in the journal, not in memory")

    @model_validator(mode="after")
    def _message_fits_a_frame(self) -> Limits:
        if self.max_message > self.max_frame - 5:
            fail((("max_message",),
                  f"must be at most limits.max_frame - 5 ({self.max_frame - 5})"))
        return self


class Security(Section):
    """``security``: sign-on lock-out (CJIS Security Policy 5.5.3); text at rest (5.10.1.2)."""

    _expected = ("expected a mapping (lockout_after, lockout_minutes, ori_lockout_after, "
                 "encrypt_text, text_key_file)")

    lockout_after: Annotated[int, Between(1, 1000, whole=True)] = Field(
        5, description="failed sign-ons before an ORI is locked out")
    lockout_minutes: Annotated[float, Between(0.001, 100_000)] = Field(
        10.0, description="how long a lock-out lasts")
    ori_lockout_after: Annotated[int, Between(1, 1_000_000, whole=True)] | None = Field(
        None, description="failed sign-ons for one ORI from every address together before "
        "the ORI itself is locked out, with an alert (absent: 10 x lockout_after)")
    encrypt_text: Annotated[bool, FLAG] = Field(
        True, description="message text sealed at rest, AES-256-GCM (CJIS 5.10.1.2)")
    text_key_file: Annotated[str, Check(lambda v: isinstance(v, str) and bool(v),
                                        "expected a file path")] | None = Field(
        None, description="the text keyring, outside the data directory (absent: "
        "$XDG_CONFIG_HOME/nlets-switch/text.keys, made at first start)")


def _is_store_url(value: Any) -> bool:
    return isinstance(value, str) and value.split("://", 1)[0] in ("postgresql", "postgres") \
        and "://" in value


class StoreSection(Section):
    """``store``: where the journal and the other tables live (docs/cluster.md).

    Absent (the default): the embedded SQLite file ``<data_dir>/journal.sqlite``.
    """

    _expected = "expected a mapping (url, node_id)"

    url: Annotated[str | None, Check(
        lambda v: v is None or _is_store_url(v), "expected postgresql://USER@HOST/DB, "
        "got {got}", "a postgresql:// URL")] = Field(
        None, description="a PostgreSQL database (`postgresql://USER@HOST[:PORT]/DB`); "
        "absent: the SQLite file in switch.data_dir")
    node_id: Annotated[str | None, Check(
        lambda v: v is None or _is_node_id(v), "expected 1 to 32 of a-z 0-9 _ -, got {got}",
        "a node name (a-z 0-9 _ -)")] = Field(
        None, description="this node's name in a cluster of nodes sharing store.url "
        "(docs/cluster.md); absent: one node, no cluster")


def _is_node_id(value: Any) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= 32 and all(
        c.isascii() and ((c.isalnum() and not c.isupper()) or c in "_-") for c in value)


class HoldSection(Section):
    """``hold.<KEY>``: held (SM .02) or not (SM .04), and for how long (PROTOCOL part 4)."""

    _expected = "expected a mapping with 'held' and/or 'expire'"
    _null_ok = False

    held: Annotated[bool, FLAG] | None = Field(
        None, description="held for a link that is not signed on (absent: the schema's rule)")
    expire: Annotated[int, Between(1, 365 * 86_400, whole=True)] | None = Field(
        None, description="seconds a held message waits (absent: the schema's rule)")

    def override(self) -> HoldOverride:
        """The core's value of this rule."""
        return HoldOverride(self.held, self.expire)


def hold_keys(value: Any) -> Any:
    """Message keys are text (``hold: {1: ...}`` names key ``"1"``); ``hold:`` alone is none."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    return value


class LinkSection(Section):
    """``links[i]``: one ORI of the directory (Nlets' ORION)."""

    _expected = "expected a mapping with at least 'ori'"
    _required: ClassVar[Mapping[str, str]] = {"ori": "required (a 9-character ORI)"}
    _null_ok = False

    ori: Annotated[str, Check(
        lambda v: isinstance(v, str) and is_ori(v),
        "not a 9-character ORI (2-letter state then 7 letters or digits): {got}",
        "9 characters: 2-letter state, 7 letters or digits")] = Field(
        description="the ORI (required)")
    name: Annotated[str, BeforeValidator(as_text)] | None = Field(
        None, description="a name for people (absent: the ORI)")
    state: Annotated[str, Check(
        lambda v: isinstance(v, str) and len(v) == 2 and v.isalpha(),
        "expected a 2-letter state code, got {got}", "2 letters")] | None = Field(
        None, description="its state (absent: the ORI's first two letters)")
    role: Annotated[Literal["control_terminal", "agency", "service"], one_of(
        ROLES, "expected one of " + ", ".join(ROLES) + ", got {got}")] = Field(
        "agency", description="a control terminal speaks for its state's ORIs")
    signon: Annotated[Literal["self", "control_terminal"], one_of(
        ("self", "control_terminal"), "expected 'self' or 'control_terminal'")] = Field(
        "self", description="control_terminal: served through its state's terminal")
    credential: Annotated[str, Check(
        lambda v: isinstance(v, str) and v.startswith("scrypt$"),
        "expected a scrypt hash made by `nlets-switch hash-credential` (never the "
        "credential itself)", "scrypt$...")] | None = Field(
        None, description="required to sign on (absent: the listener's no_credential rule)")
    keys: Annotated[tuple[str, ...], Check(
        _is_list_of(lambda k: isinstance(k, str)), "expected a list of message keys",
        "list of keys")] | None = Field(
        None, description="keys it takes, others get SM .01 (absent: every key)")
    speaks_for: Annotated[tuple[Annotated[str, Check(
        lambda v: isinstance(v, str) and is_ori(v), "not a 9-character ORI: {got}")], ...],
        Check(lambda v: isinstance(v, list), "expected a list of ORIs", "list of ORIs")] = Field(
        (), description="ORIs it may send as, beyond its state's")
    agency_type: Annotated[Literal["LE", "CJ", "NC"], one_of(
        ("LE", "CJ", "NC"), "expected one of LE, CJ, NC, got {got}")] = Field(
        "LE", description="ORION agency type: LE law enforcement (may send and receive AML), "
        "CJ other criminal justice, NC non-criminal justice")
    street: Annotated[str, BeforeValidator(as_text)] = Field(
        "", description="ORION: street address")
    city: Annotated[str, BeforeValidator(as_text)] = Field("", description="ORION: city")
    zip: Annotated[str, BeforeValidator(as_text)] = Field("", description="ORION: ZIP code")
    phone: Annotated[str, BeforeValidator(as_text)] = Field("", description="ORION: telephone")
    active: bool = Field(True, description="ORION: false: may not sign on nor receive")
    format: Annotated[Literal["text", "xml"], one_of(
        FORMATS, "expected text or xml, got {got}")] = Field(
        "text", description="what its link speaks: legacy text (PROTOCOL.md) or XML "
        "documents (XML.md); the switch translates every delivery")

    @field_validator("ori")
    @classmethod
    def _not_the_switch(cls, ori: str) -> str:
        if ori == SWITCH_ORI:
            raise ValueError(f"{SWITCH_ORI} is the switch itself")
        return ori

    def entry(self) -> Entry:
        """The core's directory entry of this ORI."""
        return Entry(self.ori, self.name if self.name is not None else self.ori,
                     (self.state or self.ori[:2]).upper(), self.role, self.signon == "self",
                     self.credential, frozenset(self.keys) if self.keys is not None else None,
                     frozenset(self.speaks_for), agency_type=self.agency_type,
                     address=self.street.upper(), city=self.city.upper(), zip=self.zip,
                     phone=self.phone, active=self.active, format=self.format)


def check_directory(links: Mapping[int, LinkSection],
                    simulated_states: frozenset[str]) -> list[Problem]:
    """What no single ``links[i]`` shows: an ORI twice, two control terminals for a
    state, an ORI served through a control terminal its state does not have.

    ``links`` are the valid items by index; paths are relative to ``links``.
    """
    found: list[Problem] = []
    seen: dict[str, int] = {}
    entries: dict[int, Entry] = {}
    for i, link in links.items():
        if link.ori in seen:
            found.append(((i, "ori"), f"{link.ori} is already defined at links[{seen[link.ori]}]"))
            continue
        seen[link.ori] = i
        entries[i] = link.entry()
    cts: dict[str, str] = {}
    for i, e in entries.items():
        if e.is_control_terminal:
            if e.state in cts:
                found.append(((i, "role"),
                              f"state {e.state} already has control terminal {cts[e.state]}"))
            cts[e.state] = e.ori
    for i, e in entries.items():
        if not e.signs_on and e.state not in cts and e.state not in simulated_states:
            found.append(((i, "signon"),
                          f"served through a control terminal, but state {e.state} has none"))
        if not e.signs_on and e.xml:
            # Its messages travel on its control terminal's link, in that link's format.
            found.append(((i, "format"), "only an ORI that signs on has a link format; "
                          "set it on its state's control terminal"))
    return found
