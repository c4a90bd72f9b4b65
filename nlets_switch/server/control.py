"""The switch's API for code in its process: in-process services and operator commands.

:class:`SwitchControl` is a part of :class:`~nlets_switch.server.switch.Switch`
(a mixin; the switch module holds the listeners, the loop turn and the
effects). Adapters attach :class:`LocalEndpoint` s and hand in messages;
operators (console, HTTP API) reload, drop and unlock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from nlets_switch.config import Config
from nlets_switch.core import effects as fx
from nlets_switch.core.conn import Now
from nlets_switch.core.delivery import Delivery, Endpoint
from nlets_switch.core.engine import Engine

if TYPE_CHECKING:
    from nlets_switch.server.cluster import Cluster
    from nlets_switch.server.connection import LinkConnection
    from nlets_switch.server.switch import Switch

__all__ = ["LocalEndpoint", "SwitchControl"]


class LocalEndpoint:
    """An ORI answered inside the switch's process (the NL services, adapters).

    :meth:`Switch.attach` hands it to the engine, which drives it like a link:
    deliveries come to :meth:`transmit` within the window, and each counts as
    acknowledged when :meth:`done` is called for it.
    """

    kind = "local"

    def __init__(self, switch: Switch, ori: str) -> None:
        self.switch = switch
        self.ori = ori
        #: The engine's endpoint while attached.
        self.endpoint: Endpoint | None = None

    def transmit(self, seq: int, d: Delivery) -> None:
        """Take delivery ``d`` (handed over as ``seq``); call :meth:`done` when handled."""
        raise NotImplementedError

    def done(self, seq: int) -> None:
        """The delivery handed over as ``seq`` is handled: acknowledged."""
        self.switch.local_done(self, seq)

    def render(self, d: Delivery) -> str:
        """The output message text of a delivery (PROTOCOL part 3)."""
        return self.switch.render(d)


class SwitchControl:
    """Local services and operator commands of the switch (see the module)."""

    # What the switch provides (server/switch.py).
    config: Config
    engine: Engine
    cluster: Cluster | None
    connections: set[LinkConnection]
    _locals: dict[int, LocalEndpoint]
    _journal_open: bool

    def apply(self, effects: Iterable[fx.Effect]) -> None:
        """Carry out the engine's effects (the switch's)."""
        raise NotImplementedError

    def now(self) -> Now:
        """The clocks (the switch's)."""
        raise NotImplementedError

    def render(self, d: Delivery) -> str:
        """The output message text of a delivery (the switch's)."""
        raise NotImplementedError

    # -- operator commands ----------------------------------------------------------------

    def reload(self, cfg: Config) -> None:
        """Take a new directory, limits and hold rules without dropping unaffected links.

        Listeners and the data directory stay as started. A removed ORI is
        signed off; what is held for it stays in the journal.
        """
        cfg = cfg.model_copy(update={"listeners": self.config.listeners,
                                     "data_dir": self.config.data_dir})
        self.config = cfg
        self.apply(self.engine.reload(cfg, self.now()))
        high, low = self.engine.write_limits()
        for c in list(self.connections):
            if c.transport is not None and not c.transport.is_closing():
                c.transport.set_write_buffer_limits(high, low)

    def drop(self, ori: str) -> None:
        """Close the link signed on as ``ori``; what it was owed stays held."""
        self.apply(self.engine.drop(ori, self.now()))

    def unlock(self, target: str, by: str = "operator") -> list[dict[str, object]]:
        """Lift the lock-outs of an ORI or a source address (audited); what stays locked."""
        self.apply(self.engine.unlock(target, self.now(), by))
        return self.engine.lockouts(self.now())

    async def unlock_everywhere(self, target: str, by: str = "operator"
                                ) -> tuple[int, list[dict[str, object]]]:
        """:meth:`unlock`, on every node in cluster mode: (how many lock-outs were
        lifted, what stays locked). Raises StoreError when the cluster's database
        cannot be reached (audited as a failed unlock)."""
        if self.cluster is None:
            before = len(self.engine.lockouts(self.now()))
            remaining = self.unlock(target, by)
            return before - len(remaining), remaining
        try:
            lifted, remaining = await self.cluster.unlock(target)
        except Exception as e:
            self.apply(self.engine.unlocked(target, [], self.now(), by,
                                            error=type(e).__name__))
            raise
        self.apply(self.engine.unlocked(target, lifted, self.now(), by))
        return len(lifted), remaining

    # -- local services -------------------------------------------------------------------

    def attach(self, local: LocalEndpoint) -> None:
        """Make the in-process ``local`` the endpoint of its ORI (replacing a link).

        In cluster mode once this node holds its ORI (one node runs each service).
        """
        if self.cluster is not None:
            self.cluster.attach_local(local)
        else:
            self.attach_now(local)

    def attach_now(self, local: LocalEndpoint) -> None:
        """:meth:`attach` at once."""
        ep, effects = self.engine.attach_local(local.ori, self.now())
        local.endpoint = ep
        self._locals[ep.id] = local
        self.apply(effects)

    def local_of(self, ep: Endpoint) -> LocalEndpoint | None:
        """The in-process service behind ``ep``, if it is one."""
        return self._locals.get(ep.id)

    def detach(self, local: LocalEndpoint) -> None:
        """``local`` stops taking deliveries; what it had stays owed in the journal."""
        ep = local.endpoint
        if ep is not None:
            self._locals.pop(ep.id, None)
            self.apply(self.engine.detach_local(ep, self.now()))

    def local_done(self, local: LocalEndpoint, seq: int) -> None:
        """``local`` handled the delivery handed over as ``seq``."""
        if local.endpoint is not None:
            self.apply(self.engine.local_done(local.endpoint, seq, self.now()))

    def accept(self, link_ori: str, text: str,
               done: Callable[[BaseException | None], None] | None = None,
               reply_to: int | None = None) -> int:
        """Take one input message sent by ``link_ori`` (a local service); returns its id.

        ``done(error)`` runs once it is durable (error None) or failed. Raises
        RuntimeError when the journal is closed (the switch is stopping).
        ``reply_to``: the message it answers; an ER so sent marks that message
        refused (``rejected``, with the ER's reason) in the same commit.
        """
        if not self._journal_open:
            raise RuntimeError("journal is closed")
        msg_id, effects = self.engine.accept(link_ori, text, self.now(), done, reply_to)
        self.apply(effects)
        return msg_id
