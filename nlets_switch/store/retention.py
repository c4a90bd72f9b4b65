"""Retention's deletions in SQLite: old closed messages, and a prefix of the audit chain.

Neither touches ``counters``: the id high-water marks survive an emptied log,
so message ids are never reused (the switch recovers them from there).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Final

from nlets_switch.store._sqlite import has_table, translated, write_transaction
from nlets_switch.store.audit import write_anchor
from nlets_switch.store.base import OPEN_STATES, AuditAnchor, PrunedMessages

# Literal, not bound, like the partial index deliveries_open's own condition.
_OPEN: Final = "(" + ",".join(f"'{s}'" for s in OPEN_STATES) + ")"
#: Ids per DELETE statement (SQLite's bound on parameters is 999 on old builds).
_CHUNK: Final = 500


class SqliteRetention:
    """:class:`~nlets_switch.store.base.RetentionStore` on a SQLite connection."""

    __slots__ = ()
    conn: sqlite3.Connection

    @translated
    def prune_messages(self, before: float, limit: int) -> PrunedMessages:
        """Remove up to ``limit`` closed messages received before ``before``."""
        conn = self.conn
        if not has_table(conn, "messages"):
            return PrunedMessages()
        with write_transaction(conn):
            ids = [r[0] for r in conn.execute(
                f"SELECT m.id FROM messages m WHERE m.received_at < ? AND NOT EXISTS ("
                f"SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.state IN {_OPEN}) "
                f"ORDER BY m.id LIMIT ?", (before, limit))]
            n_dlv = 0
            for i in range(0, len(ids), _CHUNK):
                chunk = ids[i:i + _CHUNK]
                marks = ",".join("?" * len(chunk))
                n_dlv += conn.execute(f"DELETE FROM deliveries WHERE msg_id IN ({marks})",
                                      chunk).rowcount
                conn.execute(f"DELETE FROM messages WHERE id IN ({marks})", chunk)
        return PrunedMessages(len(ids), n_dlv)

    @translated
    def prune_audit(self, before: str, tag: Callable[[int, str], str]) -> int:
        """Remove the audit chain's prefix stamped before ``before``; anchor the rest."""
        conn = self.conn
        if not has_table(conn, "audit"):
            return 0
        with write_transaction(conn):
            # Only a prefix of the chain may go: stop at the first record that is
            # still young, even if an older-stamped one was committed after it.
            young = conn.execute("SELECT MIN(id) FROM audit WHERE ts >= ?",
                                 (before,)).fetchone()[0]
            where, args = ("id < ?", [young]) if young is not None else ("1", [])
            last = conn.execute(f"SELECT id, mac FROM audit WHERE {where} ORDER BY id DESC "
                                "LIMIT 1", args).fetchone()
            if last is None:
                return 0
            rid, mac = int(last[0]), str(last[1])
            write_anchor(conn, AuditAnchor(rid, mac, tag(rid, mac)))
            return int(conn.execute("DELETE FROM audit WHERE id <= ?", (rid,)).rowcount)
