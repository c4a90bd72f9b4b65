"""What operators see of a cluster: every node, alive or not, and this node's database.

A switch on PostgreSQL (docs/cluster.md) asks the store every
:data:`REFRESH_S` seconds, through its journal, for the node registry
(:func:`nlets_switch.store.postgres_cluster.nodes`: each node, whether its
session still holds its lock, the ORIs it holds). The answer goes into the
stats snapshot (``status``, the dashboard, ``/api/stats``), ``/metrics``
and, per node, MQTT (``<prefix>/<switch>/nodes/<node>``, retained).

The same query is this node's probe of its database: a node whose database
is gone says so at once, even without traffic: one log line
(``database_lost``, then ``database_back`` with how long it was gone), a
``node`` event (MQTT: its node topic says ``"database": "down"``), and the
metric ``nlets_database_up`` 0. While the database is gone the registry is
the last one read, marked ``stale``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any, Final

from nlets_switch.log import get_logger
from nlets_switch.store import postgres_cluster as pc

if TYPE_CHECKING:
    from nlets_switch.ops.monitor import Event, Monitor
    from nlets_switch.server.switch import Switch

#: Seconds between two reads of the registry (and probes of the database).
REFRESH_S: Final = 2.0
#: A read that takes longer than this counts as the database being gone.
TIMEOUT_S: Final = 10.0

log = get_logger("cluster")

__all__ = ["REFRESH_S", "ClusterView", "wants_view"]


def wants_view(switch: Switch) -> bool:
    """Whether ``switch`` is on PostgreSQL (the only store with nodes and a database
    that can go away under a running switch)."""
    return hasattr(switch.journal, "url")


class ClusterView:
    """The node registry as last read, and whether this node reaches its database.

    :meth:`start` it on the loop; :meth:`stop` before the journal closes.
    """

    def __init__(self, switch: Switch, monitor: Monitor) -> None:
        self.switch = switch
        self.monitor = monitor
        #: This node's name ("" for a switch on PostgreSQL that is no cluster node).
        self.node_id = switch.config.store.node_id or ""
        self.nodes: list[pc.NodeRow] = []
        self.database_up = True
        self.read_at: float | None = None
        self._down_since: float | None = None
        self._task: asyncio.Task[None] | None = None
        #: Set after each read (or failed read): tests and the first snapshot wait on it.
        self.refreshed = asyncio.Event()

    def start(self) -> None:
        """Read the registry now and every :data:`REFRESH_S` seconds."""
        self._task = asyncio.create_task(self._run(), name="cluster-view")

    async def stop(self) -> None:
        """Stop reading."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(REFRESH_S)

    async def refresh(self) -> None:
        """Read the registry once; a failure means the database is gone."""
        try:
            rows = await asyncio.wait_for(self.switch.journal.call(pc.nodes), TIMEOUT_S)
        except RuntimeError:
            return  # the journal is closed: the switch stops
        except Exception as e:  # unreachable, lost, timed out: all say "gone"
            self._database(False, e)
        else:
            self.nodes = rows
            self.read_at = time.time()
            self._database(True, None)
        self.refreshed.set()

    def _database(self, up: bool, error: BaseException | None) -> None:
        if up == self.database_up:
            return
        self.database_up = up
        if up:
            gone = time.monotonic() - (self._down_since or time.monotonic())
            self._down_since = None
            log.warning("database_back", node=self.node_id or None,
                        database=self.switch.journal.path, after_s=round(gone, 1))
        else:
            self._down_since = time.monotonic()
            log.error("database_lost", node=self.node_id or None,
                      database=self.switch.journal.path,
                      error=type(error).__name__ if error else None)
        self.monitor.publish(self.presence())

    # -- what operators see ----------------------------------------------------------

    def links_here(self) -> int:
        """The links (and in-process services) signed on at this node."""
        return len(self.switch.engine.links)

    def presence(self, state: str = "online") -> Event:
        """This node's ``node`` event (its MQTT node topic's payload)."""
        return {"event": "node", "node": self.node_id, "state": state,
                "database": "up" if self.database_up else "down",
                "links": self.links_here(), "ts": round(time.time(), 3)}

    def snapshot(self) -> Event:
        """The ``cluster`` part of the stats snapshot: this node, its database, and every
        node of the registry (alive or not, with how many ORIs it holds)."""
        return {
            "node": self.node_id or None,
            "database": "up" if self.database_up else "down",
            "stale": not self.database_up,
            "read_at": self.read_at,
            "nodes": [{"node": n.node_id, "address": n.address, "alive": n.alive,
                       "links": len(n.links), "started_at": n.started_at,
                       "heartbeat_at": n.heartbeat_at} for n in self.nodes],
        }

    def metric_rows(self) -> list[tuple[str, bool, int]]:
        """(node, alive, links) of every node, for ``/metrics``."""
        return [(n.node_id, n.alive, len(n.links)) for n in self.nodes]


def describe(snapshot: dict[str, Any]) -> list[str]:
    """The ``cluster`` part of a stats snapshot as lines for ``status``."""
    lines = [f"database {snapshot.get('database', '?')}"
             + (" (the nodes below as last read)" if snapshot.get("stale") else "")
             + (f"; this node: {snapshot['node']}" if snapshot.get("node") else "")]
    nodes = snapshot.get("nodes") or []
    if nodes:
        rows = [("NODE", "STATE", "LINKS", "ADDRESS")]
        rows += [(str(n["node"]), "alive" if n.get("alive") else "down",
                  str(n.get("links", 0)), str(n.get("address") or "-")) for n in nodes]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                  for r in rows]
    return lines
