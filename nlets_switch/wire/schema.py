"""Message schemas (``schemas/*.yaml``) and the pure field validator.

Each message key has one YAML file (data, not code) that says what kind of
message it is, which field tags its text may carry and in what format,
which tags are required, its search options, its destination and hold rules,
the response an inquiry expects and sample messages. ``_tags.yaml`` is a
catalogue of the field tags of FIELDS.md that key files refer to, so that a
tag's format is written once. ``docs/schemas.md`` describes the format and the
ER rules below.

Validation (PROTOCOL part 2 and 4) checks, in this order, raising the first
:class:`~nlets_switch.errors.MessageError` found:

1. the field grammar (``TAG/value`` separated by periods): ``.22.``;
2. tags the key does not know: ``.22.`` naming them;
3. each value in field order: ``.05.`` for DOB, ``.10.`` for a year field
   (LIY, VYR), ``.16.`` for ATN, ``.22.`` naming the field otherwise;
4. required tags: ``.05.`` if DOB is missing, else ``.10.`` if a year field
   is, else ``.14.`` naming every missing tag;
5. search options: ``.22.`` with the key's field options;
6. the data-set rule (YQ): a data set the selector does not call for is
   ``.22.``; a missing tag of the one it calls for is treated as in 4.

The module is pure (no I/O after :func:`load_schemas`, no clock, no logging)
and everything is compiled when the schemas load, because validation runs
once per message.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import yaml

from nlets_switch.errors import ConfigError, ErCode, MessageError

__all__ = [
    "ADDRESS_KINDS",
    "KINDS",
    "DataSet",
    "DataSetRule",
    "DestinationRule",
    "FieldSpec",
    "HoldRule",
    "KeySchema",
    "SchemaSet",
    "is_no_record",
    "load_schemas",
    "parse_fields",
]

#: Kinds of message key.
KINDS: Final = frozenset({"inquiry", "response", "admin"})
#: Kinds of destination address (PROTOCOL part 2): a 2-letter state, a
#: 9-character ORI, ``AX``, ``NL`` and a help-file address ``SSFFFFUNC``.
ADDRESS_KINDS: Final = frozenset({"state", "ori", "ax", "nl", "help"})

#: The package that holds the bundled YAML files (``schemas/`` in the tree).
_PACKAGE: Final = "nlets_switch.schemas"
#: The tag catalogue; files whose name starts with ``_`` are not keys.
_CATALOGUE: Final = "_tags.yaml"
#: How long a held message waits by default (our choice: one day).
_DEFAULT_EXPIRE_S: Final = 86_400

# --------------------------------------------------------------------------
# Field grammar (PROTOCOL part 2).
# --------------------------------------------------------------------------

# A field ends at a period, which line breaks may follow; line breaks alone
# also separate fields. Blank lines count as one separator.
_SEPARATOR = re.compile(r"\.(?:\r\n|\r|\n)*|(?:\r\n|\r|\n)+")
# TAG is 3 uppercase letters. A period cannot occur in the value (it would
# have ended the field); other characters are left to the value checks, so
# that a bad character is reported against its field.
_FIELD = re.compile(r"([A-Z]{3})/(.*)", re.DOTALL)
_TAG = re.compile(r"[A-Z]{3}")
_TRAILING = "\r\n"


def parse_fields(text: str) -> tuple[tuple[str, str], ...]:
    """Split a message text into ``(tag, value)`` pairs, in order.

    ``text`` is what follows ``TXT`` with the leading blanks and line breaks
    already removed; trailing line breaks are ignored. An empty text has no
    fields. Raises :class:`MessageError` ``.22.`` naming the fault for a text
    that ends with a period, an empty field (``..``), a field without
    ``TAG/``, an empty value or a duplicate tag.
    """
    text = text.rstrip(_TRAILING)
    if not text:
        return ()
    if text[-1] == ".":
        raise MessageError(ErCode.FORMAT, "TEXT ENDS WITH A PERIOD")
    fields: list[tuple[str, str]] = []
    seen: set[str] = set()
    for n, raw in enumerate(_SEPARATOR.split(text), start=1):
        m = _FIELD.fullmatch(raw)
        if m is None:
            # Name the field by position: its text may be criminal-justice
            # information, and ER detail lines should not echo it twice.
            what = "EMPTY FIELD" if not raw else "NO TAG/ IN FIELD"
            raise MessageError(ErCode.FORMAT, f"{what} {n}")
        tag, value = m.group(1), m.group(2)
        if not value:
            raise MessageError.naming(ErCode.FORMAT, "EMPTY FIELD", (tag,))
        if tag in seen:
            raise MessageError.naming(ErCode.FORMAT, "DUPLICATE FIELD", (tag,))
        seen.add(tag)
        fields.append((tag, value))
    return tuple(fields)


# --------------------------------------------------------------------------
# Value formats (FIELDS.md).
# --------------------------------------------------------------------------


def _is_date(value: str) -> bool:
    """MMDDYY or CCYYMMDD, and a real date."""
    if not value.isascii() or not value.isdigit():
        return False
    years: tuple[int, ...]
    if len(value) == 8:
        years = (int(value[:4]),)
        month, day = int(value[4:6]), int(value[6:8])
    elif len(value) == 6:
        month, day = int(value[:2]), int(value[2:4])
        yy = int(value[4:6])
        # The century of MMDDYY is unknown (and a pure validator cannot read
        # the clock): accept a date that is real in either century, which
        # matters only for 02/29/00.
        years = (1900 + yy, 2000 + yy)
    else:
        return False
    for year in years:
        try:
            _dt.date(year, month, day)
        except ValueError:
            continue
        return True
    return False


def _is_datetime(value: str) -> bool:
    """CCYYMMDDHHMM, a real date and time."""
    if len(value) != 12 or not value.isascii() or not value.isdigit():
        return False
    try:
        _dt.datetime(int(value[:4]), int(value[4:6]), int(value[6:8]),
                     int(value[8:10]), int(value[10:12]))
    except ValueError:
        return False
    return True


_PRINTABLE = re.compile(r"[\x20-\x7e]*")

# NAM: LAST,FIRST MIDDLE SUFFIX (FIELDS.md); the blank after the comma is
# optional; letters, blanks, hyphens and apostrophes only.
_NAME = re.compile(r"[A-Z][A-Z' -]*, ?[A-Z][A-Z' -]*")

#: Named formats usable as ``format:`` in YAML. ``text`` is any value the
#: grammar allows (printable ASCII, no period).
_FORMATS: Final[Mapping[str, Callable[[str], bool]]] = MappingProxyType({
    "date": _is_date,
    "datetime": _is_datetime,
    "name": lambda v: _NAME.fullmatch(v) is not None,
    "digits": lambda v: v.isascii() and v.isdigit(),
    "alnum": lambda v: v.isascii() and v.isalnum() and v == v.upper(),
    "letters": lambda v: v.isascii() and v.isalpha() and v == v.upper(),
    "text": lambda v: _PRINTABLE.fullmatch(v) is not None,
})

# Default ER codes by tag (PROTOCOL part 4): DOB .05, year fields .10, ATN
# .16; every other bad value is .22.
_DEFAULT_ER: Final[Mapping[str, ErCode]] = MappingProxyType({
    "DOB": ErCode.DOB,
    "LIY": ErCode.YEAR,
    "VYR": ErCode.YEAR,
    "ATN": ErCode.ATN,
})
_FIELD_ERS: Final = frozenset({ErCode.DOB, ErCode.YEAR, ErCode.ATN, ErCode.FORMAT})
_FIELD_ER_INTS: Final = frozenset(int(c) for c in _FIELD_ERS)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One field tag and the checks its value must pass.

    A value passes when its length is within ``min_len``..``max_len``, it
    matches ``pattern`` (whole value), is one of ``enum`` and passes the
    named ``format``, for each of those that is set. A value that fails is
    answered with ``er``.
    """

    tag: str
    description: str
    format: str | None = None
    pattern: re.Pattern[str] | None = None
    enum: frozenset[str] | None = None
    min_len: int = 1
    max_len: int | None = None
    er: ErCode = ErCode.FORMAT

    def ok(self, value: str) -> bool:
        """True when ``value`` is a valid value of this field."""
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            return False
        if self.enum is not None and value not in self.enum:
            return False
        if self.pattern is not None and self.pattern.fullmatch(value) is None:
            return False
        # Without a named format a value is text: printable ASCII.
        return _FORMATS[self.format or "text"](value)

    def check(self, value: str) -> None:
        """Raise the MessageError (``er`` naming the tag) for a bad value."""
        if not self.ok(value):
            raise MessageError.naming(self.er, "INVALID FIELD", (self.tag,))


@dataclass(frozen=True, slots=True)
class DestinationRule:
    """How many destinations a key takes and of which kinds (PROTOCOL part 2).

    ``kinds`` is a subset of :data:`ADDRESS_KINDS`.
    """

    min: int
    max: int
    kinds: frozenset[str]

    def allows(self, kinds: Sequence[str]) -> bool:
        """True when a header with addresses of these kinds (one per address) obeys the rule."""
        return self.min <= len(kinds) <= self.max and all(k in self.kinds for k in kinds)


@dataclass(frozen=True, slots=True)
class HoldRule:
    """Whether a message for a destination not signed on is held (PROTOCOL part 4, 8).

    ``expire_s`` is how long it is held before it is dropped (0 when not held).
    """

    held: bool
    expire_s: int


@dataclass(frozen=True, slots=True)
class DataSet:
    """One data set of a :class:`DataSetRule`: used when the selector is in ``when``."""

    name: str
    when: frozenset[str]
    required: tuple[str, ...]
    optional: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DataSetRule:
    """A choice of field set by the value of a selector tag (YQ's ``RTY``).

    The set whose ``when`` holds the selector's value is the only one whose
    tags may appear, and its required tags must; a selector value in no set
    allows none of them.
    """

    selector: str
    sets: tuple[DataSet, ...]

    @property
    def tags(self) -> frozenset[str]:
        """Every tag of every set."""
        return frozenset(t for s in self.sets for t in (*s.required, *s.optional))


def _missing_error(specs: Mapping[str, FieldSpec], missing: Sequence[str]) -> MessageError:
    """``.05.`` if DOB is missing, else ``.10.`` if a year field is, else ``.14.``."""
    codes = {specs[t].er for t in missing}
    code = next((c for c in (ErCode.DOB, ErCode.YEAR) if c in codes), ErCode.FIELDS_MISSING)
    return MessageError.naming(code, "MISSING", missing)


@dataclass(frozen=True, slots=True)
class KeySchema:
    """Everything the switch knows about one message key.

    ``options`` are alternative sets of tags, one of which must be complete
    (``exclusive``: exactly one may be used, and ``option_extras[i]`` are
    tags allowed only with option ``i``). ``samples`` are full input
    messages that are valid; ``invalid_samples`` are ``(message, ER code)``
    pairs whose header is valid and whose text gives that code.
    """

    key: str
    kind: str
    description: str
    free_text: bool
    fields: Mapping[str, FieldSpec]
    required: tuple[str, ...]
    options: tuple[tuple[str, ...], ...]
    destinations: DestinationRule
    hold: HoldRule
    response: str | None
    samples: tuple[str, ...]
    invalid_samples: tuple[tuple[str, int], ...]
    option_extras: tuple[tuple[str, ...], ...] = ()
    exclusive: bool = False
    data_sets: DataSetRule | None = None

    @property
    def options_text(self) -> str:
        """The key's field options, as an ER names them: ``LIC, LIY, LIT OR VIN``."""
        parts = []
        for i, opt in enumerate(self.options):
            extra = self.option_extras[i] if i < len(self.option_extras) else ()
            text = ", ".join(opt)
            if extra:
                text += " [" + ", ".join(extra) + "]"
            parts.append(text)
        return " OR ".join(parts)

    def validate(self, text: str) -> tuple[tuple[str, str], ...]:
        """Check a message text; return its fields or raise MessageError.

        ``text`` is what follows ``TXT`` with leading blanks and line
        breaks removed. A free-text key's text is not split: ``()``.
        """
        if self.free_text:
            return ()
        fields = parse_fields(text)
        specs = self.fields
        unknown = [tag for tag, _ in fields if tag not in specs]
        if unknown:
            raise MessageError.naming(ErCode.FORMAT, "UNKNOWN FIELD", unknown)
        for tag, value in fields:
            specs[tag].check(value)
        present = {tag for tag, _ in fields}
        missing = [t for t in self.required if t not in present]
        if missing:
            raise _missing_error(specs, missing)
        if self.options:
            self._check_options(present)
        if self.data_sets is not None:
            self._check_data_sets(fields, present)
        return fields

    def _check_options(self, present: set[str]) -> None:
        if self.exclusive:
            touched = [
                i for i, opt in enumerate(self.options)
                if present.intersection(opt) or present.intersection(
                    self.option_extras[i] if i < len(self.option_extras) else ())
            ]
            if len(touched) == 1 and present.issuperset(self.options[touched[0]]):
                return
        elif any(present.issuperset(opt) for opt in self.options):
            return
        raise MessageError(ErCode.FORMAT, f"FIELD OPTIONS: {self.options_text}")

    def _check_data_sets(self, fields: tuple[tuple[str, str], ...], present: set[str]) -> None:
        rule = self.data_sets
        assert rule is not None  # only called when set
        selector = next((v for t, v in fields if t == rule.selector), None)
        chosen = next((s for s in rule.sets if selector in s.when), None)
        allowed = frozenset((*chosen.required, *chosen.optional)) if chosen else frozenset()
        unrelated = [t for t, _ in fields if t in rule.tags and t not in allowed]
        if unrelated:
            raise MessageError.naming(
                ErCode.FORMAT, f"NOT FOR {rule.selector}/{selector}", unrelated)
        if chosen is not None:
            missing = [t for t in chosen.required if t not in present]
            if missing:
                raise _missing_error(self.fields, missing)


# --------------------------------------------------------------------------
# The set of schemas.
# --------------------------------------------------------------------------


class SchemaSet(Mapping[str, KeySchema]):
    """The loaded schemas, a read-only mapping from message key to :class:`KeySchema`.

    Iteration yields the keys in sorted order; ``get(key)`` gives the schema
    or None.
    """

    __slots__ = ("_by_key",)

    def __init__(self, schemas: Mapping[str, KeySchema]) -> None:
        self._by_key: dict[str, KeySchema] = dict(sorted(schemas.items()))

    def __getitem__(self, key: str) -> KeySchema:
        return self._by_key[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_key)

    def __len__(self) -> int:
        return len(self._by_key)

    def __contains__(self, key: object) -> bool:
        return key in self._by_key

    def __repr__(self) -> str:
        return f"SchemaSet({', '.join(self._by_key)})"


# PROTOCOL part 6: a line that reads NO RECORD or NOT ON FILE.
_NO_RECORD = re.compile(r"^[ \t]*(?:NO RECORD|NOT ON FILE)[ \t.]*$", re.MULTILINE)


def is_no_record(text: str) -> bool:
    """True when a response text has a line reading ``NO RECORD`` or ``NOT ON FILE``.

    Blanks around the words and a final period are tolerated; the line must
    say nothing else (``NO RECORD FOUND FOR ...`` is not a no-record line).
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _NO_RECORD.search(text) is not None


# --------------------------------------------------------------------------
# Loading.
# --------------------------------------------------------------------------

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
    if fmt is not None and (not isinstance(fmt, str) or fmt not in _FORMATS):
        p.add(f"{path}.format", f"unknown format {fmt!r} (known: {', '.join(sorted(_FORMATS))})")
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
    er = _DEFAULT_ER.get(tag, ErCode.FORMAT)
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
        if not _TAG.fullmatch(tag):
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
        if not _TAG.fullmatch(tag):
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
