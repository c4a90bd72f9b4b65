"""The audit trail's table in SQLite: appending in chain order, reading back, the anchor.

The chain itself (the HMAC, the canonical form) belongs to
:mod:`nlets_switch.ops.audit`; this module only promises that a record's MAC
is computed from the previous record *as committed*, under the write lock,
so the chain follows commit order even when another process (a command-line
tool) appends at the same time.

The retention anchor lives in the ``meta`` row :data:`ANCHOR_KEY` as JSON
``{"id": ..., "mac": ..., "tag": ...}``.

Ids are never reused (issue 11): the highest id ever given is kept in the
``meta`` row :data:`HIGH_KEY`, updated with each insert, and the next id is
one above the highest of it, the newest row and the anchor. Removing the
newest rows then leaves a gap the next record (and ``audit verify``) shows.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any, Final

from nlets_switch.errors import CorruptRecord, StoreError
from nlets_switch.store._sqlite import has_table, translated, write_transaction
from nlets_switch.store.base import AuditAnchor, AuditEvent, AuditRecord, Seal
from nlets_switch.store.schema import migrate

#: The ``meta`` row holding the retention anchor.
ANCHOR_KEY: Final = "audit_anchor"
#: The ``meta`` row holding the highest audit id ever given.
HIGH_KEY: Final = "audit_high"

_COLUMNS: Final = "id, ts, component, type, subject, outcome, detail, mac"


def _record(r: Sequence[Any]) -> AuditRecord:
    # str(): a value someone wrote by hand with another type must still reach
    # the MAC check (and fail it), not crash the reader.
    return AuditRecord(id=int(r[0]), ts=str(r[1]), component=str(r[2]), type=str(r[3]),
                       subject=str(r[4]), outcome=str(r[5]), detail=str(r[6]), mac=str(r[7]))


def read_anchor(conn: sqlite3.Connection) -> AuditAnchor | None:
    """The retention anchor (None when nothing was pruned); CorruptRecord if unreadable."""
    if not has_table(conn, "meta"):
        return None
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (ANCHOR_KEY,)).fetchone()
    if row is None:
        return None
    try:
        a = json.loads(row[0])
        return AuditAnchor(id=int(a["id"]), mac=str(a["mac"]), tag=str(a.get("tag", "")))
    except (ValueError, TypeError, KeyError, AttributeError):
        raise CorruptRecord("the audit trail's retention anchor is unreadable") from None


def write_anchor(conn: sqlite3.Connection, anchor: AuditAnchor) -> None:
    """Make ``anchor`` the chain's start (inside the caller's transaction)."""
    conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE "
                 "SET value = excluded.value",
                 (ANCHOR_KEY, json.dumps({"id": anchor.id, "mac": anchor.mac,
                                          "tag": anchor.tag})))


def read_high(conn: sqlite3.Connection) -> int:
    """The highest audit id ever given (0 when none, or on a journal older than it)."""
    if not has_table(conn, "meta"):
        return 0
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (HIGH_KEY,)).fetchone()
    try:
        return int(row[0]) if row is not None else 0
    except (TypeError, ValueError):
        return 0


class SqliteAudit:
    """:class:`~nlets_switch.store.base.AuditStore` on a SQLite connection."""

    __slots__ = ()
    conn: sqlite3.Connection

    @translated
    def append_audit(self, event: AuditEvent, seal: Seal) -> AuditRecord:
        """Append ``event`` as the next link of the chain (see the protocol)."""
        conn = self.conn
        with write_transaction(conn):
            # The switch's journal may predate the audit table (schema version 1).
            migrate(conn)
            last = conn.execute("SELECT id, mac FROM audit ORDER BY id DESC LIMIT 1").fetchone()
            if last is not None:
                prev_id, prev_mac = int(last[0]), str(last[1])
            else:
                anchor = read_anchor(conn)
                prev_id, prev_mac = (anchor.id, anchor.mac) if anchor is not None else (0, "")
            # Never an id given before, even when its row is gone.
            new_id = max(prev_id, read_high(conn)) + 1
            rec = AuditRecord(new_id, event.ts, event.component, event.type,
                              event.subject, event.outcome, event.detail,
                              seal(new_id, prev_mac))
            conn.execute(f"INSERT INTO audit ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?)",
                         (rec.id, rec.ts, rec.component, rec.type, rec.subject, rec.outcome,
                          rec.detail, rec.mac))
            conn.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) "
                         "DO UPDATE SET value = excluded.value", (HIGH_KEY, str(new_id)))
        return rec

    def audit_records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first, read lazily."""
        try:
            if not has_table(self.conn, "audit"):
                return
            for r in self.conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY id"):
                yield _record(r)
        except sqlite3.Error as e:
            raise StoreError(f"{type(e).__name__}: {e}") from e

    @translated
    def audit_anchor(self) -> AuditAnchor | None:
        """The retention anchor, or None."""
        return read_anchor(self.conn)

    @translated
    def audit_high(self) -> int:
        """The highest audit id ever given (see :data:`HIGH_KEY`)."""
        return read_high(self.conn)

    @translated
    def last_audit_record(self) -> AuditRecord | None:
        """The newest record, or None."""
        if not has_table(self.conn, "audit"):
            return None
        r = self.conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY id DESC LIMIT 1"
                              ).fetchone()
        return None if r is None else _record(r)

    @translated
    def list_audit_records(self, *, type: str | None = None, subject: str | None = None,
                           since: str | None = None, limit: int = 50) -> list[AuditRecord]:
        """Matching records, newest first."""
        if not has_table(self.conn, "audit"):
            return []
        conds, args = ["1"], []
        if type:
            conds.append("type = ?")
            args.append(type)
        if subject:
            conds.append("subject = ?")
            args.append(subject)
        if since:
            conds.append("ts >= ?")
            args.append(since)
        rows = self.conn.execute(f"SELECT {_COLUMNS} FROM audit WHERE {' AND '.join(conds)} "
                                 "ORDER BY id DESC LIMIT ?", [*args, limit]).fetchall()
        return [_record(r) for r in rows]
