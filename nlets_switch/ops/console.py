"""The operator console's actions, between the HTTP API and the engine.

Each action reads what it is about from the journal (in a thread, read-only),
asks the engine to do it (:mod:`nlets_switch.core.console`), and is audited
(``operator_action``: the token's name as subject, the action, the reason,
the delivery and message ids, never the text). Refusals are audited too.
The remove-status table is loaded into the engine when the switch starts
(:meth:`OperatorConsole.install`) and written here when an operator changes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from nlets_switch.core.console import HELD_STATES, REVIEW, ActionRefused, Item
from nlets_switch.log import get_logger
from nlets_switch.store.console import ConsoleStore, SqliteConsole

if TYPE_CHECKING:
    from nlets_switch.server.switch import Switch

log = get_logger("console")
T = TypeVar("T")

#: The switch's broadcasts (Nlets' own wording).
OUT_OF_SERVICE: Final = "NLETS TEMPORARILY OUT OF SERVICE UNTIL {hhmm} {zone}"
IN_SERVICE: Final = "NLETS IN SERVICE"
_HHMM: Final = re.compile(r"([01]\d|2[0-3])[0-5]\d")
_KEY: Final = re.compile(r"[A-Z]{2,3}")


def broadcast_text(kind: str, until: str | None, tz: Any, now: float | None = None) -> str:
    """The SM text of a broadcast; raises ValueError for a bad kind or time."""
    if kind == "in-service":
        return IN_SERVICE
    if kind != "out-of-service":
        raise ValueError("kind must be out-of-service or in-service")
    if until is None or not _HHMM.fullmatch(until):
        raise ValueError("out-of-service needs until as HHMM (0000-2359)")
    zone = datetime.fromtimestamp(time.time() if now is None else now, tz).tzname() or "UTC"
    return OUT_OF_SERVICE.format(hhmm=until, zone=zone)


class OperatorConsole:
    """The actions an operator takes on a running switch."""

    def __init__(self, switch: Switch) -> None:
        self.switch = switch

    def install(self) -> None:
        """Load the remove-status table into the engine when the switch starts."""
        self.switch.on_start.append(self._load)

    async def _load(self) -> None:
        removed = await asyncio.to_thread(self._read, lambda c: c.load_removed())
        self.switch.engine.controls.load_removed(removed)
        if removed:
            log.info("remove_status_loaded", oris=sorted(removed))

    # -- the journal ----------------------------------------------------------------

    @contextlib.contextmanager
    def _store(self, readonly: bool) -> Iterator[ConsoleStore]:
        """The console's queries on a fresh connection to the switch's store: the
        embedded journal (SQLite), or the PostgreSQL database of ``store.url``."""
        from nlets_switch.store.postgres_journal import PostgresJournal

        j = self.switch.journal
        if isinstance(j, PostgresJournal):
            from nlets_switch.store.postgres import open_pg_store
            from nlets_switch.store.postgres_console import PgConsole

            with open_pg_store(j.url, readonly=readonly) as pg:
                yield PgConsole(pg)
            return
        from nlets_switch.store import journal

        conn = journal.connect(j.path, readonly=readonly)
        try:
            yield SqliteConsole(conn)
        finally:
            conn.close()

    def _read(self, fn: Callable[[ConsoleStore], T]) -> T:
        with self._store(readonly=True) as c:
            return fn(c)

    def _write(self, fn: Callable[[ConsoleStore], None]) -> None:
        with self._store(readonly=False) as c:
            fn(c)

    async def items(self, *, ids: Sequence[int] = (), msg_id: int | None = None,
                    link: str | None = None, states: Sequence[str] = ()) -> list[Item]:
        """Deliveries and their messages, as the store has them now."""
        return await asyncio.to_thread(self._read, lambda c: c.items(
            ids=ids, msg_id=msg_id, link=link, states=states))

    async def queue(self) -> list[Item]:
        """The intervention queue: every delivery waiting for review."""
        return await self.items(states=(REVIEW,))

    async def held(self, destination: str) -> list[Item]:
        """What waits for ``destination``: owed (queued, held or sent) and held for review."""
        return await self.items(link=destination, states=(REVIEW, *HELD_STATES))

    async def edits(self, msg_id: int) -> list[dict[str, Any]]:
        """The edited versions of a message."""
        return await asyncio.to_thread(self._read, lambda c: c.edits(msg_id))

    async def removed(self) -> list[dict[str, Any]]:
        """The remove-status table."""
        return await asyncio.to_thread(self._read, lambda c: c.list_removed())

    # -- actions ----------------------------------------------------------------------

    def audit(self, who: str, outcome: str, action: str, reason: str, **detail: Any) -> None:
        """One ``operator_action`` record (never the text)."""
        self.switch.audit("operator_action", who, outcome, action=action, reason=reason,
                          component="console", **detail)

    async def _run(self, who: str, action: str, reason: str, items: list[Item],
                   call: Callable[[], Any], **detail: Any) -> Any:
        ids = [it.id for it in items]
        msgs = sorted({it.msg_id for it in items})
        try:
            result = call()
        except ActionRefused as e:
            self.audit(who, "failure", action, reason, deliveries=ids, messages=msgs,
                       error=str(e), **detail)
            raise
        effects = result[1] if isinstance(result, tuple) else result
        self.switch.apply(effects)
        self.audit(who, "success", action, reason, deliveries=ids, messages=msgs, **detail)
        await self.durable()
        return result[0] if isinstance(result, tuple) else None

    async def durable(self) -> None:
        """Wait until what the engine gathered so far is in the journal (an action is
        answered "done" only then, so a reader of the queue sees it)."""
        fut: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

        def done(error: BaseException | None) -> None:
            if not fut.done():
                fut.set_result(error)

        self.switch.apply(self.switch.engine.when_durable(done))
        error = await asyncio.wait_for(fut, timeout=30)
        if error is not None:
            raise ActionRefused(f"the journal did not take it ({type(error).__name__})")

    async def release(self, items: list[Item], who: str, reason: str) -> None:
        """Release items of the intervention queue."""
        eng = self.switch.engine
        await self._run(who, "release", reason, items,
                  lambda: eng.release(items, who, reason, self.switch.now()))

    async def release_held(self, items: list[Item], who: str,
                           reason: str) -> dict[str, list[int]]:
        """Release what is held for a destination (core/console.py ``release_held``)."""
        eng = self.switch.engine
        result: dict[str, list[int]] = await self._run(
            who, "release", reason, items,
            lambda: eng.release_held(items, who, reason, self.switch.now()), held=True)
        return result

    async def reroute(self, items: list[Item], to: str, who: str, reason: str) -> None:
        """Send items to ``to`` instead."""
        eng = self.switch.engine
        await self._run(who, "reroute", reason, items,
                  lambda: eng.reroute(items, to, who, reason, self.switch.now()), to=to)

    async def purge(self, items: list[Item], who: str, reason: str) -> None:
        """Drop items (SM .04. to their senders)."""
        eng = self.switch.engine
        await self._run(who, "purge", reason, items,
                  lambda: eng.purge(items, who, reason, self.switch.now()))

    async def resend(self, items: list[Item], who: str, reason: str) -> None:
        """Deliver delivered items again."""
        eng = self.switch.engine
        await self._run(who, "resend", reason, items,
                  lambda: eng.resend(items, who, reason, self.switch.now()))

    async def edit(self, items: list[Item], body: str, who: str, reason: str) -> int:
        """Keep an edited text beside the original; returns the edited message's id."""
        eng = self.switch.engine
        new_id: int = await self._run(who, "edit", reason, items,
                                lambda: eng.edit(items, body, who, reason, self.switch.now()))
        return new_id

    async def remove_status(self, ori: str, keys: Sequence[str] | None, lift: bool, who: str,
                            reason: str) -> None:
        """Put ``ori`` on remove status, or lift it; kept in the journal."""
        if keys is not None:
            bad = [k for k in keys if not _KEY.fullmatch(k)]
            if bad:
                raise ActionRefused(f"not a message key: {', '.join(bad)}")
        eng = self.switch.engine
        detail: dict[str, Any] = {"ori": ori, "keys": list(keys) if keys else None}
        try:
            effects = eng.remove_status(ori, keys, lift, who, reason, self.switch.now())
        except ActionRefused as e:
            self.audit(who, "failure", "lift_remove_status" if lift else "remove_status", reason,
                       error=str(e), **detail)
            raise
        if lift:
            await asyncio.to_thread(self._write, lambda c: c.delete_removed(ori))
        else:
            await asyncio.to_thread(self._write, lambda c: c.save_removed(
                ori, keys, time.time(), who, reason))
        self.switch.apply(effects)
        self.audit(who, "success", "lift_remove_status" if lift else "remove_status", reason,
                   **detail)

    async def broadcast(self, kind: str, until: str | None, who: str,
                        reason: str) -> list[str]:
        """Send a broadcast SM to every signed-on terminal; returns their ORIs."""
        text = broadcast_text(kind, until, self.switch.config.tz)
        sent, effects = self.switch.engine.broadcast(text, who, reason, self.switch.now())
        self.switch.apply(effects)
        self.audit(who, "success", "broadcast", reason, kind=kind, until=until, to=sent)
        await self.durable()
        return sent
