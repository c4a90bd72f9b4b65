"""The reference table of every configuration key, made from the models.

``python -m nlets_switch.config.reference`` prints it; docs/configuration.md
carries it between the ``reference`` markers, and a test keeps the two equal,
so that the documented defaults cannot drift from the ones the code uses.
The bundled adapters' sections (``services.leis``, ``services.states``) are
included; this module imports them, so it is for tools and tests, not for
the switch.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from nlets_switch.config.load import ConfigFile
from nlets_switch.config.model import Between, Check, Section
from nlets_switch.services.settings import AdapterSection, ServicesSettings

BEGIN: Final = "<!-- reference: begin (python -m nlets_switch.config.reference) -->"
END: Final = "<!-- reference: end -->"

#: Key path, default, what is allowed, what it means.
Row = tuple[str, str, str, str]

# Keys of the file that are not fields (the listener's address becomes host and port):
# default, what is allowed, what it means.
_FILE_ONLY: Final[dict[str, tuple[str, str, str]]] = {
    "address": ("required", "HOST:PORT", "where to accept links (port 0: any free port)"),
}
# Lists of sections shown as one row (their items are documented elsewhere).
_FLAT: Final = frozenset({"switch.listen"})


def _strip(tp: Any) -> Any:
    """The type under ``Annotated[...]`` and ``... | None``."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _metadata(f: FieldInfo) -> list[Any]:
    found = list(f.metadata)
    tp = f.annotation
    while True:  # metadata inside ``Annotated[...] | None``
        if typing.get_origin(tp) is typing.Annotated:
            found += list(getattr(tp, "__metadata__", ()))
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return found
            tp = args[0]
        else:
            return found


def _section(tp: Any) -> type[Section] | None:
    tp = _strip(tp)
    return tp if isinstance(tp, type) and issubclass(tp, Section) else None


def _number(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _show(value: Any) -> str:
    if value is None:
        return "(absent)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, BaseModel) and hasattr(value, "address"):
        return str(value.address)
    if isinstance(value, tuple | list):
        return ", ".join(_show(v) for v in value) if value else "[]"
    return str(value)


def _default(f: FieldInfo) -> str:
    if f.default_factory is not None:
        return _show(f.default_factory())  # type: ignore[call-arg]
    if f.default is PydanticUndefined:
        return "required"
    return _show(f.default)


def _allowed(f: FieldInfo) -> str:
    extra = f.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("allowed"), str):
        return str(extra["allowed"])
    for m in _metadata(f):
        if isinstance(m, Between):
            return _range(m)
        if isinstance(m, Check) and m.describe:
            return m.describe
    tp = _strip(f.annotation)
    if typing.get_origin(tp) is typing.Literal:
        return ", ".join(str(a) for a in typing.get_args(tp))
    if typing.get_origin(tp) is tuple:
        return "list"
    names = {str: "text", bool: "true, false", int: "whole number", float: "number",
             Path: "a path"}
    return names.get(tp, str(tp))


def _range(b: Between) -> str:
    kind = "whole number" if b.whole else "number"
    if math.isinf(b.lo) and math.isinf(b.hi):
        return kind
    if math.isinf(b.hi):
        return f"{kind} {'>' if b.above else '>='} {_number(b.lo)}"
    return f"{kind}, {_number(b.lo)} to {_number(b.hi)}"


def rows(model: type[Section], prefix: str) -> Iterator[Row]:
    """One row per key of ``model`` under ``prefix`` (nested sections below their key)."""
    fields = {f.alias or name: f for name, f in model.model_fields.items()}
    for key in model._keys() or tuple(fields):
        path = f"{prefix}.{key}" if prefix else key
        if key in _FILE_ONLY:
            yield (path, *_FILE_ONLY[key])
        elif key in fields:
            yield from field_rows(path, fields[key])


def field_rows(path: str, f: FieldInfo) -> Iterator[Row]:
    """The row of one field, or the rows of the section (or list or map of them) it holds."""
    tp = _strip(f.annotation)
    inner = _section(tp)
    if inner is not None:
        yield from rows(inner, path)
        return
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    item = _section(args[0]) if origin is tuple else None
    value = _section(args[1]) if origin is dict else None
    if item is not None and path not in _FLAT:
        yield (path, _default(f), "list", f.description or "")
        yield from rows(item, f"{path}[]")
    elif value is not None:
        yield from rows(value, f"{path}.<KEY>")
    else:
        yield (path, _default(f), _allowed(f), f.description or "")


def _services_rows() -> Iterator[Row]:
    from nlets_switch.services import adapter as ad

    yield from field_rows("services.nl", ServicesSettings.model_fields["nl"])
    for ep in ad.entry_points():
        dist = getattr(ep, "dist", None)
        if dist is None or dist.metadata["Name"] != "nlets-switch":
            continue  # only the bundled adapters are documented here
        loaded = ad.load_entry_point(ep)
        path = f"services.{loaded.name}"
        yield (f"{path}.enabled", _default(AdapterSection.model_fields["enabled"]),
               "true, false", f"run the {loaded.name} adapter")
        model = getattr(loaded.adapter, "settings_model", None)
        if isinstance(model, type) and issubclass(model, Section):
            yield from rows(model, path)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def reference() -> str:
    """The markdown tables of every key, section by section."""
    out: list[str] = []
    for name, f in ConfigFile.model_fields.items():
        inner = _section(f.annotation)
        intro = [(inner.__doc__ or "").strip().splitlines()[0]] if inner is not None else []
        if f.description:
            intro.append(f.description[0].upper() + f.description[1:] + ".")
        out += [f"### `{name}`", ""]
        if intro:
            out += [" ".join(intro).replace("``", "`"), ""]
        out += ["| Key | Default | Allowed | Meaning |", "|---|---|---|---|"]
        found = _services_rows() if name == "services" else field_rows(name, f)
        out += ["| " + " | ".join([f"`{p}`", *(_cell(c) for c in (d, a, m))]) + " |"
                for p, d, a, m in found]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def main() -> None:
    """Print the reference (for pasting between the markers of docs/configuration.md)."""
    print(BEGIN)
    print()
    print(reference())
    print(END)


if __name__ == "__main__":
    main()
