"""The store's port: the typed rows it hands out and the protocols a store implements.

Backend-neutral on purpose: nothing here knows SQLite. The embedded store
(:class:`nlets_switch.store.sqlite.SqliteStore`) implements these protocols
today; a PostgreSQL store (issue 10) is to implement the same ones, so every
method speaks in the rows below and plain parameters (``str``, ``int``,
``float``), never in a driver's objects, and each query is one that any SQL
database can answer (text search matches whole words through a word index of
blind tokens, which each store keeps in its own way: store/logquery.py).

Rows are frozen dataclasses with slots: cheap, immutable, and checked by mypy
where positional tuples were not.

Transactions: a method that writes is atomic. Called while a write
transaction is open (a journal operation, or inside :meth:`Store.transaction`)
it joins that transaction; otherwise it runs in one of its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Final, Protocol

# One list of the open states, shared with the hot path's rows.
from nlets_switch.store.records import OPEN_STATES as OPEN_STATES

#: Most messages a search returns when the caller does not say.
DEFAULT_LIMIT: Final = 100


# --------------------------------------------------------------------------
# The message log (the journal's messages and deliveries, read back)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageQuery:
    """What to look for in the message log; every criterion given must match.

    ``ori`` matches a message's origin, its link, or any delivery's receiver,
    link or addressed ORI. ``since``/``until`` are POSIX times (inclusive)
    of receipt. ``text``: the message holds every word of it (letters and
    digits, any case), anywhere. ``limit`` None means no limit (exports). ``visible_to`` keeps only
    messages that ORI sent (its origin or link) or received (a delivery's
    receiver or link).
    """

    ori: str | None = None
    key: str | None = None
    control: str | None = None
    since: float | None = None
    until: float | None = None
    text: str | None = None
    limit: int | None = DEFAULT_LIMIT
    visible_to: str | None = None
    #: Keeps only messages an ORI of this state sent or received (a control
    #: terminal's view of its state's traffic, RAND).
    visible_state: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One delivery of a message to one destination, as the journal holds it.

    Times are POSIX seconds; ``held`` says the delivery waited in a held queue
    at some point (its ``state`` may have moved on since).
    """

    id: int
    msg_id: int
    receiver: str
    link: str
    addressed: str
    output_no: int
    priority: int
    state: str
    created_at: float
    expires_at: float
    sent_at: float | None = None
    done_at: float | None = None
    held: bool = False

    @property
    def open(self) -> bool:
        """Whether the delivery is still owed (queued, held or sent)."""
        return self.state in OPEN_STATES


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """One message the switch took (accepted or rejected), as the log shows it.

    ``text`` is the whole input message, present only when it was asked for
    (it is criminal-justice information). ``deliveries`` are in id order,
    present when asked for.
    """

    id: int
    received_at: float
    link: str
    key: str | None
    origin: str | None
    destinations: tuple[str, ...]
    control: str | None
    input_no: int | None
    status: str
    reason: str | None = None
    reply_to: int | None = None
    text: str | None = None
    deliveries: tuple[DeliveryRecord, ...] = ()


class MessageLogStore(Protocol):
    """Reading the message log: search, fetch, count, and what is owed."""

    def find_messages(self, q: MessageQuery, *, after_id: int | None = None,
                      oldest_first: bool = False, with_text: bool = False,
                      with_deliveries: bool = True) -> list[LoggedMessage]:
        """Messages matching ``q`` (at most ``q.limit``), newest first unless
        ``oldest_first``; only ids above ``after_id`` when given. An empty log,
        or none at all, gives an empty list."""
        ...

    def count_messages(self, q: MessageQuery) -> int:
        """How many messages match ``q``, ignoring its limit."""
        ...

    def get_message(self, msg_id: int, *, with_text: bool = False,
                    visible_to: str | None = None) -> LoggedMessage | None:
        """One message with its deliveries; None when there is no such id, or when
        ``visible_to`` is given and that ORI neither sent nor received it."""
        ...

    def replies_to(self, msg_id: int) -> list[LoggedMessage]:
        """The messages the switch sent about ``msg_id`` (ER, SM), in id order, with
        their text and deliveries."""
        ...

    def owed_per_link(self) -> dict[str, int]:
        """Deliveries still owed (queued, held or sent), per destination link."""
        ...


# --------------------------------------------------------------------------
# The audit trail
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """An audit record before it is chained. ``ts`` is ISO 8601 UTC text (it sorts);
    ``detail`` is the canonical JSON text the MAC covers."""

    ts: str
    component: str
    type: str
    subject: str
    outcome: str
    detail: str


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One record of the audit trail, with its place (``id``) and ``mac`` in the chain."""

    id: int
    ts: str
    component: str
    type: str
    subject: str
    outcome: str
    detail: str
    mac: str


@dataclass(frozen=True, slots=True)
class AuditAnchor:
    """Where the chain starts after retention removed its oldest records: the id and
    MAC of the last record removed, and the keyed ``tag`` that makes it authentic."""

    id: int
    mac: str
    tag: str


#: ``seal(record_id, previous_mac) -> mac``: how a new record is chained.
Seal = Callable[[int, str], str]


class AuditStore(Protocol):
    """The HMAC-chained audit trail's table (the chain itself is computed by the caller)."""

    def append_audit(self, event: AuditEvent, seal: Seal) -> AuditRecord:
        """Append ``event`` after the newest record (or the anchor, or the start):
        its id is the previous id + 1 and its MAC ``seal(id, previous mac)``
        (``""`` at the start). Atomic: no other writer appends in between."""
        ...

    def audit_records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first (read lazily)."""
        ...

    def audit_anchor(self) -> AuditAnchor | None:
        """The retention anchor, or None when nothing was ever pruned. Raises
        :class:`~nlets_switch.errors.CorruptRecord` when it cannot be read back."""
        ...

    def last_audit_record(self) -> AuditRecord | None:
        """The newest record, or None."""
        ...

    def audit_high(self) -> int:
        """The highest audit id ever given, its row kept or not (0: none yet)."""
        ...

    def list_audit_records(self, *, type: str | None = None, subject: str | None = None,
                           since: str | None = None, limit: int = 50) -> list[AuditRecord]:
        """Records of that type and subject, at or after ``since`` (ISO UTC text),
        newest first, at most ``limit``."""
        ...


# --------------------------------------------------------------------------
# Retention
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrunedMessages:
    """What :meth:`RetentionStore.prune_messages` removed."""

    messages: int = 0
    deliveries: int = 0


class Transactional(Protocol):
    """A store whose writes can be grouped."""

    def transaction(self) -> AbstractContextManager[None]:
        """A write transaction (joining the caller's when one is open): the writes
        inside it are committed together or not at all."""
        ...


class RetentionStore(Transactional, Protocol):
    """Removing what is past retention. Counters (the id high-water marks) are never
    touched, so ids are not reused after the log is emptied."""

    def prune_messages(self, before: float, limit: int) -> PrunedMessages:
        """Remove, oldest first and at most ``limit``, the messages received before
        ``before`` none of whose deliveries is still open, with their deliveries."""
        ...

    def prune_audit(self, before: str, tag: Callable[[int, str], str]) -> int:
        """Remove the oldest audit records stamped before ``before`` (ISO UTC text),
        stopping at the first younger one, and make the last one removed the
        anchor, authenticated by ``tag(id, mac)``. Returns how many went."""
        ...


# --------------------------------------------------------------------------
# Help files (PROTOCOL part 5)
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HelpFile:
    """Help file ``file`` of ``state`` (``SSFFFHELP``), who last wrote it and when."""

    state: str
    file: str
    text: str
    updated_at: float
    updated_by: str


class HelpStore(Protocol):
    """The NL service's help files."""

    def help_file(self, state: str, file: str) -> HelpFile | None:
        """Help file ``file`` of ``state``, or None."""
        ...

    def put_help_file(self, hf: HelpFile) -> None:
        """Write ``hf``, replacing the file of that state and name."""
        ...

    def delete_help_file(self, state: str, file: str) -> bool:
        """Remove help file ``file`` of ``state`` (its ``CNCL``); whether there was one."""
        ...

    def seed_help_files(self, files: Iterable[HelpFile]) -> None:
        """Write those of ``files`` that do not exist yet; leave the others alone."""
        ...


@dataclass(frozen=True, slots=True)
class OrionRecord:
    """The latest ORION change of one ORI: its entry's fields, or None (deleted)."""

    ori: str
    record: Mapping[str, Any] | None
    updated_at: float
    updated_by: str


class OrionStore(Protocol):
    """ORION changes made on the wire (``TA``/``TU``/``TD``)."""

    def orion_records(self) -> list[OrionRecord]:
        """Every ORI changed on the wire, oldest change first."""
        ...

    def put_orion_record(self, rec: OrionRecord) -> None:
        """Record the latest change of ``rec.ori``."""
        ...


# --------------------------------------------------------------------------
# The whole store
# --------------------------------------------------------------------------


class Store(MessageLogStore, AuditStore, RetentionStore, HelpStore, OrionStore, Protocol):
    """Every table and query of the switch outside the hot path's writes."""

    def close(self) -> None:
        """Release the connection."""
        ...


async def submit_and_wait(loop: asyncio.AbstractEventLoop,
                          submit: Callable[[Any, Callable[[Any, BaseException | None], None]],
                                           None],
                          op: Any) -> Any:
    """Hand ``op`` to a journal's ``submit`` and wait for its committed result (or error):
    the ``call`` of the SQLite and PostgreSQL journals alike."""
    fut: asyncio.Future[Any] = loop.create_future()

    def done(result: Any, exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(result)

    submit(op, done)
    return await fut
