"""A world for the engine without sockets, threads or sleeps (tests/test_engine.py).

:class:`World` plays the server's part: it carries out the engine's effects
against an in-memory store with the journal's semantics (:class:`MemoryStore`),
keeps what each connection was sent, and moves ``now`` forward by hand. Store
operations run when the test lets them (:meth:`World.settle`), so custody
(no ``A`` before the commit) can be seen.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from nlets_switch.config import config_from_dict, demo_config
from nlets_switch.core import effects as fx
from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.delivery import Delivery, Endpoint
from nlets_switch.core.engine import Engine
from nlets_switch.core.events import Audit, SwitchEvent
from nlets_switch.core.gate import Gate
from nlets_switch.store.records import (
    OPEN_STATES,
    Batch,
    DeliveryRow,
    ExpiredRow,
    GateVerdict,
    MessageRow,
    OwedRow,
    Recovered,
)
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from nlets_switch.wire.schema import load_schemas

#: Wall-clock time at mono 0.
T0 = 1_700_000_000.0
SCHEMAS = load_schemas()


@dataclass
class _Dlv:
    row: DeliveryRow
    state: str
    sent_at: float | None = None
    done_at: float | None = None


class MemoryStore:
    """The journal's hot path in memory: batches, owed read-backs, expiry."""

    def __init__(self) -> None:
        self.messages: dict[int, MessageRow] = {}
        self.deliveries: dict[int, _Dlv] = {}
        self.counters: dict[str, int] = {}
        self.commits = 0
        #: Cluster mode: the failure counts and lock-outs the nodes share (the
        #: database's signon_failures, here the engine's own in-memory gate).
        self.gate = Gate()

    def write(self, b: Batch) -> None:
        for m in b.messages:
            self.messages[m.id] = m
        for d in b.deliveries:
            self.deliveries[d.id] = _Dlv(d, d.state)
        self.counters.update(b.counters)
        for i, at in b.sent.items():
            d = self.deliveries[i]
            if d.state in ("queued", "held"):
                d.state, d.sent_at = "sent", at
        for done in b.done:
            d = self.deliveries[done.id]
            d.state, d.done_at = done.state, done.done_at
            d.sent_at = d.sent_at if d.sent_at is not None else done.sent_at
        self.commits += 1

    def owed(self, link: str, after: int, limit: int) -> list[OwedRow]:
        out = []
        for i in sorted(self.deliveries):
            d = self.deliveries[i]
            if d.row.link != link or d.state not in OPEN_STATES or i <= after:
                continue
            r, m = d.row, self.messages[d.row.msg_id]
            assert m.key is not None and m.origin is not None
            out.append(OwedRow(r.id, r.msg_id, r.link, r.receiver, r.addressed, r.output_no,
                               r.priority, m.key, m.origin, m.received_at, m.input_no,
                               m.control, m.text[m.body_start:].rstrip("\r\n"), r.expires_at,
                               d.sent_at))
            if len(out) >= limit:
                break
        return out

    def expire(self, wall: float, limit: int) -> list[ExpiredRow]:
        out = []
        for i in sorted(self.deliveries, key=lambda i: self.deliveries[i].row.expires_at):
            d = self.deliveries[i]
            if d.state in OPEN_STATES and d.row.expires_at <= wall:
                m = self.messages[d.row.msg_id]
                assert m.key is not None and m.origin is not None
                d.state = "expired"
                out.append(ExpiredRow(i, d.row.addressed, m.id, m.link, m.key, m.origin,
                                      m.control, m.text))
                if len(out) >= limit:
                    break
        return out

    def state_of(self, text_part: str, key: str = "AM") -> list[str]:
        """States of the deliveries of ``key`` messages whose text contains ``text_part``."""
        return [d.state for d in self.deliveries.values()
                if self.messages[d.row.msg_id].key == key
                and text_part in self.messages[d.row.msg_id].text]


@dataclass
class Peer:
    """What one connection was sent, decoded."""

    conn: Conn
    frames: list[fr.Frame] = field(default_factory=list)
    closed: bool = False
    seq: int = 0

    def take(self) -> list[tuple[str, int, bytes]]:
        out = [(f.letter, f.seq, f.body) for f in self.frames]
        self.frames.clear()
        return out

    def messages(self) -> list[fr.Frame]:
        out = [f for f in self.frames if f.type == fr.MESSAGE]
        self.frames[:] = [f for f in self.frames if f.type != fr.MESSAGE]
        return out


class World:
    """An engine, a memory store and hand-moved clocks."""

    def __init__(self, raw: dict[str, Any] | None = None, *, auto: bool = True,
                 store: MemoryStore | None = None) -> None:
        cfg = config_from_dict(raw) if raw is not None else demo_config()
        self.store = store if store is not None else MemoryStore()
        rec = Recovered(max(self.store.messages, default=0),
                        max(self.store.deliveries, default=0), dict(self.store.counters))
        self.engine = Engine(cfg, SCHEMAS, rec)
        self.mono = 0.0
        #: Store operations run by :meth:`settle` (at once when ``auto``).
        self.auto = auto
        self.ops: deque[Any] = deque()
        self.peers: dict[int, Peer] = {}
        self.events: list[SwitchEvent] = []
        self.logs: list[fx.Log] = []
        self.checks: list[fx.CheckCredential] = []
        #: Cluster mode: sign-on decisions against the shared lock-outs, not answered yet.
        self.decisions: list[fx.DecideSignOn] = []
        self.local: list[fx.DeliverLocal] = []
        self.durable: list[fx.Durable] = []
        self.standby: list[str] = []
        #: Cluster mode: the sign-ons waiting for their ORI, and the ORIs let go.
        self.claims: list[fx.ClaimOri] = []
        self.releases: list[str] = []
        self.paused: set[int] = set()
        self.checkpoints = 0
        self.run(self.engine.start(self.now))

    @property
    def now(self) -> Now:
        return Now(self.mono, T0 + self.mono)

    # -- carrying out effects --------------------------------------------------

    def run(self, effects: list[Any]) -> None:
        for e in effects:
            if isinstance(e, fx.Output):
                self._write(e.conn)
            elif isinstance(e, fx.Close):
                self._write(e.conn)
                self.peers[e.conn.id].closed = True
            elif isinstance(e, fx.PauseReading):
                self.paused.add(e.conn.id)
            elif isinstance(e, fx.ResumeReading):
                self.paused.discard(e.conn.id)
            elif isinstance(e, fx.WriteBatch | fx.ReadOwed | fx.ExpireDue):
                self.ops.append(e)
            elif isinstance(e, fx.CheckCredential):
                self.checks.append(e)
            elif isinstance(e, fx.DecideSignOn):
                self.decisions.append(e)
            elif isinstance(e, fx.DeliverLocal):
                self.local.append(e)
            elif isinstance(e, fx.Durable):
                self.durable.append(e)
            elif isinstance(e, fx.Standby):
                self.standby.append(e.ori)
            elif isinstance(e, fx.ClaimOri):
                self.claims.append(e)
            elif isinstance(e, fx.ReleaseOri):
                self.releases.append(e.ori)
            elif isinstance(e, fx.Log):
                self.logs.append(e)
            elif isinstance(e, fx.Checkpoint):
                self.checkpoints += 1
            elif isinstance(e, SwitchEvent):
                self.events.append(e)
            else:  # pragma: no cover - a new effect the world does not know
                raise AssertionError(e)
        # Cluster mode: decisions that need no credential check are answered at once
        # (as the node's database would), those with one wait for :meth:`decide`.
        for d in [d for d in self.decisions if d.verdict is not None]:
            if d in self.decisions:  # not answered meanwhile by a nested run
                self.decide(d)
        if self.auto:
            self.settle()

    def decide(self, e: fx.DecideSignOn, ok: bool | None = None,
               error: str | None = None) -> None:
        """Answer a cluster-mode sign-on decision: the credential was ``ok`` (or the
        shared state was unreachable: ``error``), counted in the store's shared gate."""
        self.decisions.remove(e)
        g = self.store.gate
        locked = g.locked(e.source, e.ori, self.mono)
        if error is not None:
            v = GateVerdict(False, error=error)
        elif locked is not None:
            v = GateVerdict(False, locked)
        elif e.verdict if ok is None else ok:
            g.succeeded(e.source, e.ori)
            v = GateVerdict(True)
        else:
            src, whole = g.failed(e.source, e.ori, self.mono, e.after, e.ori_after,
                                  e.lockout_s)
            v = GateVerdict(False, None, src, whole)
        self.run(self.engine.gate_decided(e.token, v, self.now))

    def _write(self, conn: Conn) -> None:
        peer = self.peers[conn.id]
        data = b"".join(self.engine.take_output(conn))
        buf = fr.FrameBuffer()
        peer.frames += buf.feed(data)

    def end_turn(self) -> None:
        """What the server does at the end of each loop turn."""
        self.run(self.engine.end_turn(self.now))

    def settle(self, limit: int | None = None) -> None:
        """Run store operations (at most ``limit``) and what their results cause."""
        done = 0
        while self.ops and (limit is None or done < limit):
            op = self.ops.popleft()
            done += 1
            now = self.now
            if isinstance(op, fx.WriteBatch):
                self.store.write(op.batch)
                self.run(self.engine.committed(op.token, None, now))
            elif isinstance(op, fx.ReadOwed):
                rows = self.store.owed(op.link, op.after, op.limit)
                self.run(self.engine.owed_loaded(op.token, rows, None, now))
            elif isinstance(op, fx.ExpireDue):
                self.run(self.engine.expired(self.store.expire(op.wall, op.limit), None, now))
            self.end_turn()

    def fail_next_write(self) -> None:
        """The next batch in the queue fails to commit."""
        for i, op in enumerate(self.ops):
            if isinstance(op, fx.WriteBatch):
                del self.ops[i]
                self.run(self.engine.committed(op.token, OSError("disk full"), self.now))
                return
        raise AssertionError("no batch waiting")

    # -- the other side ---------------------------------------------------------

    def connect(self, host: str = "127.0.0.1", anonymous_ok: bool = True,
                cert_oris: frozenset[str] | None = None) -> Peer:
        conn, effects = self.engine.open(f"{host}:5000", host, anonymous_ok, cert_oris,
                                         self.now)
        peer = self.peers[conn.id] = Peer(conn)
        self.run(effects)
        self.end_turn()
        return peer

    def feed(self, peer: Peer, data: bytes) -> None:
        self.run(self.engine.receive(peer.conn, data, self.now))
        self.end_turn()

    def send(self, peer: Peer, ftype: int, body: bytes = b"", seq: int | None = None) -> int:
        if seq is None:
            peer.seq += 1
            seq = peer.seq
        self.feed(peer, fr.encode_frame(ftype, seq, body))
        return seq

    def sign_on(self, ori: str, host: str = "127.0.0.1", credential: str | None = None,
                **kw: Any) -> Peer:
        peer = self.connect(host, **kw)
        body = ori if credential is None else f"{ori} {credential}"
        self.send(peer, fr.SIGN_ON, body.encode())
        return peer

    def message(self, peer: Peer, text: str) -> int:
        return self.send(peer, fr.MESSAGE, text.encode())

    def ack_all(self, peer: Peer) -> list[str]:
        """Acknowledge every M the peer got; returns their texts (the output's text part)."""
        got = peer.messages()
        data = b"".join(fr.encode_frame(fr.ACK, f.seq) for f in got)
        if data:
            self.feed(peer, data)
        return [parse_output(f.body.decode()).text for f in got]

    def advance(self, seconds: float) -> None:
        """Move both clocks; run every timer that falls due, in order."""
        target = self.mono + seconds
        while True:
            d = self.engine.next_deadline()
            if d is None or d > target:
                break
            self.mono = max(self.mono, d)
            self.run(self.engine.tick(self.now))
            self.end_turn()
        self.mono = target

    # -- local services -----------------------------------------------------------

    def attach_local(self, ori: str) -> Endpoint:
        ep, effects = self.engine.attach_local(ori, self.now)
        self.run(effects)
        self.end_turn()
        return ep

    def local_done(self, d: fx.DeliverLocal) -> None:
        self.run(self.engine.local_done(d.endpoint, d.seq, self.now))
        self.end_turn()

    # -- looking -------------------------------------------------------------------

    def audits(self) -> list[tuple[str, str, str]]:
        return [(e.type, e.subject, e.outcome) for e in self.events if isinstance(e, Audit)]

    def of(self, kind: type[SwitchEvent]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def delivery_texts(self, deliveries: list[Delivery]) -> list[str]:
        return [d.body for d in deliveries]
