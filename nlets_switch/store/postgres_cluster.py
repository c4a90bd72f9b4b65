"""Cluster mode on PostgreSQL: the node registry, link ownership by advisory locks, wake-ups.

Several switch nodes share one database (docs/cluster.md). What they share
beyond the journal's tables is here:

* **Nodes.** Each node has a name (``--node-id``) and holds a session-level
  advisory lock on it (:func:`lock_key`) for as long as it runs: a second
  node with the same name cannot take it and refuses to start. The ``nodes``
  table keeps each node's address, start and heartbeat times and its id
  ``slot`` (message and delivery ids are ``k * ID_STRIDE + slot``, so nodes
  never hand out the same id). Whether a node is *alive* is whether its
  lock is still held: it dies with the node's database session.
* **One ORI, one link.** The node whose link (or in-process service) has an
  ORI holds a session-level advisory lock on the ORI, on the node's own
  connection, and a row in ``node_links``. A sign-on elsewhere asks the
  holder to let go (``NOTIFY nlets_drop``) and retries the lock briefly.
* **Wake-ups.** A batch that makes deliveries durable for ORIs not signed on
  at its node notifies ``nlets_wake`` in the same transaction (delivered on
  commit only); the node holding such an ORI reads back what is owed to it.

:class:`~nlets_switch.store.postgres_node.ClusterNode` runs all of this on
a thread of its own; this module has the statements.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, NamedTuple

from nlets_switch.errors import StoreError
from nlets_switch.store.records import Claim

#: Ids of a cluster node are ``k * ID_STRIDE + slot``: at most this many node names.
ID_STRIDE: Final = 64
#: LISTEN/NOTIFY channels: an ORI's holder is asked to let it go; deliveries are owed.
DROP_CHANNEL: Final = "nlets_drop"
WAKE_CHANNEL: Final = "nlets_wake"
PRESENCE_CHANNEL: Final = "nlets_presence"
#: NOTIFY payloads are at most 8000 bytes; wake-ups are split below that.
_PAYLOAD_MAX: Final = 7000
#: The transaction-level lock that serialises slot assignment ("nlets-nd").
_REGISTRY_LOCK: Final = 0x6E6C6574732D6E64


class NodeRow(NamedTuple):
    """One node of the cluster, as operators see it.

    ``alive``: its session still holds its node lock. ``links``: the ORIs it
    holds (empty for a node that is not alive).
    """

    node_id: str
    address: str
    started_at: float
    heartbeat_at: float
    alive: bool
    links: tuple[str, ...]


def lock_key(kind: str, name: str) -> int:
    """The advisory lock key (a signed 64-bit number) of a node or an ORI."""
    digest = hashlib.blake2b(f"nlets:{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_ALIVE: Final = (
    "EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted "
    "AND l.objsubid = 1 AND l.classid::bigint = ((n.lock_key >> 32) & 4294967295) "
    "AND l.objid::bigint = (n.lock_key & 4294967295))")


def register_node(conn: Any, node_id: str, address: str, now: float) -> int:
    """Take the node's lock and its row; returns its id slot.

    Raises StoreError (one line) when a node with this name runs already.
    ``conn`` is the node's own autocommit connection: the lock lives as long
    as its session.
    """
    key = lock_key("node", node_id)
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()[0]:
        raise StoreError(f"node id {node_id!r} is running already on this database; "
                         "choose another --node-id (or stop that node)")
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_REGISTRY_LOCK,))
        row = conn.execute("SELECT slot FROM nodes WHERE node_id = %s", (node_id,)).fetchone()
        if row is not None:
            slot = int(row[0])
        else:
            used = {int(r[0]) for r in conn.execute("SELECT slot FROM nodes").fetchall()}
            free = [s for s in range(ID_STRIDE) if s not in used]
            if not free:
                raise StoreError(f"more than {ID_STRIDE} node ids used on this database; "
                                 "reuse one (DELETE FROM nodes WHERE node_id = ... frees one)")
            slot = free[0]
        conn.execute(
            "INSERT INTO nodes (node_id, address, lock_key, slot, started_at, heartbeat_at, "
            "stopped_at) VALUES (%s, %s, %s, %s, %s, %s, NULL) ON CONFLICT (node_id) DO UPDATE "
            "SET address = excluded.address, lock_key = excluded.lock_key, "
            "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
            "stopped_at = NULL", (node_id, address, key, slot, now, now))
        # What a previous run of this node held is not held any more.
        conn.execute("DELETE FROM node_links WHERE node_id = %s", (node_id,))
    return slot


def heartbeat(conn: Any, node_id: str, now: float) -> None:
    """The node is running at ``now``."""
    conn.execute("UPDATE nodes SET heartbeat_at = %s WHERE node_id = %s", (now, node_id))


def node_stopped(conn: Any, node_id: str, now: float) -> None:
    """The node stops: what it held is free (its locks go with its session)."""
    with conn.transaction():
        conn.execute("DELETE FROM node_links WHERE node_id = %s", (node_id,))
        conn.execute("UPDATE nodes SET stopped_at = %s WHERE node_id = %s", (now, node_id))


def try_lock_ori(conn: Any, node_id: str, ori: str, now: float) -> Claim | None:
    """Take the lock on ``ori`` if it is free; None when another node holds it."""
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key("ori", ori),)
                        ).fetchone()[0]:
        return None
    conn.execute("INSERT INTO node_links (ori, node_id, since) VALUES (%s, %s, %s) "
                 "ON CONFLICT (ori) DO UPDATE SET node_id = excluded.node_id, "
                 "since = excluded.since", (ori, node_id, now))
    conn.execute("SELECT pg_notify(%s, %s)", (PRESENCE_CHANNEL, f"+ {node_id} {ori}"))
    return claim_floor(conn, ori)


def claim_floor(conn: Any, ori: str) -> Claim:
    """The highest ids in the database, and ``ori``'s input counter."""
    mid = conn.execute("SELECT COALESCE(MAX(id), 0) FROM messages").fetchone()[0]
    did = conn.execute("SELECT COALESCE(MAX(id), 0) FROM deliveries").fetchone()[0]
    # Each node keeps its own row of a counter (name@node): the highest counts.
    n = conn.execute("SELECT MAX(value) FROM counters WHERE name = %s OR name LIKE %s",
                     (f"in:{ori}", f"in:{ori}@%")).fetchone()[0]
    return Claim(int(mid), int(did), {f"in:{ori}": int(n)} if n is not None else {})


def unlock_ori(conn: Any, node_id: str, ori: str) -> None:
    """Let go of ``ori``."""
    conn.execute("DELETE FROM node_links WHERE ori = %s AND node_id = %s", (ori, node_id))
    conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key("ori", ori),))
    conn.execute("SELECT pg_notify(%s, %s)", (PRESENCE_CHANNEL, f"- {node_id} {ori}"))


def ask_to_drop(conn: Any, node_id: str, ori: str) -> None:
    """Ask whichever node holds ``ori`` to close its link (it signed on at ``node_id``)."""
    conn.execute("SELECT pg_notify(%s, %s)", (DROP_CHANNEL, f"{node_id} {ori}"))


def elsewhere(conn: Any, node_id: str) -> frozenset[str]:
    """The ORIs held by the other nodes that are alive."""
    return frozenset(r[0] for r in conn.execute(
        "SELECT nl.ori FROM node_links nl JOIN nodes n ON n.node_id = nl.node_id "
        f"WHERE nl.node_id <> %s AND {_ALIVE}", (node_id,)).fetchall())


def wake_payloads(node_id: str, oris: list[str]) -> list[str]:
    """``nlets_wake`` payloads naming ``oris`` (split to fit NOTIFY's limit)."""
    out: list[str] = []
    part: list[str] = []
    size = 0
    for ori in oris:
        if part and size + len(ori) + 1 > _PAYLOAD_MAX:
            out.append(f"{node_id} {','.join(part)}")
            part, size = [], 0
        part.append(ori)
        size += len(ori) + 1
    if part:
        out.append(f"{node_id} {','.join(part)}")
    return out


def notify_wake(conn: Any, payloads: list[str]) -> None:
    """Inside the batch's transaction: the wake-ups go out when it commits."""
    for p in payloads:
        conn.execute("SELECT pg_notify(%s, %s)", (WAKE_CHANNEL, p))


def nodes(store: Any) -> list[NodeRow]:
    """Every node of the cluster, alive or not, with the ORIs each holds (by name)."""
    conn = store.conn if hasattr(store, "conn") else store
    rows = conn.execute(
        f"SELECT n.node_id, n.address, n.started_at, n.heartbeat_at, {_ALIVE}, "
        "COALESCE(array_agg(nl.ori ORDER BY nl.ori) FILTER (WHERE nl.ori IS NOT NULL), "
        "'{}') FROM nodes n LEFT JOIN node_links nl ON nl.node_id = n.node_id "
        "GROUP BY n.node_id ORDER BY n.node_id").fetchall()
    return [NodeRow(str(r[0]), str(r[1]), float(r[2]), float(r[3]), bool(r[4]),
                    tuple(r[5]) if r[4] else ()) for r in rows]
