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


class Router:
    """Routes messages using a directory, the schemas and the hold rules."""

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

    def hold_rule(self, key: str) -> HoldRule:
        """The hold rule of ``key`` (schema default, overridden by configuration)."""
        return self._hold.get(key) or HoldRule(held=False, expire_s=DEFAULT_EXPIRE_S)

    def check(self, msg: Message, link_ori: str) -> tuple[KeySchema, tuple[tuple[str, str], ...],
                                                           list[Target]]:
        """Every check of a message against directory and schemas; raises MessageError."""
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
        for t in targets:
            fo = BY_ORI.get(t.link)
            if fo is not None and fo.max_text is not None and len(msg.body) > fo.max_text:
                raise MessageError(ErCode.FORMAT, f"MESSAGES TO {fo.code} TAKE AT MOST "
                                                  f"{fo.max_text} CHARACTERS OF TEXT")
        if msg.key in LAW_ENFORCEMENT_KEYS:
            self._check_law_enforcement(msg)
        fields = schema.validate(msg.body)
        return schema, fields, targets

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
        schema, fields, targets = self.check(msg, link_ori)
        hold = self.hold_rule(msg.key)
        routes: list[Route] = []
        statuses: list[Status] = []
        seen: set[tuple[str, str]] = set()
        controls = self.controls
        for t in targets:
            if (t.link, t.receiver) in seen:
                continue
            seen.add((t.link, t.receiver))
            if t.entry is not None and not t.entry.takes(msg.key):
                statuses.append(Status(SmCode.NOT_TAKEN, t.addressed))
            elif controls.is_removed(t, msg.key):
                # Remove status (an operator's decision): not forwarded (part 4).
                statuses.append(Status(SmCode.DROPPED, t.addressed))
            elif controls.rules and (rule := controls.review(msg.key, msg.origin, t,
                                                               msg.body)) is not None:
                routes.append(Route(t, held=False, review=rule))
            elif online(t.link):
                routes.append(Route(t, held=False))
            elif hold.held:
                routes.append(Route(t, held=True))
                statuses.append(Status(SmCode.HELD, t.addressed))
            else:
                statuses.append(Status(SmCode.DROPPED, t.addressed))
        return Plan(schema, fields, tuple(routes), tuple(statuses), hold)
