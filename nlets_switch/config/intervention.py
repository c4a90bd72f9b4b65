"""The ``intervention:`` section: rules that hold messages for an operator's review.

Declared apart from :mod:`nlets_switch.config.load` so the core's rule type
(:class:`~nlets_switch.core.controls.ReviewRule`) is built in one place.
docs/operators.md ("The intervention queue") shows how they are used.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from nlets_switch.config.model import Check, Problem, Section
from nlets_switch.core.controls import ReviewRule


def _regex(v: Any) -> bool:
    if not isinstance(v, str) or not v:
        return False
    try:
        re.compile(v)
    except re.error:
        return False
    return True


def _word(v: Any) -> bool:
    return isinstance(v, str) and bool(v) and v == v.strip()


class RuleSection(Section):
    """``intervention.rules[i]``: every criterion given must match."""

    _expected = "expected a mapping (name, key, origin, destination, text)"
    _null_ok = False

    name: Annotated[str, Check(_word, "required")] = Field(
        description="shown beside each message it holds (required, unique)")
    key: Annotated[str, Check(_word, "expected a message key")] | None = Field(
        None, description="the message key (AM, DQ, ...)")
    origin: Annotated[str, Check(_word, "expected an ORI")] | None = Field(
        None, description="the sender's ORI")
    destination: Annotated[str, Check(_word, "expected an address")] | None = Field(
        None, description="a destination as addressed, or the ORI receiving it")
    text: Annotated[str, Check(_regex, "expected a regular expression")] | None = Field(
        None, description="a regular expression searched in the message text "
        "(case-insensitive; only tokens with see_text see why it matched)")

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        if not any(data.get(k) for k in ("key", "origin", "destination", "text")):
            return data, [((), "needs at least one of key, origin, destination, text")]
        return data, []

    def rule(self) -> ReviewRule:
        """The core's value of this rule."""
        return ReviewRule(self.name, self.key.upper() if self.key else None,
                          self.origin.upper() if self.origin else None,
                          self.destination.upper() if self.destination else None,
                          re.compile(self.text, re.IGNORECASE) if self.text else None)


class InterventionSection(Section):
    """The ``intervention:`` section (absent: nothing is held for review)."""

    _expected = "expected a mapping (rules)"

    rules: Annotated[tuple[RuleSection, ...], Check(
        lambda v: isinstance(v, list | tuple), "expected a list of rules")] = Field(
        (), description="messages matching a rule wait for an operator")

    @classmethod
    def _reshape(cls, data: dict[str, Any],
                 context: Any) -> tuple[dict[str, Any], list[Problem]]:
        found: list[Problem] = []
        names: set[str] = set()
        rules = data.get("rules")
        for i, r in enumerate(rules if isinstance(rules, list) else ()):
            name = r.get("name") if isinstance(r, dict) else None
            if isinstance(name, str) and name:
                if name in names:
                    found.append((("rules", i, "name"), f"{name!r} appears twice"))
                names.add(name)
        return data, found

    def review_rules(self) -> tuple[ReviewRule, ...]:
        """The rules, as the router applies them."""
        return tuple(r.rule() for r in self.rules)
