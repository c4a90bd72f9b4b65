"""The route step, pure: from a parsed message to what becomes of it.

The router checks what needs the directory and the schemas (origin allowed
on the link, known key, the key's destination rules, the fields) and turns
each destination into a :class:`Route` or an ``SM`` status (PROTOCOL part 4).
It reads no clock and does no I/O; whether a link is signed on is asked
through ``online``. A destination on another switch node would be one more
kind of :class:`~nlets_switch.core.directory.Target` here (scale-out is later).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nlets_switch.core.controls import Controls
from nlets_switch.core.directory import Directory, Target
from nlets_switch.core.entries import HoldOverride
from nlets_switch.core.foreign import BY_ORI
from nlets_switch.errors import ErCode, MessageError, SmCode
from nlets_switch.wire.message import REGION, SWITCH_ORI, Message, address_kind
from nlets_switch.wire.schema import HoldRule, KeySchema, SchemaSet

if TYPE_CHECKING:
    from nlets_switch.config import HoldOverride

#: Keys only the switch itself sends (PROTOCOL part 4).
SWITCH_KEYS = frozenset({"ER", "SM"})

#: Keys only law enforcement ORIs send and receive (docs/protocol.md part 5).
LAW_ENFORCEMENT_KEYS = frozenset({"AML"})

#: How long an undelivered message waits when its key's rule names no time.
DEFAULT_EXPIRE_S = 86_400

#: Shapes (link, origin, key, destinations) remembered; past it the memory starts again,
#: so a link that makes up destinations cannot grow it.
MAX_SHAPES = 4096


@dataclass(frozen=True, slots=True)
class Route:
    """One delivery to make; ``held`` when its link is not signed on (SM .02);
    ``review`` names the intervention rule that holds it for an operator."""

    target: Target
    held: bool
    review: str | None = None


@dataclass(frozen=True, slots=True)
class Status:
    """An SM to send back for one destination."""

    code: SmCode
    addressed: str


@dataclass(frozen=True, slots=True)
class Plan:
    """What the router decided for one accepted message."""

    schema: KeySchema
    fields: tuple[tuple[str, str], ...]
    routes: tuple[Route, ...]
    statuses: tuple[Status, ...]
    hold: HoldRule


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the checks of a message's header (not its text) decided, worked out
    once per (link, origin, key, destinations) while the directory stays the same."""

    schema: KeySchema
    targets: tuple[Target, ...]
    #: (foreign code, most characters of text) of each target that has a limit.
    limits: tuple[tuple[str, int], ...]
    #: Each target once: itself, whether its entry takes the key, its routes.
    unique: tuple[tuple[Target, bool, Route, Route], ...]


class Router:
    """Routes messages using a directory, the schemas and the hold rules.

    The checks of a header are the same for every message of the same shape
    (link, origin, key, destinations): they are worked out once and kept
    (:data:`MAX_SHAPES`, forgotten when the directory changes); the text's
    checks, the remove status, the review rules and whether a link is signed
    on are looked at for every message.
    """

    def __init__(self, directory: Directory, schemas: SchemaSet,
                 hold: Mapping[str, HoldOverride] | None = None,
                 controls: Controls | None = None) -> None:
        self.directory = directory
        #: Remove status and review rules (core/controls.py), shared with the engine.
        self.controls = controls if controls is not None else Controls()
        self.schemas = schemas
        self._hold: dict[str, HoldRule] = {}
        overrides = hold or {}
        for ks in schemas.values():
            o = overrides.get(ks.key)
            rule = ks.hold
            if o is not None:
                rule = HoldRule(
                    held=o.held if o.held is not None else rule.held,
                    expire_s=o.expire_s if o.expire_s is not None else rule.expire_s,
                )
            if rule.expire_s <= 0:
                # A key that is not held still waits a while for a link that
                # dropped after it was routed (at-least-once, part 1).
                rule = HoldRule(held=rule.held, expire_s=DEFAULT_EXPIRE_S)
            self._hold[ks.key] = rule
        self._shapes: dict[tuple[str, str, str, tuple[str, ...]], _Shape] = {}
        self._shapes_of = directory.version

    def hold_rule(self, key: str) -> HoldRule:
        """The hold rule of ``key`` (schema default, overridden by configuration)."""
        return self._hold.get(key) or HoldRule(held=False, expire_s=DEFAULT_EXPIRE_S)

    def check(self, msg: Message, link_ori: str) -> tuple[KeySchema, tuple[tuple[str, str], ...],
                                                           list[Target]]:
        """Every check of a message against directory and schemas; raises MessageError."""
        shape = self._shape(msg, link_ori)
        self._check_text(msg, shape)
        return shape.schema, shape.schema.validate(msg.body), list(shape.targets)

    def _check_text(self, msg: Message, shape: _Shape) -> None:
        """The checks after the header's, in their order: text length, law enforcement."""
        if shape.limits:
            n = len(msg.body)
            for code, most in shape.limits:
                if n > most:
                    raise MessageError(ErCode.FORMAT, f"MESSAGES TO {code} TAKE AT MOST "
                                                      f"{most} CHARACTERS OF TEXT")
        if msg.key in LAW_ENFORCEMENT_KEYS:
            self._check_law_enforcement(msg)

    def _shape(self, msg: Message, link_ori: str) -> _Shape:
        shapes = self._shapes
        if self._shapes_of != self.directory.version:
            shapes.clear()
            self._shapes_of = self.directory.version
        k = (link_ori, msg.origin, msg.key, msg.destinations)
        shape = shapes.get(k)
        if shape is None:
            shape = self._work_out(msg, link_ori)  # raises for a bad header: not kept
            if len(shapes) >= MAX_SHAPES:
                shapes.clear()
            shapes[k] = shape
        return shape

    def _work_out(self, msg: Message, link_ori: str) -> _Shape:
        """The header's checks (origin, key, destinations) and its targets."""
        if not self.directory.may_speak(link_ori, msg.origin):
            raise MessageError(ErCode.HEADER, f"ORIGIN {msg.origin} NOT ALLOWED ON THIS LINK")
        schema = self.schemas.get(msg.key)
        if schema is None:
            raise MessageError(ErCode.HEADER, f"UNKNOWN MESSAGE KEY {msg.key}")
        if msg.key in SWITCH_KEYS and link_ori != SWITCH_ORI:
            # PROTOCOL part 4: only the switch, NL0000000, sends ER and SM.
            raise MessageError(ErCode.HEADER, f"ONLY {SWITCH_ORI} SENDS {msg.key}")
        rule = schema.destinations
        n = len(msg.destinations)
        if not rule.min <= n <= rule.max:
            want = f"{rule.min}" if rule.min == rule.max else f"{rule.min} TO {rule.max}"
            raise MessageError(ErCode.HEADER, f"{msg.key} TAKES {want} DESTINATION(S)")
        kinds = [address_kind(d) for d in msg.destinations]
        if REGION in rule.kinds:
            # Any two-letter address of a regional inquiry names a region; one
            # that is no region is unknown (.19.), not the wrong kind.
            kinds = [REGION if k == "state" else k for k in kinds]
        wrong = [d for d, k in zip(msg.destinations, kinds, strict=True) if k not in rule.kinds]
        if wrong:
            raise MessageError.naming(ErCode.KEY_NOT_ALLOWED, f"{msg.key} NOT ALLOWED TO", wrong)
        targets: list[Target] = []
        unknown: list[str] = []
        for d, k in zip(msg.destinations, kinds, strict=True):
            t = self.directory.resolve(d, k or "")
            if t is None:
                unknown.append(d)
            else:
                targets.append(t)
        if unknown:
            raise MessageError.naming(ErCode.DESTINATION, "UNKNOWN", unknown)
        limits: list[tuple[str, int]] = []
        for t in targets:
            fo = BY_ORI.get(t.link)
            if fo is not None and fo.max_text is not None:
                limits.append((fo.code, fo.max_text))
        unique: list[tuple[Target, bool, Route, Route]] = []
        seen: set[tuple[str, str]] = set()
        for t in targets:
            if (t.link, t.receiver) not in seen:
                seen.add((t.link, t.receiver))
                unique.append((t, t.entry is None or t.entry.takes(msg.key),
                               Route(t, held=False), Route(t, held=True)))
        return _Shape(schema, tuple(targets), tuple(limits), tuple(unique))

    def _check_law_enforcement(self, msg: Message) -> None:
        """``AML``: from and to law enforcement ORIs only (ER ``.02.``)."""
        d = self.directory
        if not d.is_law_enforcement(msg.origin):
            raise MessageError(ErCode.KEY_NOT_ALLOWED,
                               f"{msg.key} ONLY FROM LAW ENFORCEMENT ORIS")
        wrong = [a for a in msg.destinations if len(a) == 9 and not d.is_law_enforcement(a)]
        if wrong:
            raise MessageError.naming(ErCode.KEY_NOT_ALLOWED,
                                      f"{msg.key} NOT ALLOWED TO (NOT LAW ENFORCEMENT)", wrong)

    def route(self, msg: Message, link_ori: str, online: Callable[[str], bool]) -> Plan:
        """Check ``msg`` and decide each destination (PROTOCOL parts 2 to 4)."""
        shape = self._shape(msg, link_ori)
        self._check_text(msg, shape)
        schema = shape.schema
        fields = schema.validate(msg.body)
        hold = self.hold_rule(msg.key)
        routes: list[Route] = []
        statuses: list[Status] = []
        controls = self.controls
        for t, takes, now_route, held_route in shape.unique:
            if not takes:
                statuses.append(Status(SmCode.NOT_TAKEN, t.addressed))
            elif controls.removed and controls.is_removed(t, msg.key):
                # Remove status (an operator's decision): not forwarded (part 4).
                statuses.append(Status(SmCode.DROPPED, t.addressed))
            elif controls.rules and (rule := controls.review(msg.key, msg.origin, t,
                                                               msg.body)) is not None:
                routes.append(Route(t, held=False, review=rule))
            elif online(t.link):
                routes.append(now_route)
            elif hold.held:
                routes.append(held_route)
                statuses.append(Status(SmCode.HELD, t.addressed))
            else:
                statuses.append(Status(SmCode.DROPPED, t.addressed))
        return Plan(schema, fields, tuple(routes), tuple(statuses), hold)
