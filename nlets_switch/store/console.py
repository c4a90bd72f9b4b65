"""The operator console's reads and its one table: queues, items, remove status.

Reads run on a read-only journal connection in a worker thread (as the
message log's do); the remove-status table is written by the HTTP server's
own short write transaction (an operator's action is rare; the journal's
writer takes custody traffic). Nothing here returns message text unless the
caller asks for it (``items``, for the engine and for a token with
``see_text``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from nlets_switch.core.console import Item
from nlets_switch.store._sqlite import translated, write_transaction
from nlets_switch.store.schema import migrate

_ITEM_COLUMNS: Final = (
    "d.id, d.msg_id, d.link, d.receiver, d.addressed, d.state, d.priority, d.expires_at, "
    "m.key, m.origin, m.link, m.control, m.received_at, m.input_no, m.body_start, "
    "ns_open(m.text, m.id)")  # text sealed at rest (store/textcrypt.py)


def _item(r: Sequence[Any]) -> Item:
    return Item(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8] or "", r[9] or "",
                r[10], r[11], r[12], r[13] or 0, r[14], r[15])


@translated
def items(conn: sqlite3.Connection, *, ids: Sequence[int] = (), msg_id: int | None = None,
          link: str | None = None, states: Sequence[str] = ()) -> list[Item]:
    """Deliveries (with their messages) by id, by message or by link, in given states."""
    where: list[str] = []
    args: list[Any] = []
    if ids:
        where.append(f"d.id IN ({','.join('?' * len(ids))})")
        args += list(ids)
    if msg_id is not None:
        where.append("d.msg_id = ?")
        args.append(msg_id)
    if link is not None:
        where.append("(d.link = ? OR d.receiver = ? OR d.addressed = ?)")
        args += [link, link, link]
    if states:
        where.append(f"d.state IN ({','.join('?' * len(states))})")
        args += list(states)
    sql = (f"SELECT {_ITEM_COLUMNS} FROM deliveries d JOIN messages m ON m.id = d.msg_id "
           f"WHERE {' AND '.join(where) or '1'} ORDER BY d.id LIMIT 10000")
    return [_item(r) for r in conn.execute(sql, args)]


def describe(it: Item, with_text: bool) -> dict[str, Any]:
    """An item as the API shows it (``text`` only when asked)."""
    out: dict[str, Any] = {
        "id": it.id, "msg_id": it.msg_id, "key": it.key, "origin": it.origin,
        "sender_link": it.sender_link, "control": it.control, "to": it.addressed,
        "receiver": it.receiver, "link": it.link, "state": it.state,
        "received_at": it.received_at}
    if with_text:
        out["text"] = it.text
    return out


@translated
def held_by_destination(conn: sqlite3.Connection) -> dict[str, int]:
    """How many deliveries wait in review, per destination link."""
    return {str(r[0]): int(r[1]) for r in conn.execute(
        "SELECT link, COUNT(*) FROM deliveries WHERE state = 'review' GROUP BY link")}


@translated
def edits(conn: sqlite3.Connection, msg_id: int) -> list[dict[str, Any]]:
    """The edited versions of a message (ids, time, who), oldest first, without text."""
    return [{"msg_id": r[0], "at": r[1], "reason": r[2]} for r in conn.execute(
        "SELECT id, received_at, reason FROM messages WHERE reply_to = ? AND status = 'edited' "
        "ORDER BY id", (msg_id,))]


# -- remove status ------------------------------------------------------------------


@translated
def load_removed(conn: sqlite3.Connection) -> dict[str, frozenset[str] | None]:
    """ORI -> the keys it is removed for (None: every key)."""
    try:
        rows = conn.execute("SELECT ori, keys FROM remove_status").fetchall()
    except sqlite3.OperationalError:
        return {}  # a journal of an older version, read-only: nothing is removed
    return {str(r[0]): (frozenset(r[1].split(",")) if r[1] else None) for r in rows}


@translated
def list_removed(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """The remove-status table, for the API."""
    try:
        rows = conn.execute("SELECT ori, keys, since, operator, reason FROM remove_status "
                            "ORDER BY ori").fetchall()
    except sqlite3.OperationalError:
        return []
    return [{"ori": r[0], "keys": r[1].split(",") if r[1] else None, "since": r[2],
             "operator": r[3], "reason": r[4]} for r in rows]


@translated
def save_removed(conn: sqlite3.Connection, ori: str, keys: Sequence[str] | None, since: float,
                 operator: str, reason: str) -> None:
    """Keep ``ori``'s remove status (replacing an earlier one)."""
    migrate(conn)  # a journal of an older version gains the table here
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO remove_status (ori, keys, since, operator, reason) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(ori) DO UPDATE SET keys = excluded.keys, "
            "since = excluded.since, operator = excluded.operator, reason = excluded.reason",
            (ori, ",".join(sorted(keys)) if keys else None, since, operator, reason))


@translated
def delete_removed(conn: sqlite3.Connection, ori: str) -> None:
    """Lift ``ori``'s remove status."""
    migrate(conn)
    with write_transaction(conn):
        conn.execute("DELETE FROM remove_status WHERE ori = ?", (ori,))
