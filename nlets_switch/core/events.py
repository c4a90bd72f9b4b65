"""What the switch tells its operators: typed events, and the audit sink's port.

Every event is a frozen dataclass; :meth:`SwitchEvent.to_dict` gives the
JSON-able mapping that MQTT, the dashboard's event stream and the API have
always carried (``{"event": "routed", "msg_id": ..., "ts": ...}``), so what an
operator sees does not depend on this module's shape. Events never carry
message text: it is criminal-justice information and lives only in the journal.

``ts`` is the wall-clock time (seconds since the epoch) of the engine call
that produced the event.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "SECURITY_KINDS",
    "Audit",
    "AuditSink",
    "Delivered",
    "Expired",
    "JournalFault",
    "LinkChanged",
    "MemoryAudit",
    "Refused",
    "RefusedByReceiver",
    "Rejected",
    "Routed",
    "Security",
    "SwitchEvent",
]


class SwitchEvent:
    """Base of every event; :meth:`to_dict` says which it is (``"event"``)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The event as operators see it (MQTT, server-sent events, the API)."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class LinkChanged(SwitchEvent):
    """An ORI's endpoint came up or went away (``kind``: ``tcp`` or ``local``)."""

    ori: str
    state: str
    kind: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "link", ...}``."""
        return {"event": "link", "ori": self.ori, "state": self.state, "kind": self.kind,
                "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Routed(SwitchEvent):
    """A message was accepted: ``outcome`` is ``routed``, ``held`` or ``status``.

    ``to`` names the receivers it goes to; ``sm`` the (code, destination) of
    every SM it caused (PROTOCOL part 4).
    """

    outcome: str
    msg_id: int
    key: str
    ori: str
    control: str | None
    to: tuple[str, ...]
    sm: tuple[tuple[int, str], ...]
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "routed" | "held" | "status", ...}``."""
        return {"event": self.outcome, "msg_id": self.msg_id, "key": self.key,
                "ori": self.ori, "control": self.control, "to": list(self.to),
                "sm": [[c, a] for c, a in self.sm], "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Rejected(SwitchEvent):
    """A message got an ER; ``key`` is ``?`` for a key the switch does not know."""

    msg_id: int
    key: str
    ori: str
    code: int
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "rejected", ...}``."""
        return {"event": "rejected", "msg_id": self.msg_id, "key": self.key, "ori": self.ori,
                "code": self.code, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Refused(SwitchEvent):
    """A frame refused at link level (bad characters, oversize): ``N`` and nothing kept."""

    ori: str
    reason: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "refused", ...}``."""
        return {"event": "refused", "ori": self.ori, "reason": self.reason, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Delivered(SwitchEvent):
    """A receiver acknowledged a delivery; ``latency_s`` counts from custody."""

    msg_id: int
    key: str
    to: str
    latency_s: float
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "delivered", ...}``."""
        return {"event": "delivered", "msg_id": self.msg_id, "key": self.key, "to": self.to,
                "latency_s": self.latency_s, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Expired(SwitchEvent):
    """A held delivery's hold ran out (its sender gets SM ``.04.``)."""

    msg_id: int
    key: str
    to: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "expired", ...}``."""
        return {"event": "expired", "msg_id": self.msg_id, "key": self.key, "to": self.to,
                "ts": self.ts}


@dataclass(frozen=True, slots=True)
class RefusedByReceiver(SwitchEvent):
    """A receiver answered a delivery with ``N``: recorded, not sent again."""

    msg_id: int
    to: str
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "refused_by_receiver", ...}``."""
        return {"event": "refused_by_receiver", "msg_id": self.msg_id, "to": self.to,
                "ts": self.ts}


@dataclass(frozen=True, slots=True)
class JournalFault(SwitchEvent):
    """An alert: the journal failed an operation (``state`` ``failed``) or works
    again (``recovered``).

    ``op`` is ``write`` (a commit: custody stops, senders get ``N .05.``),
    ``read-back`` (what is owed to ``destination`` could not be read) or
    ``expiry`` (the sweep for expired holds); ``error`` is the exception's
    class name only (its text may quote data).
    """

    state: str
    op: str
    error: str | None
    destination: str | None
    ts: float

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "journal_fault", ...}``."""
        return {"event": "journal_fault", "state": self.state, "op": self.op,
                "error": self.error, "destination": self.destination, "ts": self.ts}


@dataclass(frozen=True, slots=True)
class Audit(SwitchEvent):
    """An audit-trail event (CJIS 5.4.1.1): sign-ons, lock-outs, reloads, access.

    ``detail`` holds the rest (``peer``, ``reason``, ``component``, ...).
    """

    type: str
    subject: str
    outcome: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    ts: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "audit", "type": ..., "subject": ..., "outcome": ..., **detail}``."""
        return {"event": "audit", "type": self.type, "subject": self.subject,
                "outcome": self.outcome, **self.detail, "ts": self.ts}


#: The kinds of :class:`Security` events (the last part of their MQTT topic).
SECURITY_KINDS = frozenset({
    "sign_on",          # a sign-on refused (outcome failure), a TLS handshake refused
    "bad_frame",        # a framing error: N .01. INVALID FRAME and close
    "frame_timeout",    # a frame begun and not finished in limits.frame_timeout
    "rate_limited",     # N .04.: an ORI past its rate
    "lockout",          # a source (or, past the higher threshold, an ORI) locked out
    "unlock",           # an operator lifted a lock-out
    "revoked",          # a live link signed off because the CRL revokes its certificate
    "admission",        # a connection refused or closed by the connection limits
})


@dataclass(frozen=True, slots=True)
class Security(Audit):
    """A security event: audited like every :class:`Audit`, and published on MQTT
    (``nlets/<switch>/security/<type>``). ``type`` is one of :data:`SECURITY_KINDS`;
    ``subject`` the ORI concerned ('' when none is known); ``detail`` names the
    peer and the reason, never message text or a credential.
    """

    def to_dict(self) -> dict[str, Any]:
        """``{"event": "audit", "security": true, "type": ..., ...}``."""
        return {"event": "audit", "security": True, "type": self.type,
                "subject": self.subject, "outcome": self.outcome, **self.detail,
                "ts": self.ts}


class AuditSink(Protocol):
    """Where audit events go to be kept; a switch cannot be built without one."""

    def audit(self, event: Audit) -> None:
        """Keep ``event`` (must not block: queue it)."""


class MemoryAudit:
    """An audit sink that keeps events in a list: for tests, and embeddings that
    keep their own trail. Nothing is durable."""

    def __init__(self) -> None:
        self.events: list[Audit] = []

    def audit(self, event: Audit) -> None:
        """Append ``event``."""
        self.events.append(event)
