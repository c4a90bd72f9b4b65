"""Loading ``schemas/*.yaml`` into :class:`~nlets_switch.wire.keyschema.KeySchema` objects.

Every problem of a file is reported at once, with the file's name and the
key path it concerns (``DQ.yaml: fields.DOB.format: unknown format 'dat'``).
The format is described in ``docs/schemas.md``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from nlets_switch.errors import ConfigError, ErCode
from nlets_switch.wire.fields import DEFAULT_ER, FIELD_ERS, FORMATS, TAG, FieldSpec
from nlets_switch.wire.keyschema import (
    ADDRESS_KINDS,
    KINDS,
    DataSet,
    DataSetRule,
    DestinationRule,
    HoldRule,
    KeySchema,
    SchemaSet,
)

__all__ = ["load_schemas"]

#: The package that holds the bundled YAML files (``schemas/`` in the tree).
_PACKAGE: Final = "nlets_switch.schemas"
#: The tag catalogue; files whose name starts with ``_`` are not keys.
_CATALOGUE: Final = "_tags.yaml"
#: How long a held message waits by default (our choice: one day).
_DEFAULT_EXPIRE_S: Final = 86_400

_FIELD_ER_INTS: Final = frozenset(int(c) for c in FIELD_ERS)
_KEY_NAME = re.compile(r"[A-Z]{2,3}")
_TOP_KEYS = frozenset({
    "key", "kind", "description", "free_text", "fields", "required", "options",
    "exclusive", "data_sets", "destinations", "hold", "response", "samples", "invalid",
})
_FIELD_KEYS = frozenset({"description", "format", "regex", "enum", "min", "max", "er"})


class _Problems:
    """Collects ``key.path: message`` problems for one file."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)


def _mapping(p: _Problems, path: str, value: object) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        p.add(path, "must be a mapping")
        return {}
    bad = [k for k in value if not isinstance(k, str)]
    if bad:
        # YAML 1.1 reads OFF, ON, YES, NO as booleans: a tag like OFF must be quoted.
        p.add(path, f"key {bad[0]!r} is not a string (quote it)")
        return {k: v for k, v in value.items() if isinstance(k, str)}
    return value


def _unknown_keys(p: _Problems, path: str, value: Mapping[str, Any],
                  known: frozenset[str]) -> None:
    for k in value:
        if k not in known:
            p.add(f"{path}.{k}" if path else k, "unknown setting")


def _str(p: _Problems, path: str, value: object, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        p.add(path, "must be a string")
        return default
    return value


def _bool(p: _Problems, path: str, value: object, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        p.add(path, "must be true or false")
        return default
    return value


def _int(p: _Problems, path: str, value: object, default: int, minimum: int = 0) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        p.add(path, f"must be an integer >= {minimum}")
        return default
    return value


def _strs(p: _Problems, path: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | int) and not isinstance(value, bool):
        value = [value]  # a single item may be written without a list
    if not isinstance(value, list):
        p.add(path, "must be a list of strings")
        return ()
    out: list[str] = []
    for i, item in enumerate(value):
        # YAML reads NO, Y, N, 2D... mostly as strings, but 0399 or 10 as
        # numbers; a code list wants text.
        if isinstance(item, bool) or not isinstance(item, str | int):
            p.add(f"{path}[{i}]", "must be a string")
            continue
        out.append(str(item))
    return tuple(out)


def _tags(p: _Problems, path: str, value: object, known: Mapping[str, object]) -> tuple[str, ...]:
    tags = _strs(p, path, value)
    for i, t in enumerate(tags):
        if t not in known:
            p.add(f"{path}[{i}]", f"tag {t!r} is not among the key's fields")
    return tags


def _field_spec(p: _Problems, path: str, tag: str, raw: Mapping[str, Any]) -> FieldSpec:
    _unknown_keys(p, path, raw, _FIELD_KEYS)
    fmt = raw.get("format")
    if fmt is not None and (not isinstance(fmt, str) or fmt not in FORMATS):
        p.add(f"{path}.format", f"unknown format {fmt!r} (known: {', '.join(sorted(FORMATS))})")
        fmt = None
    pattern: re.Pattern[str] | None = None
    regex = raw.get("regex")
    if regex is not None:
        if not isinstance(regex, str):
            p.add(f"{path}.regex", "must be a string")
        else:
            try:
                pattern = re.compile(regex)
            except re.error as exc:
                p.add(f"{path}.regex", f"bad regular expression: {exc}")
    enum = raw.get("enum")
    values = frozenset(_strs(p, f"{path}.enum", enum)) if enum is not None else None
    min_len = _int(p, f"{path}.min", raw.get("min"), 1, minimum=1)
    max_len: int | None = None
    if raw.get("max") is not None:
        max_len = _int(p, f"{path}.max", raw.get("max"), 0, minimum=min_len)
    er = DEFAULT_ER.get(tag, ErCode.FORMAT)
    if raw.get("er") is not None:
        code = raw.get("er")
        if isinstance(code, int) and not isinstance(code, bool) and code in _FIELD_ER_INTS:
            er = ErCode(code)
        else:
            p.add(f"{path}.er", f"must be one of {sorted(_FIELD_ER_INTS)}")
    return FieldSpec(tag=tag, description=_str(p, f"{path}.description", raw.get("description")),
                     format=fmt, pattern=pattern, enum=values, min_len=min_len,
                     max_len=max_len, er=er)


def _read_yaml(name: str, text: str) -> Mapping[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}".replace("\n", " ")], source=name) from None
    if not isinstance(data, Mapping):
        raise ConfigError(["the file must hold a mapping"], source=name)
    p = _Problems()
    data = _mapping(p, "", data)
    if p.items:
        raise ConfigError(p.items, source=name)
    return data


def _catalogue(name: str, data: Mapping[str, Any],
               into: dict[str, Mapping[str, Any]]) -> None:
    """Merge a ``_tags.yaml`` (tag -> field settings) into ``into``."""
    p = _Problems()
    for tag, raw in data.items():
        if not TAG.fullmatch(tag):
            p.add(tag, "a tag is 3 uppercase letters")
            continue
        settings = _mapping(p, tag, raw)
        _field_spec(p, tag, tag, settings)  # report problems here, with this file's name
        into[tag] = settings
    if p.items:
        raise ConfigError(p.items, source=name)


def _key_schema(name: str, stem: str, data: Mapping[str, Any],
                catalogue: Mapping[str, Mapping[str, Any]]) -> KeySchema:
    p = _Problems()
    _unknown_keys(p, "", data, _TOP_KEYS)
    key = _str(p, "key", data.get("key"), stem)
    if key != stem:
        p.add("key", f"{key!r} does not match the file name")
    kind = _str(p, "kind", data.get("kind"))
    if kind not in KINDS:
        p.add("kind", f"must be one of {', '.join(sorted(KINDS))}")
    free_text = _bool(p, "free_text", data.get("free_text"), False)

    fields: dict[str, FieldSpec] = {}
    for tag, raw in _mapping(p, "fields", data.get("fields")).items():
        path = f"fields.{tag}"
        if not TAG.fullmatch(tag):
            p.add(path, "a tag is 3 uppercase letters")
            continue
        own = _mapping(p, path, raw)
        base = catalogue.get(tag)
        if base is None and not own:
            p.add(path, f"tag {tag} is not in {_CATALOGUE}; describe its format here")
        fields[tag] = _field_spec(p, path, tag, {**(base or {}), **own})
    if free_text and fields:
        p.add("fields", "a free-text key has no fields")

    required = _tags(p, "required", data.get("required"), fields)
    options: list[tuple[str, ...]] = []
    extras: list[tuple[str, ...]] = []
    raw_options = data.get("options")
    if raw_options is not None and not isinstance(raw_options, list):
        p.add("options", "must be a list")
        raw_options = None
    for i, opt in enumerate(raw_options or ()):
        path = f"options[{i}]"
        if isinstance(opt, Mapping):
            _unknown_keys(p, path, opt, frozenset({"fields", "with"}))
            options.append(_tags(p, f"{path}.fields", opt.get("fields"), fields))
            extras.append(_tags(p, f"{path}.with", opt.get("with"), fields))
        else:
            options.append(_tags(p, path, opt, fields))
            extras.append(())
        if not options[-1]:
            p.add(path, "an option names at least one tag")
    exclusive = _bool(p, "exclusive", data.get("exclusive"), False)

    data_sets: DataSetRule | None = None
    if data.get("data_sets") is not None:
        raw_ds = _mapping(p, "data_sets", data.get("data_sets"))
        _unknown_keys(p, "data_sets", raw_ds, frozenset({"selector", "sets"}))
        selector = _str(p, "data_sets.selector", raw_ds.get("selector"))
        if selector not in fields:
            p.add("data_sets.selector", f"tag {selector!r} is not among the key's fields")
        sets: list[DataSet] = []
        for set_name, raw_set in _mapping(p, "data_sets.sets", raw_ds.get("sets")).items():
            path = f"data_sets.sets.{set_name}"
            s = _mapping(p, path, raw_set)
            _unknown_keys(p, path, s, frozenset({"when", "required", "optional"}))
            sets.append(DataSet(
                name=set_name,
                when=frozenset(_strs(p, f"{path}.when", s.get("when"))),
                required=_tags(p, f"{path}.required", s.get("required"), fields),
                optional=_tags(p, f"{path}.optional", s.get("optional"), fields),
            ))
        data_sets = DataSetRule(selector=selector, sets=tuple(sets))

    raw_dest = _mapping(p, "destinations", data.get("destinations"))
    _unknown_keys(p, "destinations", raw_dest, frozenset({"min", "max", "kinds"}))
    dmin = _int(p, "destinations.min", raw_dest.get("min"), 1, minimum=1)
    dmax = _int(p, "destinations.max", raw_dest.get("max"), 5, minimum=dmin)
    kinds = _strs(p, "destinations.kinds", raw_dest.get("kinds")) or ("state", "ori")
    for i, k in enumerate(kinds):
        if k not in ADDRESS_KINDS:
            p.add(f"destinations.kinds[{i}]",
                  f"unknown address kind {k!r} (known: {', '.join(sorted(ADDRESS_KINDS))})")

    raw_hold = _mapping(p, "hold", data.get("hold"))
    _unknown_keys(p, "hold", raw_hold, frozenset({"held", "expire_s"}))
    # PROTOCOL part 8: responses are held, inquiries are not.
    held = _bool(p, "hold.held", raw_hold.get("held"), kind == "response")
    expire = _int(p, "hold.expire_s", raw_hold.get("expire_s"),
                  _DEFAULT_EXPIRE_S if held else 0)

    response = data.get("response")
    if response is not None:
        response = _str(p, "response", response)
        if kind != "inquiry":
            p.add("response", "only an inquiry expects a response")

    samples = _strs(p, "samples", data.get("samples"))
    invalid: list[tuple[str, int]] = []
    raw_invalid = data.get("invalid")
    if raw_invalid is not None and not isinstance(raw_invalid, list):
        p.add("invalid", "must be a list")
        raw_invalid = None
    for i, item in enumerate(raw_invalid or ()):
        path = f"invalid[{i}]"
        m = _mapping(p, path, item)
        _unknown_keys(p, path, m, frozenset({"message", "er"}))
        message = _str(p, f"{path}.message", m.get("message"))
        code = _int(p, f"{path}.er", m.get("er"), 0, minimum=1)
        if code not in {int(c) for c in ErCode}:
            p.add(f"{path}.er", "not an ER code of PROTOCOL part 4")
        invalid.append((message, code))

    if p.items:
        raise ConfigError(p.items, source=name)
    return KeySchema(
        key=key, kind=kind, description=_str(p, "description", data.get("description")),
        free_text=free_text, fields=MappingProxyType(fields), required=required,
        options=tuple(options), destinations=DestinationRule(dmin, dmax, frozenset(kinds)),
        hold=HoldRule(held, expire), response=response, samples=samples,
        invalid_samples=tuple(invalid), option_extras=tuple(extras), exclusive=exclusive,
        data_sets=data_sets,
    )


def _yaml_files(root: Traversable) -> list[Traversable]:
    return sorted((f for f in root.iterdir() if f.name.endswith(".yaml") and f.is_file()),
                  key=lambda f: f.name)


def load_schemas(extra_dirs: Sequence[Path] = ()) -> SchemaSet:
    """Load the bundled schemas, then those of ``extra_dirs`` in order.

    A later file for the same key replaces the earlier one; a later
    ``_tags.yaml`` overrides tags of the earlier catalogue. Raises
    :class:`ConfigError` naming the file and the key path of the first
    malformed file (``DQ.yaml: fields.DOB.format: unknown format 'dat'``),
    or a response key that no schema defines.
    """
    roots: list[Traversable] = [resources.files(_PACKAGE)]
    for d in extra_dirs:
        if not Path(d).is_dir():
            raise ConfigError([f"schema directory {d} does not exist"])
        roots.append(Path(d))
    catalogue: dict[str, Mapping[str, Any]] = {}
    key_files: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for root in roots:
        for f in _yaml_files(root):
            data = _read_yaml(f.name, f.read_text(encoding="utf-8"))
            stem = f.name.removesuffix(".yaml")
            if f.name == _CATALOGUE:
                _catalogue(f.name, data, catalogue)
            elif stem.startswith("_"):
                continue  # reserved for shared data
            elif not _KEY_NAME.fullmatch(stem):
                raise ConfigError(["a schema file is named for its key: 2 or 3 uppercase letters"],
                                  source=f.name)
            else:
                key_files[stem] = (f.name, data)
    schemas = {stem: _key_schema(name, stem, data, catalogue)
               for stem, (name, data) in key_files.items()}
    for s in schemas.values():
        target = schemas.get(s.response) if s.response else None
        if s.response and (target is None or target.kind != "response"):
            raise ConfigError([f"response: {s.response!r} is not a response key with a schema"],
                              source=key_files[s.key][0])
    return SchemaSet(schemas)
