"""The building blocks of configuration section models (pydantic v2).

Every section of the YAML file is a :class:`Section`: a frozen pydantic model
whose defaults are written once, in its fields. Read from a file (through
:func:`validate` or a parent section), a section

* reports a key it does not know in its own words (``unknown limit (known:
  ...)``) and a value that is not a mapping the same way (``expected a
  mapping (lockout_after, lockout_minutes)``);
* lets every field be checked, so that all problems come back at once;
* words each problem as the switch always has (``must be between 1 and 10000,
  got 0``), whether it came from a rule here (:class:`Between`,
  :class:`Check`), from a validator raising ``ValueError`` with the text, or
  from pydantic itself.

:func:`problems` turns a :class:`pydantic.ValidationError` into the
``key.path[3].name: message`` lines that :class:`~nlets_switch.errors.ConfigError`
carries. Adapters declare their own section as a :class:`Section` too.

Models are built lazily (``defer_build``): importing a section module costs no
schema building, and pulls in nothing but pydantic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, NoReturn, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_validator
from pydantic_core import ErrorDetails, InitErrorDetails, PydanticCustomError, core_schema

from nlets_switch.errors import ConfigError

#: A key path as pydantic gives it: ``("links", 3, "ori")``.
Loc = tuple[str | int, ...]
#: One problem: where, and what.
Problem = tuple[Loc, str]

#: The error type of every problem worded here (pydantic's own types are
#: worded by :func:`wording`).
ERROR_TYPE: Final = "config"
#: Validation context key: the data comes from a configuration file, so the
#: file's shape rules (unknown keys, mappings) apply. Python code that builds
#: a model from field values (``Limits(window=4)``) skips them.
FROM_FILE: Final = "nlets_switch.config"
FILE_CONTEXT: Final[Mapping[str, Any]] = {FROM_FILE: True}

M = TypeVar("M", bound=BaseModel)


def fail(*items: Problem) -> NoReturn:
    """Raise a ValidationError holding ``items``; pydantic prefixes the location
    of the field being validated, so a validator names paths relative to itself."""
    raise ValidationError.from_exception_data("configuration", [
        InitErrorDetails(type=PydanticCustomError(ERROR_TYPE, msg), loc=loc, input=None)
        for loc, msg in items])


def key_path(loc: Iterable[str | int]) -> str:
    """``("links", 3, "ori")`` -> ``links[3].ori``; the empty path is ``(top)``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top)"


# What pydantic's own errors say, in the switch's words. A rule of a section
# words its problems itself; these cover the shapes the rules do not check.
_WORDING: Final[Mapping[str, str]] = {
    "missing": "required",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "int_type": "expected a whole number, got {got}",
    "int_parsing": "expected a whole number, got {got}",
    "int_from_float": "expected a whole number, got {got}",
    "float_type": "expected a number, got {got}",
    "float_parsing": "expected a number, got {got}",
    "string_type": "expected a string, got {got}",
    "path_type": "expected a path, got {got}",
    "list_type": "expected a list, got {got}",
    "tuple_type": "expected a list, got {got}",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "literal_error": "expected {expected}, got {got}",
    "extra_forbidden": "unknown key",
}


def wording(err: ErrorDetails, required: Mapping[str, str] | None = None) -> str:
    """The message of one pydantic error, as the switch words it.

    ``required`` words a missing key of the model being validated.
    """
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == ERROR_TYPE:
        return err["msg"]
    if kind in ("value_error", "assertion_error") and "error" in ctx:
        return str(ctx["error"])
    if kind == "missing" and required and len(err["loc"]) == 1:
        text = required.get(str(err["loc"][0]))
        if text:
            return text
    template = _WORDING.get(kind)
    if template is None:
        return err["msg"]
    return template.format(got=repr(err.get("input")), expected=ctx.get("expected", "?"))


def problems_in(e: ValidationError, required: Mapping[str, str] | None = None) -> list[Problem]:
    """The problems of a ValidationError, each with its location, worded."""
    return [(tuple(err["loc"]), wording(err, required)) for err in e.errors()]


def problems(e: ValidationError, prefix: Loc = ()) -> list[str]:
    """``key.path: message`` for every problem of ``e`` (paths under ``prefix``)."""
    return [f"{key_path(prefix + loc)}: {msg}" for loc, msg in problems_in(e)]


def validate(model: type[M], data: Any, source: str = "", prefix: Loc = ()) -> M:
    """Read ``data`` (from a file) into ``model``; raise ConfigError listing every problem."""
    try:
        return model.model_validate(data, context=FILE_CONTEXT)
    except ValidationError as e:
        raise ConfigError(problems(e, prefix), source) from None


def problems_of(model: type[BaseModel], data: Any, prefix: Loc = ()) -> list[str]:
    """Every problem of ``data`` as ``model`` (empty when it is valid).

    This is how an adapter with a section model answers ``check_config``.
    """
    try:
        model.model_validate(data, context=FILE_CONTEXT)
    except ValidationError as e:
        return problems(e, prefix)
    return []


def from_file(info: ValidationInfo) -> bool:
    """Whether a validator is reading a configuration file (not Python values)."""
    ctx = info.context
    return isinstance(ctx, Mapping) and bool(ctx.get(FROM_FILE))


# --------------------------------------------------------------------------
# Rules for fields, in the switch's words
# --------------------------------------------------------------------------


def _fill(message: str, value: Any) -> str:
    # Not str.format: messages may hold braces of their own ("{held, expire}").
    return message.replace("{got}", repr(value)).replace("{value}", str(value))


@dataclass(frozen=True, slots=True)
class Between:
    """A number from ``lo`` to ``hi`` (``above``: strictly above ``lo``); ``whole``
    for whole numbers. ``message`` replaces the usual wording (``{got}`` is the value).

    Used as ``Annotated[int, Between(1, 10_000, whole=True)]``; the reference
    table of docs/configuration.md shows the range.
    """

    lo: float = -math.inf
    hi: float = math.inf
    whole: bool = False
    message: str | None = None
    above: bool = False

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: Callable[[Any], core_schema.CoreSchema],
                                     ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def check(self, value: Any) -> Any:
        """The value if it is in range; else ValueError in the switch's words."""
        ok_type = isinstance(value, int) if self.whole else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type:
            kind = "a whole number" if self.whole else "a number"
            raise ValueError(self._say(value, f"expected {kind}, got {value!r}"))
        low_ok = value > self.lo if self.above else value >= self.lo
        if not low_ok or value > self.hi:
            raise ValueError(self._say(value, f"must be between {self.lo:g} and {self.hi:g}, "
                                              f"got {value}"))
        return value

    def _say(self, value: Any, usual: str) -> str:
        return _fill(self.message, value) if self.message else usual


@dataclass(frozen=True, slots=True)
class Check:
    """A value for which ``test`` holds; else ``message`` (``{got}``: its repr,
    ``{value}``: the value). Runs before pydantic's own type check.

    ``describe`` says what is allowed, for the reference table.
    """

    test: Callable[[Any], bool]
    message: str
    describe: str = ""

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: Callable[[Any], core_schema.CoreSchema],
                                     ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def check(self, value: Any) -> Any:
        """The value if ``test`` holds; else ValueError with the message."""
        if not self.test(value):
            raise ValueError(_fill(self.message, value))
        return value


def one_of(values: Sequence[str], message: str) -> Check:
    """A value among ``values`` (for a ``Literal`` field), else ``message``."""
    return Check(lambda v: isinstance(v, str) and v in values, message, ", ".join(values))


#: ``true`` or ``false`` and nothing else (YAML's ``yes`` is a string here).
FLAG: Final = Check(lambda v: isinstance(v, bool), "expected true or false", "true, false")


def as_text(value: Any) -> Any:
    """Anything but a mapping or a list reads as text (``id: 7`` is ``"7"``)."""
    return value if isinstance(value, dict | list) else str(value)


# --------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------


class Section(BaseModel):
    """A section of the configuration file: frozen, defaults in its fields.

    Class settings a section may change (all in the switch's words):
    ``_expected`` when the value is not a mapping; ``_unknown`` for a key it
    does not know (``{known}``: its keys); ``_required`` per required key;
    ``_null_ok`` whether ``section:`` with nothing is the defaults (true for
    sections, false for items of a list). :meth:`_reshape` adapts the file's
    form to the fields (e.g. ``address`` into ``host`` and ``port``).
    """

    model_config = ConfigDict(frozen=True, defer_build=True, extra="ignore")

    _expected: ClassVar[str] = "expected a mapping"
    _unknown: ClassVar[str] = "unknown key (known: {known})"
    _required: ClassVar[Mapping[str, str]] = {}
    _null_ok: ClassVar[bool] = True

    @classmethod
    def _keys(cls) -> tuple[str, ...] | None:
        """The keys the file may use (None: any key, the section sorts them out)."""
        return tuple(f.alias or name for name, f in cls.model_fields.items())

    @classmethod
    def _coerce(cls, data: Any) -> Any:
        """A short form of the section, made a mapping (before anything is checked)."""
        return data

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        """The file's keys made the fields' (with problems found on the way)."""
        return data, []

    @model_validator(mode="wrap")
    @classmethod
    def _read_file(cls, data: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> Any:
        if not from_file(info) or isinstance(data, cls):
            return handler(data)
        if data is None and cls._null_ok:
            data = {}
        data = cls._coerce(data)
        if not isinstance(data, dict):
            fail(((), cls._expected))
        keys = cls._keys()
        found: list[Problem] = []
        if keys is not None:
            unknown = cls._unknown.replace("{known}", ", ".join(keys))
            found += [((str(k),), unknown) for k in data if k not in keys]
            data = {k: v for k, v in data.items() if k in keys}
        data, more = cls._reshape(data, info.context)
        found += more
        try:
            out = handler(data)
        except ValidationError as e:
            found += problems_in(e, cls._required)
        if found:
            fail(*found)
        return out
