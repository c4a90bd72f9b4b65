"""What the switch knows about each message key, and the validation of a text (pure).

:class:`KeySchema` holds one key's fields, required tags, search options,
data sets, destination and hold rules; :meth:`KeySchema.validate` checks a
message text in the order :mod:`nlets_switch.wire.schema` documents.
:class:`SchemaSet` maps keys to schemas. Loading the YAML that describes
them is :mod:`nlets_switch.wire.schema_load`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from nlets_switch.errors import ErCode, MessageError
from nlets_switch.wire.fields import FieldSpec, parse_fields

__all__ = [
    "ADDRESS_KINDS",
    "KINDS",
    "DataSet",
    "DataSetRule",
    "DestinationRule",
    "HoldRule",
    "KeySchema",
    "SchemaSet",
]

#: Kinds of message key.
KINDS: Final = frozenset({"inquiry", "response", "admin"})
#: Kinds of destination address (PROTOCOL part 2): a 2-letter state, a
#: 9-character ORI, ``AX``, ``NL`` and a help-file address ``SSFFFFUNC``.
ADDRESS_KINDS: Final = frozenset({"state", "ori", "ax", "nl", "help", "region", "orion"})


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

