"""The whole configuration: the file's model, the :class:`Config` the switch runs on, loading.

:class:`ConfigFile` is the YAML file, one field per section, each section a
model of its own (the plug-in sections are the models their owners declare,
composed here by name). :class:`Config` is what the rest of the code reads:
the switch's values under the names they have always had, and each plug-in
section typed (``cfg.mqtt``, ``cfg.retention``, ``cfg.services``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    InstanceOf,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from nlets_switch.config.intervention import InterventionSection
from nlets_switch.config.model import (
    Check,
    Problem,
    Section,
    fail,
    problems_in,
    validate,
)
from nlets_switch.config.sections import (
    HoldSection,
    Limits,
    LinkSection,
    Listener,
    Security,
    StoreSection,
    SwitchSection,
    check_directory,
    hold_keys,
    parse_address,
)
from nlets_switch.core.entries import LESC_ORI, Entry, HoldOverride
from nlets_switch.core.foreign import FOREIGN
from nlets_switch.errors import ConfigError
from nlets_switch.ops.settings import (
    ApiSection,
    AuditSettings,
    HttpSection,
    MqttSettings,
    RetentionSettings,
)
from nlets_switch.services.settings import ServicesSettings

# The domain rules (wire/domain.py), re-exported for the modules that read them
# from the configuration.
from nlets_switch.wire.domain import US_STATES as US_STATES
from nlets_switch.wire.domain import simulated_ct_ori as simulated_ct_ori

#: The directory of the demo world (PROTOCOL part 8), used when a file has no ``links``.
DEMO_ENTRIES: Final = (
    Entry("AZNLETS20", "ARIZONA CONTROL TERMINAL", "AZ", "control_terminal", True),
    Entry("NYNLETS00", "NEW YORK CONTROL TERMINAL", "NY", "control_terminal", True),
    Entry("AZ0070500", "ARIZONA AGENCY", "AZ", "agency", True),
    Entry("NY0303000", "NEW YORK AGENCY", "NY", "agency", False),
    Entry(LESC_ORI, "ICE LESC AND DHS LEIS", "VT", "service", True,
          keys=frozenset({"IAQ", "GPQ", "AM"})),
)


class ConfigFile(Section):
    """The configuration file: every section optional, each a model of its own."""

    _unknown = "unknown section (known: {known})"
    _null_ok = False

    switch: SwitchSection = Field(default_factory=SwitchSection)
    listeners: Annotated[tuple[Listener, ...], Check(
        lambda v: isinstance(v, list) and len(v) > 0, "expected a non-empty list")] | None = (
        Field(None, description="the addresses to accept links on, each `address: HOST:PORT` "
              "with `no_credential` and `tls` (give this or `switch.listen`, not both)"))
    limits: Limits = Field(default_factory=Limits)
    # (Before-validators run last to first: hold_keys, then the check.)
    hold: Annotated[dict[str, HoldSection], Check(
        lambda v: isinstance(v, dict), "expected a mapping of message key to {held, expire}"),
        BeforeValidator(hold_keys)] = Field(
        default_factory=dict, description="hold rules by message key (absent: the schema's)")
    links: tuple[LinkSection, ...] | None = Field(
        None, description="the directory (Nlets' ORION); absent: the demo world's")
    security: Security = Field(default_factory=Security)
    services: ServicesSettings = Field(default_factory=ServicesSettings)
    mqtt: MqttSettings | None = None
    http: HttpSection = Field(default_factory=HttpSection)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    api: ApiSection = Field(default_factory=ApiSection)
    intervention: InterventionSection = Field(default_factory=InterventionSection)
    store: StoreSection = Field(default_factory=StoreSection)

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        sw = data.get("switch")
        if (data.get("listeners") is not None and isinstance(sw, dict)
                and sw.get("listen") is not None):
            # Both used to be accepted and `listeners` silently dropped.
            return data, [(("listeners",), "give switch.listen or listeners, not both")]
        return data, []

    @field_validator("links", mode="wrap")
    @classmethod
    def _directory(cls, value: Any, handler: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, list):
            if value is None or isinstance(value, tuple):
                return handler(value)
            fail(((), "expected a list of ORIs"))
        # Each ORI on its own, so that the directory-wide checks see every valid one.
        valid: dict[int, LinkSection] = {}
        found: list[Problem] = []
        for i, item in enumerate(value):
            try:
                valid[i] = LinkSection.model_validate(item, context=info.context)
            except ValidationError as e:
                found += [((i, *loc), msg) for loc, msg in problems_in(e)]
        found += check_directory(valid, frozenset(US_STATES))
        if found:
            fail(*found)
        return tuple(valid.values())

    def listener_list(self) -> tuple[Listener, ...]:
        """``listeners`` when given, else ``switch.listen`` (or its default)."""
        return self.listeners if self.listeners is not None else self.switch.listen

    def entries(self) -> tuple[Entry, ...]:
        """The directory: ``links`` when given (``links:`` empty is none), else the demo's."""
        if "links" not in self.model_fields_set:
            return DEMO_ENTRIES
        return tuple(link.entry() for link in self.links or ())


class Config(BaseModel):
    """The whole configuration of one switch, as the code reads it.

    Frozen; derive a changed one with ``cfg.model_copy(update={...})`` (as
    :func:`with_overrides` does). The plug-in sections are typed: ``services``,
    ``mqtt`` (None: no MQTT), ``http``, ``api``, ``audit``, ``retention``.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    switch_id: str
    timezone: str
    listeners: tuple[Listener, ...]
    data_dir: Path
    limits: Limits
    hold: Mapping[str, InstanceOf[HoldOverride]]
    entries: tuple[InstanceOf[Entry], ...]
    security: Security
    services: ServicesSettings
    mqtt: MqttSettings | None
    http: HttpSection
    api: ApiSection
    audit: AuditSettings
    retention: RetentionSettings
    intervention: InterventionSection = Field(default_factory=InterventionSection)
    store: StoreSection = Field(default_factory=StoreSection)
    source: str = "(dict)"

    @property
    def tz(self) -> ZoneInfo:
        """The time zone of output headers (PROTOCOL part 3; default UTC)."""
        return ZoneInfo(self.timezone)

    @classmethod
    def of(cls, f: ConfigFile, source: str) -> Config:
        """The configuration a checked file describes (before :func:`finish`)."""
        return cls(
            switch_id=f.switch.id, timezone=f.switch.timezone, listeners=f.listener_list(),
            data_dir=f.switch.data_dir, limits=f.limits,
            hold={k: rule.override() for k, rule in f.hold.items()}, entries=f.entries(),
            security=f.security, services=f.services, mqtt=f.mqtt, http=f.http, api=f.api,
            audit=f.audit, retention=f.retention, intervention=f.intervention, store=f.store,
            source=source)


def finish(cfg: Config) -> Config:
    """Add a simulated control terminal for every US state that has none, and a
    simulated Canada, INTERPOL and Mexico where their ORIs are not configured."""
    have = {e.state for e in cfg.entries if e.is_control_terminal}
    oris = {e.ori for e in cfg.entries}
    extra = tuple(
        Entry(simulated_ct_ori(s), f"{s} SIMULATED CONTROL TERMINAL", s, "control_terminal",
              True, simulated=True)
        for s in US_STATES if s not in have
    ) + tuple(
        Entry(f.ori, f.name, f.code, "service", True, keys=f.keys, simulated=True)
        for f in FOREIGN.values() if f.ori not in oris
    )
    return cfg.model_copy(update={"entries": cfg.entries + extra})


def config_from_dict(raw: Any, source: str = "(dict)",
                     overrides: Mapping[str, Any] | None = None) -> Config:
    """Check a configuration already read from YAML (see :func:`load_config`);
    raise ConfigError listing every problem with its key path."""
    return finish(Config.of(validate(ConfigFile, raw, source), source))


def demo_config() -> Config:
    """The demo world of PROTOCOL part 8 (every default, the demo directory)."""
    return config_from_dict({}, "(demo world)")


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


def with_overrides(cfg: Config, listen: Sequence[str] = (), data_dir: str | None = None,
                   store: str | None = None, node_id: str | None = None) -> Config:
    """Apply ``--listen``, ``--data-dir``, ``--store`` and ``--node-id`` from the command line.

    A ``--listen`` address takes the first configured listener's other
    settings (``no_credential``, ``tls``).
    """
    update: dict[str, Any] = {}
    if listen:
        problems = []
        out = []
        for i, a in enumerate(listen):
            try:
                host, port = parse_address(a)
            except ValueError as e:
                problems.append(f"--listen[{i}]: {e}")
                continue
            base = cfg.listeners[0] if cfg.listeners else None
            out.append(base.model_copy(update={"host": host, "port": port}) if base is not None
                       else Listener(host=host, port=port))
        if problems:
            raise ConfigError(problems, "command line")
        update["listeners"] = tuple(out)
    if data_dir:
        update["data_dir"] = Path(data_dir)
    if store:
        try:
            update["store"] = StoreSection(url=store, node_id=cfg.store.node_id)
        except ValueError:
            raise ConfigError([f"--store: expected postgresql://USER@HOST/DB, got {store!r}"],
                              "command line") from None
    if node_id:
        try:
            update["store"] = StoreSection(url=update.get("store", cfg.store).url,
                                           node_id=node_id)
        except ValueError:
            raise ConfigError([f"--node-id: expected 1 to 32 of a-z 0-9 _ -, got {node_id!r}"],
                              "command line") from None
    store_section = update.get("store", cfg.store)
    if store_section.node_id and not store_section.url:
        raise ConfigError(["store.node_id: a cluster node needs a PostgreSQL store "
                           "(store.url or --store postgresql://...)"], cfg.source)
    return cfg.model_copy(update=update) if update else cfg
