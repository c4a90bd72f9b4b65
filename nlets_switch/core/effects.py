"""What the engine asks its server to do: effects, carried out in the order given.

Every entry point of :class:`~nlets_switch.core.engine.Engine` returns a list
of effects. The server carries each one out and, where one has a result
(a commit, a read, a credential check, a local delivery handled), reports it
back through the engine method the effect names. Store operations must
reach the store in list order: a read-back placed after a write must see it.

Typed switch events (:mod:`nlets_switch.core.events`) are effects too: give
them to the observers (and :class:`~nlets_switch.core.events.Audit` to the
audit sink).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from nlets_switch.core.events import SwitchEvent
from nlets_switch.store.records import Batch

if TYPE_CHECKING:
    from nlets_switch.core.delivery import Delivery, Endpoint
    from nlets_switch.core.engine import Conn


class Output(NamedTuple):
    """``conn`` has frames to send: write ``conn.link.data_to_send()`` (once per turn)."""

    conn: Conn


class Close(NamedTuple):
    """Write what ``conn`` still has to send, then close its transport."""

    conn: Conn


class PauseReading(NamedTuple):
    """Stop reading ``conn`` (custody, rate, write back-pressure, sign-on, closing)."""

    conn: Conn


class ResumeReading(NamedTuple):
    """Read ``conn`` again."""

    conn: Conn


class WriteBatch(NamedTuple):
    """Make ``batch`` durable in one commit; then call ``engine.committed(token, error, now)``."""

    batch: Batch
    token: Any


class ReadOwed(NamedTuple):
    """Read what is owed to ``link`` after delivery id ``after`` (at most ``limit``),
    after every earlier write; then ``engine.owed_loaded(token, rows, error, now)``."""

    link: str
    after: int
    limit: int
    token: Any


class ExpireDue(NamedTuple):
    """Expire open deliveries whose hold ended by ``wall`` (at most ``limit``);
    then ``engine.expired(rows, error, now)``."""

    wall: float
    limit: int


class CheckCredential(NamedTuple):
    """Check ``credential`` against the stored hash (slow: off the loop); then
    ``engine.credential_checked(token, ok, now)``."""

    token: Any
    credential: str
    stored: str


class DecideSignOn(NamedTuple):
    """Cluster mode: decide the sign-on ``token`` against the lock-outs every node
    shares. As one step, under the ORI's cluster-wide lock: unless ``source`` or
    ``ori`` is locked out, check ``credential`` against ``stored`` (slow: off the
    loop), or take ``verdict`` when no check is needed, and count a failure (past
    ``after`` the source locks, past ``ori_after`` the ORI, for ``lockout_s``);
    then ``engine.gate_decided(token, GateVerdict, now)``."""

    token: Any
    ori: str
    source: str
    credential: str | None
    stored: str | None
    verdict: bool | None
    after: int
    ori_after: int
    lockout_s: float


class DeliverLocal(NamedTuple):
    """Hand ``delivery`` to the in-process service behind ``endpoint``; when it is
    handled, ``engine.local_done(endpoint, seq, now)``."""

    endpoint: Endpoint
    seq: int
    delivery: Delivery


class Durable(NamedTuple):
    """The message accepted with ``token`` is durable (``error`` None) or lost."""

    token: Any
    error: BaseException | None


class Standby(NamedTuple):
    """The link of ``ori`` ended: attach its in-process standby service, if it has one."""

    ori: str


class ClaimOri(NamedTuple):
    """Cluster mode: a sign-on for ``ori`` waits until this node holds the ORI (another
    node's link of it closes); then ``engine.claimed(token, claim or None, now)``."""

    ori: str
    token: Any


class ReleaseOri(NamedTuple):
    """Cluster mode: ``ori`` has no endpoint on this node any more; let another take it."""

    ori: str


class Log(NamedTuple):
    """A line for the operator log (never message text); ``level`` as in logging."""

    level: str
    event: str
    fields: dict[str, Any]


class Checkpoint(NamedTuple):
    """Writes happened: copy the write-ahead log back (store maintenance)."""


Effect = (Output | Close | PauseReading | ResumeReading | WriteBatch | ReadOwed | ExpireDue
          | CheckCredential | DecideSignOn | DeliverLocal | Durable | Standby | ClaimOri
          | ReleaseOri | Log | Checkpoint | SwitchEvent)
