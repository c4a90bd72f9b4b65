"""The switch's configuration: YAML in, frozen dataclasses out.

Every problem is reported with the key path it concerns (``links[3].ori:
not a 9-character ORI``), all at once, so that ``check-config`` and ``serve``
can print them together. With no file, :func:`demo_config` is the demo
world of PROTOCOL part 8.

See docs/configuration.md for the full format with an example.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from nlets_switch.errors import ConfigError
from nlets_switch.wire.message import LESC_ORI as LESC_ORI  # re-exported for adapters
from nlets_switch.wire.message import SWITCH_ORI, is_ori

#: The 50 US states and DC, as NCIC codes (Nebraska is NB, FIELDS.md).
US_STATES: Final = (
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "DC", "FL", "GA", "HI", "ID", "IL",
    "IN", "IA", "KS", "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NB",
    "NV", "NH", "NJ", "NM", "NY", "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD",
    "TN", "TX", "UT", "VT", "VA", "WA", "WV", "WI", "WY",
)

ROLES: Final = ("control_terminal", "agency", "service")


def simulated_ct_ori(state: str) -> str:
    """The control-terminal ORI the switch uses for a simulated state."""
    return f"{state}NLETS00"


@dataclass(frozen=True, slots=True)
class Listener:
    """One address the switch accepts links on."""

    host: str
    port: int
    # Where a sign-on without a credential is accepted from, for ORIs that
    # have none configured: "loopback" (the demo world), "any" or "never".
    no_credential: str = "loopback"
    tls: Mapping[str, Any] | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class Limits:
    """Link limits; every one cites the PROTOCOL part it comes from."""

    max_frame: int = 65_536          # part 1: largest frame length
    max_message: int = 65_531        # part 1: largest M body ("oversize" -> N)
    window: int = 32                 # part 1: outstanding messages per link
    heartbeat_interval: float = 30.0  # part 1: idle time before the switch sends H
    heartbeat_timeout: float = 10.0   # part 1: time to answer H
    signon_timeout: float = 10.0     # time allowed to sign on after connecting
    max_queued: int = 1_000          # deliveries in memory per link; the rest wait in the journal
    max_inflight: int = 256          # messages a link may have awaiting custody
    max_connections: int = 512       # connections in all (past it: N .06. and close)
    max_connections_per_peer: int = 64  # connections from one peer address
    rate_per_ori: float = 200.0      # messages per second per ORI (token bucket; past it: N .04.)
    rate_burst: int = 400            # the bucket's size
    max_write_buffer: int = 1 << 20  # bytes waiting to be written to one link; past it the
                                     # rest waits in the journal, not in memory


@dataclass(frozen=True, slots=True)
class Security:
    """Sign-on lock-out (CJIS Security Policy 5.5.3: unsuccessful logon attempts)."""

    lockout_after: int = 5
    lockout_minutes: float = 10.0


@dataclass(frozen=True, slots=True)
class HoldOverride:
    """A configured hold rule for one key (PROTOCOL part 4: it is configuration)."""

    held: bool | None = None
    expire_s: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One ORI of the directory (Nlets' ORION)."""

    ori: str
    name: str
    state: str
    role: str = "agency"
    # True: signs on itself. False: served through its state's control terminal.
    signs_on: bool = True
    credential: str | None = None
    keys: frozenset[str] | None = None  # None: takes every key
    speaks_for: frozenset[str] = frozenset()
    simulated: bool = False

    @property
    def is_control_terminal(self) -> bool:
        """A state control terminal speaks for every ORI of its state."""
        return self.role == "control_terminal"

    def takes(self, key: str) -> bool:
        """Whether this ORI takes messages of ``key`` (else SM ``.01.``)."""
        return self.keys is None or key in self.keys


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration of one switch."""

    switch_id: str = "demo"
    timezone: str = "UTC"
    listeners: tuple[Listener, ...] = (Listener("127.0.0.1", 7330),)
    data_dir: Path = Path("nlets-data")
    limits: Limits = field(default_factory=Limits)
    hold: Mapping[str, HoldOverride] = field(default_factory=dict)
    entries: tuple[Entry, ...] = ()
    source: str = "(demo world)"
    raw: Mapping[str, Any] = field(default_factory=dict)
    security: Security = field(default_factory=Security)

    @property
    def tz(self) -> ZoneInfo:
        """The time zone of output headers (PROTOCOL part 3; default UTC)."""
        return ZoneInfo(self.timezone)


def _demo_entries() -> tuple[Entry, ...]:
    configured = [
        Entry("AZNLETS20", "ARIZONA CONTROL TERMINAL", "AZ", "control_terminal"),
        Entry("NYNLETS00", "NEW YORK CONTROL TERMINAL", "NY", "control_terminal"),
        Entry("AZ0070500", "ARIZONA AGENCY", "AZ", "agency"),
        Entry("NY0303000", "NEW YORK AGENCY", "NY", "agency", signs_on=False),
        Entry(LESC_ORI, "ICE LESC AND DHS LEIS", "VT", "service",
              keys=frozenset({"IAQ", "GPQ", "AM"})),
    ]
    return tuple(configured)


def demo_config() -> Config:
    """The demo world of PROTOCOL part 8."""
    return finish(Config(entries=_demo_entries()))


def finish(cfg: Config) -> Config:
    """Add a simulated control terminal for every US state that has none."""
    have = {e.state for e in cfg.entries if e.is_control_terminal}
    extra = tuple(
        Entry(simulated_ct_ori(s), f"{s} SIMULATED CONTROL TERMINAL", s, "control_terminal",
              simulated=True)
        for s in US_STATES if s not in have
    )
    return replace(cfg, entries=cfg.entries + extra)


# --------------------------------------------------------------------------
# Loading with key paths.
# --------------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, msg: str) -> None:
        self.items.append(f"{path}: {msg}")


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


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _num(p: _Problems, path: str, value: Any, lo: float, hi: float,
         integer: bool = True) -> float | None:
    ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
    if isinstance(value, bool) or not ok_type:
        p.add(path, f"expected {'a whole number' if integer else 'a number'}, got {value!r}")
        return None
    if not lo <= value <= hi:
        p.add(path, f"must be between {lo:g} and {hi:g}, got {value}")
        return None
    return float(value)


_LIMIT_RANGES: Final[dict[str, tuple[float, float, bool]]] = {
    "max_frame": (64, 16 * 1024 * 1024, True),
    "max_message": (16, 16 * 1024 * 1024, True),
    "window": (1, 10_000, True),
    "heartbeat_interval": (0.05, 86_400, False),
    "heartbeat_timeout": (0.05, 3_600, False),
    "signon_timeout": (0.05, 3_600, False),
    "max_queued": (1, 1_000_000, True),
    "max_inflight": (1, 100_000, True),
    "max_connections": (1, 1_000_000, True),
    "max_connections_per_peer": (1, 1_000_000, True),
    "rate_per_ori": (0.1, 1_000_000, False),
    "rate_burst": (1, 10_000_000, True),
    "max_write_buffer": (4096, 1 << 31, True),
}


def _limits(p: _Problems, raw: Any) -> Limits:
    if raw is None:
        return Limits()
    if not isinstance(raw, dict):
        p.add("limits", "expected a mapping")
        return Limits()
    values: dict[str, Any] = {}
    for k, v in raw.items():
        if k not in _LIMIT_RANGES:
            p.add(f"limits.{k}", f"unknown limit (known: {', '.join(_LIMIT_RANGES)})")
            continue
        lo, hi, integer = _LIMIT_RANGES[k]
        got = _num(p, f"limits.{k}", v, lo, hi, integer)
        if got is not None:
            values[k] = int(got) if integer else got
    limits = Limits(**values)
    if limits.max_message > limits.max_frame - 5:
        p.add("limits.max_message",
              f"must be at most limits.max_frame - 5 ({limits.max_frame - 5})")
    return limits


def _listeners(p: _Problems, raw: Any, listen: Any) -> tuple[Listener, ...]:
    out: list[Listener] = []
    if raw is None and listen is None:
        return (Listener("127.0.0.1", 7330),)
    if listen is not None:
        raw = [{"address": listen}] if isinstance(listen, str) else listen
    if not isinstance(raw, list) or not raw:
        p.add("listeners", "expected a non-empty list")
        return ()
    for i, item in enumerate(raw):
        path = f"listeners[{i}]"
        if isinstance(item, str):
            item = {"address": item}
        if not isinstance(item, dict):
            p.add(path, "expected a mapping with 'address'")
            continue
        unknown = set(item) - {"address", "no_credential", "tls"}
        for k in sorted(unknown):
            p.add(f"{path}.{k}", "unknown key")
        try:
            host, port = parse_address(str(item.get("address", "")))
        except ValueError as e:
            p.add(f"{path}.address", str(e))
            continue
        nc = item.get("no_credential", "loopback")
        if nc not in ("loopback", "any", "never"):
            p.add(f"{path}.no_credential", "expected loopback, any or never")
            nc = "loopback"
        tls = item.get("tls")
        if tls is not None:
            if not isinstance(tls, dict):
                p.add(f"{path}.tls", "expected a mapping (ca, cert, key, crl, "
                      "require_client_cert)")
                tls = None
            else:
                for k in sorted(set(tls) - {"ca", "cert", "key", "crl", "require_client_cert"}):
                    p.add(f"{path}.tls.{k}", "unknown key (known: ca, cert, key, crl, "
                          "require_client_cert)")
                for k in ("ca", "cert", "key", "crl"):
                    v = tls.get(k)
                    if v is None and k != "crl":
                        p.add(f"{path}.tls.{k}", "missing (a PEM file; `nlets-switch pki init` "
                              "makes them)")
                    elif v is not None and not Path(str(v)).is_file():
                        p.add(f"{path}.tls.{k}", f"no such file: {v}")
        out.append(Listener(host, port, nc, tls))
    return tuple(out)


def _entries(p: _Problems, raw: Any) -> tuple[Entry, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        p.add("links", "expected a list of ORIs")
        return ()
    out: list[Entry] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(raw):
        path = f"links[{i}]"
        if not isinstance(item, dict):
            p.add(path, "expected a mapping with at least 'ori'")
            continue
        known = {"ori", "name", "state", "role", "signon", "credential", "keys", "speaks_for"}
        for k in sorted(set(item) - known):
            p.add(f"{path}.{k}", f"unknown key (known: {', '.join(sorted(known))})")
        ori = item.get("ori")
        if not isinstance(ori, str) or not is_ori(ori):
            p.add(f"{path}.ori", f"not a 9-character ORI (2-letter state then 7 letters or "
                  f"digits): {ori!r}")
            continue
        if ori == SWITCH_ORI:
            p.add(f"{path}.ori", f"{SWITCH_ORI} is the switch itself")
            continue
        if ori in seen:
            p.add(f"{path}.ori", f"{ori} is already defined at links[{seen[ori]}]")
            continue
        seen[ori] = i
        state = item.get("state", ori[:2])
        if not isinstance(state, str) or len(state) != 2 or not state.isalpha():
            p.add(f"{path}.state", f"expected a 2-letter state code, got {state!r}")
            state = ori[:2]
        role = item.get("role", "agency")
        if role not in ROLES:
            p.add(f"{path}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
            role = "agency"
        signon = item.get("signon", "self")
        if signon not in ("self", "control_terminal"):
            p.add(f"{path}.signon", "expected 'self' or 'control_terminal'")
            signon = "self"
        cred = item.get("credential")
        if cred is not None and (not isinstance(cred, str) or not cred.startswith("scrypt$")):
            p.add(f"{path}.credential", "expected a scrypt hash made by "
                  "`nlets-switch hash-credential` (never the credential itself)")
            cred = None
        keys_raw = item.get("keys")
        keys: frozenset[str] | None = None
        if keys_raw is not None:
            if not isinstance(keys_raw, list) or not all(isinstance(k, str) for k in keys_raw):
                p.add(f"{path}.keys", "expected a list of message keys")
            else:
                keys = frozenset(keys_raw)
        sf_raw = item.get("speaks_for", [])
        speaks: list[str] = []
        if not isinstance(sf_raw, list):
            p.add(f"{path}.speaks_for", "expected a list of ORIs")
        else:
            for j, s in enumerate(sf_raw):
                if not isinstance(s, str) or not is_ori(s):
                    p.add(f"{path}.speaks_for[{j}]", f"not a 9-character ORI: {s!r}")
                else:
                    speaks.append(s)
        name = item.get("name", ori)
        out.append(Entry(ori, str(name), state.upper(), role, signon == "self", cred, keys,
                         frozenset(speaks)))
    cts: dict[str, str] = {}
    for e in out:
        if e.is_control_terminal:
            if e.state in cts:
                p.add(f"links[{seen[e.ori]}].role",
                      f"state {e.state} already has control terminal {cts[e.state]}")
            cts[e.state] = e.ori
    for e in out:
        if not e.signs_on and e.state not in cts and e.state not in US_STATES:
            p.add(f"links[{seen[e.ori]}].signon",
                  f"served through a control terminal, but state {e.state} has none")
    return tuple(out)


def _hold(p: _Problems, raw: Any) -> dict[str, HoldOverride]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        p.add("hold", "expected a mapping of message key to {held, expire}")
        return {}
    out: dict[str, HoldOverride] = {}
    for key, rule in raw.items():
        path = f"hold.{key}"
        if not isinstance(rule, dict):
            p.add(path, "expected a mapping with 'held' and/or 'expire'")
            continue
        for k in sorted(set(rule) - {"held", "expire"}):
            p.add(f"{path}.{k}", "unknown key (known: held, expire)")
        held = rule.get("held")
        if held is not None and not isinstance(held, bool):
            p.add(f"{path}.held", "expected true or false")
            held = None
        exp = rule.get("expire")
        exp_s: int | None = None
        if exp is not None:
            got = _num(p, f"{path}.expire", exp, 1, 365 * 86_400)
            exp_s = int(got) if got is not None else None
        out[str(key)] = HoldOverride(held, exp_s)
    return out


def _security(p: _Problems, raw: Any) -> Security:
    if raw is None:
        return Security()
    if not isinstance(raw, dict):
        p.add("security", "expected a mapping (lockout_after, lockout_minutes)")
        return Security()
    for k in sorted(set(raw) - {"lockout_after", "lockout_minutes"}):
        p.add(f"security.{k}", "unknown key (known: lockout_after, lockout_minutes)")
    after = _num(p, "security.lockout_after", raw.get("lockout_after", 5), 1, 1000)
    minutes = _num(p, "security.lockout_minutes", raw.get("lockout_minutes", 10.0), 0.001,
                   100_000, integer=False)
    return Security(int(after) if after else 5, minutes if minutes else 10.0)


TOP_KEYS: Final = ("switch", "listeners", "limits", "hold", "links", "security")
#: Sections owned by the modules that plug into the core; each module checks
#: its own section (with key paths) and finds it in ``Config.raw``.
PLUGIN_SECTIONS: Final = ("services", "mqtt", "http", "audit", "retention", "api")


#: ``section name -> checker(raw) -> problems`` ("mqtt.port: ..."), registered
#: by the modules that own the plug-in sections (see :func:`register_section`).
SECTION_CHECKERS: dict[str, Callable[[Any], list[str]]] = {}


def register_section(name: str, checker: Callable[[Any], list[str]]) -> None:
    """Let a plug-in module check its configuration section with key paths."""
    SECTION_CHECKERS[name] = checker


#: The modules that own the plug-in sections; importing one registers its checker.
SECTION_OWNERS: Final = ("nlets_switch.services.local", "nlets_switch.ops.monitor",
                         "nlets_switch.ops.audit", "nlets_switch.ops.retention")


def _import_section_owners() -> None:
    # Imported here, not at the top: they import this module.
    import importlib

    for name in SECTION_OWNERS:
        importlib.import_module(name)


def load_config(path: Path | str, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read and check a YAML configuration; raise ConfigError listing every problem."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError([f"cannot read: {e.strerror}"], str(path)) from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "YAML"
        raise ConfigError([f"{where}: not valid YAML ({getattr(e, 'problem', e)})"],
                          str(path)) from None
    return config_from_dict(raw if raw is not None else {}, str(path), overrides)


def config_from_dict(raw: Any, source: str = "(dict)",
                     overrides: Mapping[str, Any] | None = None) -> Config:
    """Check a configuration already read from YAML (see :func:`load_config`)."""
    p = _Problems()
    if not isinstance(raw, dict):
        raise ConfigError(["(top): expected a mapping"], source)
    known = TOP_KEYS + PLUGIN_SECTIONS
    for k in sorted(set(raw) - set(known)):
        p.add(str(k), f"unknown section (known: {', '.join(known)})")
    sw = raw.get("switch") or {}
    if not isinstance(sw, dict):
        p.add("switch", "expected a mapping")
        sw = {}
    for k in sorted(set(sw) - {"id", "timezone", "listen", "data_dir"}):
        p.add(f"switch.{k}", "unknown key (known: id, timezone, listen, data_dir)")
    tz = str(sw.get("timezone", "UTC"))
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        p.add("switch.timezone", f"unknown time zone {tz!r}")
        tz = "UTC"
    switch_id = str(sw.get("id", "demo"))
    listeners = _listeners(p, raw.get("listeners"), sw.get("listen"))
    data_dir = Path(str(sw.get("data_dir", "nlets-data")))
    limits = _limits(p, raw.get("limits"))
    hold = _hold(p, raw.get("hold"))
    # Without a `links` section the directory is the demo world's (part 8), so a
    # file can change limits or hold rules and keep the ORIs everyone knows.
    entries = _entries(p, raw["links"]) if "links" in raw else _demo_entries()
    _import_section_owners()
    for name, checker in SECTION_CHECKERS.items():
        if name in raw:
            for problem in checker(raw[name]):
                p.items.append(problem)
    security = _security(p, raw.get("security"))
    if p.items:
        raise ConfigError(p.items, source)
    cfg = Config(switch_id, tz, listeners, data_dir, limits, hold, entries, source, raw, security)
    return finish(cfg)


def with_overrides(cfg: Config, listen: Sequence[str] = (), data_dir: str | None = None) -> Config:
    """Apply ``--listen`` and ``--data-dir`` from the command line."""
    listeners = cfg.listeners
    if listen:
        problems = []
        out = []
        for i, a in enumerate(listen):
            try:
                host, port = parse_address(a)
            except ValueError as e:
                problems.append(f"--listen[{i}]: {e}")
                continue
            base = cfg.listeners[0] if cfg.listeners else Listener(host, port)
            out.append(Listener(host, port, base.no_credential, base.tls))
        if problems:
            raise ConfigError(problems, "command line")
        listeners = tuple(out)
    return replace(cfg, listeners=listeners,
                   data_dir=Path(data_dir) if data_dir else cfg.data_dir)


def is_loopback(host: str) -> bool:
    """True for a loopback address (the demo world's no-credential rule)."""
    return _is_loopback(host)
