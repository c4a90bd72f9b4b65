"""Cluster mode: the switch's side of the node thread (docs/cluster.md).

A switch started with ``store.node_id`` (``--node-id``) on a PostgreSQL
store is one node of a cluster. This module carries the engine's ownership
effects to the node thread (:class:`~nlets_switch.store.postgres_node.ClusterNode`)
and its answers back to the engine, which stays sans-IO:

* a sign-on for an ORI not held here is accepted only once the node holds
  the ORI's lock (:class:`~nlets_switch.core.effects.ClaimOri` ->
  ``Engine.claimed``); a link or service that ends lets it go
  (:class:`~nlets_switch.core.effects.ReleaseOri`, after what the journal has
  in hand is committed, so the next holder reads it back);
* another node's sign-on for an ORI held here closes the link here
  (``Engine.replaced_elsewhere``); an in-process service gives way and waits
  to take its ORI back;
* deliveries another node made durable for an ORI held here are read back
  (``Engine.woken``); the ORIs the other nodes hold are the engine's
  ``elsewhere`` view (SM .02/.04 decisions);
* each batch that makes deliveries durable for ORIs not signed on here
  wakes the other nodes when it commits;
* sign-ons are decided against the failure counts and lock-outs every node
  shares (:class:`~nlets_switch.core.effects.DecideSignOn` ->
  ``Engine.gate_decided``; :mod:`nlets_switch.store.postgres_signon`), and
  ``unlock`` lifts a lock-out on every node.
"""

from __future__ import annotations

import asyncio
import functools
from typing import TYPE_CHECKING, Any

from nlets_switch.core.effects import DecideSignOn
from nlets_switch.log import get_logger
from nlets_switch.server.credentials import verify_credential
from nlets_switch.store import postgres_cluster as pc
from nlets_switch.store.postgres_node import ClusterNode
from nlets_switch.store.postgres_signon import SharedGate
from nlets_switch.store.records import Batch, Claim, GateVerdict

if TYPE_CHECKING:
    from nlets_switch.server.control import LocalEndpoint
    from nlets_switch.server.switch import Switch

log = get_logger("cluster")


class Cluster:
    """The node of one switch; created by ``Switch.start`` (registers the node, so a
    duplicate node id raises StoreError before anything listens)."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch
        cfg = switch.config
        assert cfg.store.url and cfg.store.node_id
        self.node_id = cfg.store.node_id
        address = ",".join(lst.address for lst in cfg.listeners)
        self.node = ClusterNode(cfg.store.url, self.node_id, address)
        self.slot = self.node.slot = self.node.open()
        #: In-process services waiting to take their ORI (another node runs them).
        self._waiting: set[str] = set()
        #: The failure counts and lock-outs of sign-ons, shared by every node.
        self.gate = SharedGate(cfg.store.url, self.node_id)
        self._gate_down = False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start the node thread; from now on the engine works as a cluster node."""
        self.switch.engine.join_cluster(self.slot, pc.ID_STRIDE)
        # Who is signed on elsewhere, before the first message is routed (SM .02/.04).
        self.switch.engine.elsewhere = set(self.node.elsewhere())
        journal: Any = self.switch.journal
        journal.wake = self._wake_payloads
        self.node.start(loop, self)
        log.info("cluster_node", node=self.node_id, slot=self.slot)

    def close(self) -> None:
        """Stop the thread; the node's ORIs are free for the other nodes."""
        self.node.close()
        self.gate.close()

    # -- sign-on lock-outs every node shares ----------------------------------------------

    async def decide(self, e: DecideSignOn) -> None:
        """Decide a sign-on against the shared lock-outs (``Engine.gate_decided``).

        The credential check (scrypt) runs in the worker thread, inside the
        decision's transaction, so the ORI's next attempt anywhere in the cluster
        is decided only after this one's failure is counted. When the database
        cannot be reached the sign-on is refused (``error``).
        """
        def check() -> bool:
            if e.verdict is not None:
                return e.verdict
            assert e.credential is not None and e.stored is not None
            try:
                return verify_credential(e.credential, e.stored)
            except Exception:  # an unreadable stored hash is a wrong credential
                return False

        try:
            verdict = await asyncio.to_thread(self.gate.decide, e.ori, e.source, e.after,
                                              e.ori_after, e.lockout_s, check)
            if self._gate_down:
                self._gate_down = False
                log.warning("sign_on_gate_back", node=self.node_id)
        except Exception as err:  # the database is gone (StoreError) or failed mid-way
            if not self._gate_down:  # once per outage: a guessing flood is not a log flood
                self._gate_down = True
                log.error("sign_on_gate_unreachable", node=self.node_id, error=str(err))
            verdict = GateVerdict(False, error=type(err).__name__)
        sw = self.switch
        sw.apply(sw.engine.gate_decided(e.token, verdict, sw.now()))

    async def unlock(self, target: str) -> tuple[list[str], list[dict[str, object]]]:
        """Lift the lock-outs of ``target`` on every node: (what was locked, what stays
        locked). Raises StoreError when the database cannot be reached."""
        lifted = await asyncio.to_thread(self.gate.unlock, target)
        return lifted, await asyncio.to_thread(self.gate.lockouts)

    # -- the engine's effects ----------------------------------------------------

    def claim(self, ori: str, token: Any) -> None:
        """A sign-on for ``ori`` waits for its lock (``Engine.claimed``)."""
        self.node.claim(ori, True, functools.partial(self._claimed, token))

    def _claimed(self, token: Any, claim: Claim | None, reason: str) -> None:
        sw = self.switch
        sw.apply(sw.engine.claimed(token, claim, sw.now(), reason))

    def release(self, ori: str) -> None:
        """``ori`` has no link or service here any more: let go once the journal
        committed what it had in hand (the next holder reads it back)."""
        journal: Any = self.switch.journal
        try:
            journal.submit(_nothing, lambda _r, _e: self.node.release(ori))
        except RuntimeError:  # the journal is closed: the node stops
            self.node.release(ori)

    def attach_local(self, local: LocalEndpoint) -> None:
        """An in-process service takes its ORI once this node holds it (one node runs
        each service; another takes over when that node dies)."""
        ori = local.ori
        if ori in self._waiting:
            return
        self._waiting.add(ori)

        def done(claim: Claim | None, _reason: str) -> None:
            self._waiting.discard(ori)
            sw = self.switch
            if claim is None or not sw.engine.accepting:
                if claim is not None:
                    self.node.release(ori)
                return
            if ori in sw.engine.links:
                self.node.release(ori)  # a link here has it now
                return
            sw.attach_now(local)

        self.node.claim(ori, False, done)

    # -- what the node thread learns (on the loop) ------------------------------------

    def drop_requested(self, ori: str) -> None:
        """Another node took a sign-on for ``ori``."""
        sw = self.switch
        ep = sw.engine.links.get(ori)
        if ep is None:
            return
        local = sw.local_of(ep)
        if local is not None:
            sw.detach(local)
            make = sw.standby.get(ori)
            # It takes the ORI back when it is free again (that node's link ends or dies).
            self.attach_local(make() if make is not None else local)
            return
        sw.apply(sw.engine.replaced_elsewhere(ori, sw.now()))

    def lost(self, ori: str) -> None:
        """The node lost ``ori`` while its connection was down."""
        self.drop_requested(ori)

    def woken(self, oris: list[str]) -> None:
        """Another node made deliveries durable for these ORIs."""
        sw = self.switch
        now = sw.now()
        for ori in oris:
            sw.apply(sw.engine.woken(ori, now))

    def view(self, elsewhere: frozenset[str]) -> None:
        """The ORIs the other nodes hold (read once a second)."""
        self.switch.engine.elsewhere = set(elsewhere)

    def presence(self, ori: str, here: bool) -> None:
        """Another node took or let go of ``ori`` (between two views)."""
        if here:
            self.switch.engine.elsewhere.add(ori)
        else:
            self.switch.engine.elsewhere.discard(ori)

    # -- the journal's wake-ups ----------------------------------------------------------

    def _wake_payloads(self, batch: Batch) -> list[str]:
        """The ``nlets_wake`` payloads of a batch (on the loop, as it is handed over):
        the ORIs it makes deliveries for that are not signed on here."""
        if not batch.deliveries:
            return []
        links = self.switch.engine.links
        oris = sorted({d.link for d in batch.deliveries if d.link not in links})
        return pc.wake_payloads(self.node_id, oris) if oris else []


def _nothing(store: Any) -> None:
    return None
