"""What an operator has decided about routing, pure: remove status and review rules.

*Remove status* (Nlets' own word): an ORI taken out of service by an
operator, for some keys or all of them. A message for it gets SM ``.04.``
(USER OUT OF SERVICE FOR MSG TYPE, NLETS WILL NOT FORWARD; PROTOCOL part 4)
until the status is lifted. The table is kept in the store
(:mod:`nlets_switch.store.console`) and handed to the engine at start.

*Review rules* (``intervention.rules`` in the configuration): a message that
matches one (by key, origin, destination, or a pattern of its text) is taken
into custody as usual but its deliveries wait in the intervention queue
(delivery state ``review``) until an operator releases, edits, reroutes or
purges them (:mod:`nlets_switch.core.console`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from nlets_switch.core.directory import Target

#: Keys never held for review nor refused by remove status: the switch's own
#: answers must reach their senders (PROTOCOL part 4).
EXEMPT_KEYS = frozenset({"ER", "SM"})


@dataclass(frozen=True, slots=True)
class ReviewRule:
    """One ``intervention.rules[i]``: every field given must match (None: any)."""

    name: str
    key: str | None = None
    origin: str | None = None
    destination: str | None = None
    text: re.Pattern[str] | None = None

    def matches(self, key: str, origin: str, target: Target, body: str) -> bool:
        """Whether a message of ``key`` from ``origin`` for ``target`` is held by this rule."""
        if self.key is not None and key != self.key:
            return False
        if self.origin is not None and origin != self.origin:
            return False
        if self.destination is not None and self.destination not in (
                target.addressed, target.receiver, target.link):
            return False
        return self.text is None or self.text.search(body) is not None


@dataclass(slots=True)
class Controls:
    """The operator's decisions the router consults for every destination."""

    rules: tuple[ReviewRule, ...] = ()
    #: ORI -> the keys it is removed for (None: every key).
    removed: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def is_removed(self, target: Target, key: str) -> bool:
        """Whether ``target`` is on remove status for ``key``."""
        return self.removed_for((target.receiver, target.link), key)

    def removed_for(self, oris: Iterable[str], key: str) -> bool:
        """Whether any of ``oris`` is on remove status for ``key``."""
        if not self.removed or key in EXEMPT_KEYS:
            return False
        for ori in oris:
            if ori in self.removed:
                keys = self.removed[ori]
                if keys is None or key in keys:
                    return True
        return False

    def review(self, key: str, origin: str, target: Target, body: str) -> str | None:
        """The name of the first rule that holds this delivery for review, or None."""
        if key in EXEMPT_KEYS:
            return None
        for rule in self.rules:
            if rule.matches(key, origin, target, body):
                return rule.name
        return None

    def set_removed(self, ori: str, keys: Iterable[str] | None) -> None:
        """Put ``ori`` on remove status for ``keys`` (None: every key)."""
        self.removed[ori] = None if keys is None else frozenset(keys)

    def lift(self, ori: str) -> bool:
        """Lift the remove status of ``ori``; False when it had none."""
        return self.removed.pop(ori, False) is not False

    def load_removed(self, rows: Mapping[str, frozenset[str] | None]) -> None:
        """Replace the table (as the store kept it)."""
        self.removed = dict(rows)
