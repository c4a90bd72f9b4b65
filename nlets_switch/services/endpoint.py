"""An endpoint in the switch's own process, and how such an endpoint sends.

:class:`InProcessEndpoint` is the base of every local service
(:class:`~nlets_switch.services.local.ServiceEndpoint`, the NL service): a
task per delivery, acknowledged when its handler is done, so at most
``window`` handlers run at once per ORI (PROTOCOL part 1).
"""

from __future__ import annotations

import asyncio

from nlets_switch.core.delivery import Delivery
from nlets_switch.log import get_logger
from nlets_switch.server.control import LocalEndpoint
from nlets_switch.server.switch import Switch

log = get_logger("services")


class InProcessEndpoint(LocalEndpoint):
    """An endpoint in this process: a task per delivery, acknowledged when done."""

    def __init__(self, switch: Switch, ori: str) -> None:
        super().__init__(switch, ori)
        self.tasks: set[asyncio.Task[None]] = set()
        self.log = log.bind(ori=ori)

    def transmit(self, seq: int, p: Delivery) -> None:
        """Run the delivery's handler in a task; it is acknowledged when that ends."""
        task = asyncio.get_running_loop().create_task(self._run(seq, p),
                                                      name=f"svc-{self.ori}-{p.id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, seq: int, p: Delivery) -> None:
        try:
            await self.deliver(p)
        except asyncio.CancelledError:
            raise  # stopping: the delivery stays owed in the journal
        except Exception as e:  # one bad delivery must not stop the service
            self.log.error("service_failed", mke=p.key, msg_id=p.msg_id,
                           error=type(e).__name__)
        self.done(seq)

    async def deliver(self, p: Delivery) -> None:
        """Handle one delivery (to be provided)."""
        raise NotImplementedError

    async def send(self, link_ori: str, text: str, reply_to: int | None = None) -> None:
        """Give an input message to the switch as ``link_ori``; wait until it is journaled.

        ``reply_to``: the message it answers (an ER refuses it: :func:`send_local`)."""
        await send_local(self.switch, link_ori, text, reply_to)

    async def close(self) -> None:
        """Detach and cancel running handlers; what they had stays owed in the journal."""
        self.switch.detach(self)
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def send_local(switch: Switch, link_ori: str, text: str,
                     reply_to: int | None = None) -> None:
    """``switch.accept`` as a coroutine that ends when the message is durable.

    ``reply_to``: the id of the message this one answers. An ER sent so refuses
    that message: the log shows it refused, with the ER it caused (issue 14).
    """
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def done(exc: BaseException | None) -> None:
        if fut.done():
            return
        if exc is not None:
            fut.set_exception(ConnectionError(f"journal write failed: {type(exc).__name__}"))
        else:
            fut.set_result(None)

    try:
        switch.accept(link_ori, text, done, reply_to)
    except RuntimeError as e:  # the journal is closed: the switch is stopping
        raise ConnectionError(str(e)) from None
    await fut


