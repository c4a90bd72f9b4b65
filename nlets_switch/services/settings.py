"""The ``services`` configuration section: the NL services and each adapter's own section.

::

    services:
      nl: {gather_s: 5}
      leis: {enabled: true, delay_s: 2, ...}     # the adapter named leis
      <adapter name>: {enabled: true, ...}

``services.nl`` is :class:`NlSettings`. Every other key names an installed
adapter (entry-point group ``nlets_switch.adapters``); ``enabled`` belongs to
the host, the rest to the adapter: checked by its ``settings_model`` (a
:class:`~nlets_switch.config.model.Section`) when it declares one, else by its
``check_config``. Adapters are loaded while a configuration with a
``services`` section is checked, never when this module is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, InstanceOf, ValidationError

from nlets_switch.config.model import (
    Between,
    Problem,
    Section,
    problems_in,
    problems_of,
)


class NlSettings(Section):
    """``services.nl``: the switch's own NL services (PROTOCOL part 5)."""

    gather_s: Annotated[float, Between(0, 600)] = Field(
        5.0, description="PROTOCOL part 5: how long the NL fan-out gathers answers (seconds)")
    yq_urgent_s: Annotated[float, Between(1, 86_400)] = Field(
        600.0, description="seconds a record holder has to answer a YQ with PRI/U")
    yq_routine_s: Annotated[float, Between(1, 86_400)] = Field(
        3600.0, description="seconds a record holder has to answer a YQ with PRI/R")


class AdapterSettings(Section):
    """A base for an adapter's section model (``services.<name>``).

    ``enabled`` is the host's, so it is among the keys an adapter's section knows.
    """

    _unknown = "unknown key (known: enabled, {known})"


class AdapterSection(BaseModel):
    """One adapter's section as checked: ``enabled``, its settings as a mapping
    (``options``, what :class:`~nlets_switch.services.adapter.Context` calls
    ``config``) and, for an adapter with a ``settings_model``, the model."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    enabled: bool = True
    options: Mapping[str, Any] = Field(default_factory=dict)
    settings: InstanceOf[BaseModel] | None = None


def _split(problem: str) -> Problem:
    # An adapter's check_config says "key.path: problem"; keep its path as one part.
    path, sep, msg = problem.partition(": ")
    return ((path,), msg) if sep and path and " " not in path else ((), problem)


class ServicesSettings(Section):
    """``services``: the NL services and the adapters' sections, by adapter name."""

    _expected = "expected a mapping of service name to settings"

    nl: NlSettings = Field(default_factory=NlSettings)
    adapters: Mapping[str, AdapterSection] = Field(
        default_factory=dict, description="`services.<adapter name>`: `enabled` (default "
        "true) and the adapter's own settings")

    @classmethod
    def _keys(cls) -> None:
        return None  # service names: sorted out in _reshape

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        # Imported here: loading adapters is for checking a file, not for importing this.
        from nlets_switch.errors import AdapterError
        from nlets_switch.services import adapter as ad

        out: dict[str, Any] = {}
        adapters: dict[str, AdapterSection] = {}
        found: list[Problem] = []
        eps = {ep.name: ep for ep in ad.entry_points()} if set(data) - {"nl"} else {}
        for name, section in data.items():
            if name == "nl":
                out["nl"] = section
                continue
            if section is None:
                continue
            if not isinstance(section, dict):
                found.append(((name,), "expected a mapping"))
                continue
            if name not in eps:
                known = ", ".join(["nl", *sorted(eps)])
                found.append(((name,), f"no adapter of that name is installed (known: {known})"))
                continue
            enabled = section.get("enabled", True)
            if not isinstance(enabled, bool):
                found.append(((name, "enabled"), "expected true or false"))
            try:
                loaded = ad.load_entry_point(eps[name])
            except AdapterError as e:
                found.append(((name,), str(e)))
                continue
            rest = {k: v for k, v in section.items() if k != "enabled"}
            model = getattr(loaded.adapter, "settings_model", None)
            if isinstance(model, type) and issubclass(model, BaseModel):
                try:
                    settings = model.model_validate(rest, context=context)
                except ValidationError as e:
                    found += [((name, *loc), msg) for loc, msg in problems_in(e)]
                    continue
                adapters[name] = AdapterSection(enabled=enabled is not False,
                                                options=settings.model_dump(),
                                                settings=settings)
            else:
                found += [((name, *loc), msg) for loc, msg in
                          map(_split, loaded.adapter.check_config(rest))]
                adapters[name] = AdapterSection(enabled=enabled is not False, options=rest)
        out["adapters"] = adapters
        return out, found

    def section(self, name: str, model: type[BaseModel] | None = None) -> AdapterSection:
        """The section of adapter ``name``; with no section in the file, the defaults
        of its ``model`` (when it has one)."""
        found = self.adapters.get(name)
        if found is not None:
            return found
        if model is None:
            return AdapterSection()
        settings = model()
        return AdapterSection(options=settings.model_dump(), settings=settings)


def check_section(raw: Any) -> list[str]:
    """Problems of a ``services`` section, each as ``services.key.path: problem``."""
    return problems_of(ServicesSettings, raw, ("services",))

