"""The PostgreSQL store: every protocol of :mod:`nlets_switch.store.base` on a psycopg 3 connection.

The driver is the optional extra ``nlets-switch[postgres]`` (``psycopg``);
nothing imports it unless a ``postgresql://`` store is asked for.

Connections are in autocommit mode: a method that writes opens its own
transaction (``conn.transaction()``), which becomes a savepoint when the
caller's is open (a journal operation runs inside the writer's batch), so
the protocols' rule "joins the caller's transaction" holds. Every error of
the driver reaches callers as :class:`~nlets_switch.errors.StoreError`.

The audit chain's "no other writer appends in between" is a
transaction-level advisory lock (:data:`AUDIT_LOCK`, one per chain), held
until the append commits, so the chain follows commit order across processes.

In cluster mode each node keeps a chain of its own (the ``audit.node``
column, schema version 4): one chain would make every node's appends wait on
one lock, and a node's chain verifies without the others'. A store reads and
appends the chain of its :attr:`PostgresStore.node` (``""``: a switch that is
no cluster node, and every record written before version 4); each chain has
its own ids, retention anchor (meta ``audit_anchor[:node]``) and high-water
mark (``audit_high[:node]``). :meth:`PostgresStore.audit_nodes` lists them.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any, Final, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

from nlets_switch.errors import CorruptRecord, StoreError
from nlets_switch.store.audit import HIGH_KEY
from nlets_switch.store.base import (
    OPEN_STATES,
    AuditAnchor,
    AuditEvent,
    AuditRecord,
    HelpFile,
    OrionRecord,
    PrunedMessages,
    Seal,
)
from nlets_switch.store.postgres_msglog import PgMessageLog
from nlets_switch.store.postgres_schema import check_version, migrate

P = ParamSpec("P")
R = TypeVar("R")

#: URL schemes that select this store.
SCHEMES: Final = ("postgresql", "postgres")
#: The advisory lock key of the audit chain's appends ("nlets-au").
AUDIT_LOCK: Final = 0x6E6C6574732D6175
#: The ``meta`` row holding the audit trail's retention anchor (as in SQLite).
ANCHOR_KEY: Final = "audit_anchor"
#: Seconds to wait for a connection before calling the database unreachable.
CONNECT_TIMEOUT: Final = 5

_AUDIT_COLUMNS: Final = "id, ts, component, type, subject, outcome, detail, mac"
_HELP_COLUMNS: Final = "state, file, text, updated_at, updated_by"
_OPEN: Final = "(" + ",".join(f"'{s}'" for s in OPEN_STATES) + ")"


def is_postgres_url(url: str | None) -> bool:
    """Whether ``url`` names a PostgreSQL database (``postgresql://...``)."""
    return bool(url) and urlsplit(str(url)).scheme in SCHEMES


def redact(url: str) -> str:
    """``url`` without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host += f":{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def driver() -> Any:
    """The psycopg module; StoreError naming the extra when it is not installed."""
    try:
        import psycopg
    except ImportError:
        raise StoreError("a postgresql:// store needs the driver: pip install "
                         "'nlets-switch[postgres]'") from None
    return psycopg


def connect(url: str, *, application: str = "nlets-switch") -> Any:
    """An autocommit connection with what custody needs: ``synchronous_commit`` on, so a
    COMMIT returns only once the database made it durable (and replicated, when the
    server is configured for synchronous replication)."""
    psycopg = driver()
    try:
        # TCP keepalives: a database that vanished without closing the connection
        # (a network partition, a host powered off) is noticed in about 10 s rather
        # than the kernel's two hours, so senders hear N instead of waiting.
        return psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                               application_name=application,
                               options="-c synchronous_commit=on", keepalives=1,
                               keepalives_idle=5, keepalives_interval=2, keepalives_count=3,
                               tcp_user_timeout=10_000)
    except psycopg.Error as e:
        raise StoreError(f"{redact(url)}: cannot connect: {_reason(e)}") from e


def _reason(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[-1] if text else type(e).__name__


@contextlib.contextmanager
def translated_errors(where: str = "") -> Iterator[None]:
    """The driver's errors inside, raised as StoreError (prefixed with ``where``)."""
    try:
        yield
    except StoreError:
        raise
    except Exception as e:
        if type(e).__module__.startswith("psycopg"):
            prefix = f"{where}: " if where else ""
            raise StoreError(f"{prefix}{type(e).__name__}: {_reason(e)}") from e
        raise


def _translated(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with translated_errors():
            return fn(*args, **kwargs)

    return wrapper


def _record(r: Any) -> AuditRecord:
    return AuditRecord(id=int(r[0]), ts=str(r[1]), component=str(r[2]), type=str(r[3]),
                       subject=str(r[4]), outcome=str(r[5]), detail=str(r[6]), mac=str(r[7]))


def _chain_key(base: str, node: str) -> str:
    """The ``meta`` row of a chain's ``base`` value (anchor, high-water mark)."""
    return f"{base}:{node}" if node else base


def _chain_lock(node: str) -> int:
    """The advisory lock key of ``node``'s chain (:data:`AUDIT_LOCK` for ``""``)."""
    if not node:
        return AUDIT_LOCK
    import hashlib

    return int.from_bytes(hashlib.blake2b(f"nlets:audit:{node}".encode(), digest_size=8)
                          .digest(), "big", signed=True)


class PostgresStore(PgMessageLog):
    """:class:`~nlets_switch.store.base.Store` on one psycopg connection.

    Wrapping is free, so the journal's writer wraps its connection for each
    operation. Only a store made by :func:`open_pg_store` closes its connection.
    ``node``: the audit chain this store reads and appends (a cluster node's name;
    ``""`` for a switch that is no cluster node).
    """

    __slots__ = ("_owned", "conn", "node")

    def __init__(self, conn: Any, *, owned: bool = False, node: str = "") -> None:
        self.conn = conn
        self._owned = owned
        self.node = node

    def for_node(self, node: str) -> PostgresStore:
        """The same connection, reading and appending ``node``'s audit chain."""
        return PostgresStore(self.conn, node=node)

    def audit_nodes(self) -> list[str]:
        """The audit chains in the database, by node (``""`` first when there is one),
        counting those that retention emptied but whose ids were given."""
        with translated_errors():
            names = {str(r[0]) for r in self.conn.execute(
                "SELECT DISTINCT node FROM audit").fetchall()}
            for (name,) in self.conn.execute(
                    "SELECT name FROM meta WHERE name = %s OR name LIKE %s",
                    (HIGH_KEY, HIGH_KEY + ":%")).fetchall():
                names.add(str(name)[len(HIGH_KEY) + 1:])
        return sorted(names)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (a savepoint inside the caller's when one is open)."""
        with translated_errors(), self.conn.transaction():
            yield

    def close(self) -> None:
        """Close the connection if this store opened it."""
        if self._owned:
            self.conn.close()

    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, et: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- the audit trail ---------------------------------------------------

    def _anchor(self) -> AuditAnchor | None:
        row = self.conn.execute("SELECT value FROM meta WHERE name = %s",
                                (_chain_key(ANCHOR_KEY, self.node),)).fetchone()
        if row is None:
            return None
        try:
            a = json.loads(row[0])
            return AuditAnchor(id=int(a["id"]), mac=str(a["mac"]), tag=str(a.get("tag", "")))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise CorruptRecord("the audit trail's retention anchor is unreadable") from None

    def append_audit(self, event: AuditEvent, seal: Seal) -> AuditRecord:
        """Append ``event`` as the next link of the chain (see the protocol)."""
        with self.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_chain_lock(self.node),))
            last = self.conn.execute("SELECT id, mac FROM audit WHERE node = %s "
                                     "ORDER BY id DESC LIMIT 1", (self.node,)).fetchone()
            if last is not None:
                prev_id, prev_mac = int(last[0]), str(last[1])
            else:
                anchor = self._anchor()
                prev_id, prev_mac = (anchor.id, anchor.mac) if anchor is not None else (0, "")
            # Never an id given before, even when its row is gone (issue 11).
            new_id = max(prev_id, self._high()) + 1
            rec = AuditRecord(new_id, event.ts, event.component, event.type,
                              event.subject, event.outcome, event.detail,
                              seal(new_id, prev_mac))
            self.conn.execute(f"INSERT INTO audit (node, {_AUDIT_COLUMNS}) VALUES "
                              "(%s,%s,%s,%s,%s,%s,%s,%s,%s)", (self.node, *_fields(rec)))
            self.conn.execute("INSERT INTO meta (name, value) VALUES (%s, %s) ON CONFLICT "
                              "(name) DO UPDATE SET value = excluded.value",
                              (_chain_key(HIGH_KEY, self.node), str(new_id)))
        return rec

    def _high(self) -> int:
        row = self.conn.execute("SELECT value FROM meta WHERE name = %s",
                                (_chain_key(HIGH_KEY, self.node),)).fetchone()
        try:
            return int(row[0]) if row is not None else 0
        except (TypeError, ValueError):
            return 0

    def audit_high(self) -> int:
        """The highest audit id ever given (meta ``audit_high``)."""
        with translated_errors():
            return self._high()

    def audit_records(self) -> Iterator[AuditRecord]:
        """Every record, oldest first (fetched in pages)."""
        after = -1
        while True:
            with translated_errors():
                rows = self.conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE node = %s "
                                         "AND id > %s ORDER BY id LIMIT 1000",
                                         (self.node, after)).fetchall()
            if not rows:
                return
            for r in rows:
                yield _record(r)
            after = int(rows[-1][0])

    def audit_anchor(self) -> AuditAnchor | None:
        """The retention anchor, or None."""
        return self._anchor()

    def last_audit_record(self) -> AuditRecord | None:
        """The newest record, or None."""
        r = self.conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE node = %s "
                              "ORDER BY id DESC LIMIT 1", (self.node,)).fetchone()
        return None if r is None else _record(r)

    def list_audit_records(self, *, type: str | None = None, subject: str | None = None,
                           since: str | None = None, limit: int = 50) -> list[AuditRecord]:
        """Matching records, newest first."""
        conds, args = ["node = %s"], [self.node]
        for col, value in (("type", type), ("subject", subject)):
            if value:
                conds.append(f"{col} = %s")
                args.append(value)
        if since:
            conds.append("ts >= %s")
            args.append(since)
        rows = self.conn.execute(f"SELECT {_AUDIT_COLUMNS} FROM audit WHERE "
                                 f"{' AND '.join(conds)} ORDER BY id DESC LIMIT %s",
                                 [*args, limit]).fetchall()
        return [_record(r) for r in rows]

    # -- retention ---------------------------------------------------------

    def prune_messages(self, before: float, limit: int) -> PrunedMessages:
        """Remove up to ``limit`` closed messages received before ``before``."""
        with self.transaction():
            ids = [r[0] for r in self.conn.execute(
                "SELECT m.id FROM messages m WHERE m.received_at < %s AND NOT EXISTS ("
                f"SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.state IN {_OPEN}) "
                # Several nodes prune the same tables: each takes rows no other holds.
                "ORDER BY m.id LIMIT %s FOR UPDATE OF m SKIP LOCKED", (before, limit)).fetchall()]
            if not ids:
                return PrunedMessages()
            n_dlv = self.conn.execute("DELETE FROM deliveries WHERE msg_id = ANY(%s)",
                                      (ids,)).rowcount
            self.conn.execute("DELETE FROM messages WHERE id = ANY(%s)", (ids,))
        return PrunedMessages(len(ids), int(n_dlv))

    def prune_audit(self, before: str, tag: Callable[[int, str], str]) -> int:
        """Remove the audit chain's prefix stamped before ``before``; anchor the rest."""
        with self.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_chain_lock(self.node),))
            young = self.conn.execute("SELECT MIN(id) FROM audit WHERE node = %s AND ts >= %s",
                                      (self.node, before)).fetchone()[0]
            where, args = ("id < %s", [young]) if young is not None else ("TRUE", [])
            last = self.conn.execute(f"SELECT id, mac FROM audit WHERE node = %s AND {where} "
                                     "ORDER BY id DESC LIMIT 1", [self.node, *args]).fetchone()
            if last is None:
                return 0
            rid, mac = int(last[0]), str(last[1])
            anchor = {"id": rid, "mac": mac, "tag": tag(rid, mac)}
            self.conn.execute("INSERT INTO meta (name, value) VALUES (%s, %s) ON CONFLICT "
                              "(name) DO UPDATE SET value = excluded.value",
                              (_chain_key(ANCHOR_KEY, self.node), json.dumps(anchor)))
            return int(self.conn.execute("DELETE FROM audit WHERE node = %s AND id <= %s",
                                         (self.node, rid)).rowcount)

    # -- help files --------------------------------------------------------

    def help_file(self, state: str, file: str) -> HelpFile | None:
        """Help file ``file`` of ``state``, or None."""
        r = self.conn.execute(f"SELECT {_HELP_COLUMNS} FROM help_files WHERE state = %s "
                              "AND file = %s", (state, file)).fetchone()
        if r is None:
            return None
        return HelpFile(str(r[0]), str(r[1]), str(r[2]), float(r[3]), str(r[4]))

    def put_help_file(self, hf: HelpFile) -> None:
        """Write ``hf``, replacing the file of that state and name."""
        with self.transaction():
            self.conn.execute(
                f"INSERT INTO help_files ({_HELP_COLUMNS}) VALUES (%s,%s,%s,%s,%s) "
                "ON CONFLICT (state, file) DO UPDATE SET text = excluded.text, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (hf.state, hf.file, hf.text, hf.updated_at, hf.updated_by))

    def delete_help_file(self, state: str, file: str) -> bool:
        """Remove help file ``file`` of ``state``; whether there was one."""
        with self.transaction():
            return bool(self.conn.execute(
                "DELETE FROM help_files WHERE state = %s AND file = %s", (state, file)).rowcount)

    # -- ORION changes made on the wire ------------------------------------

    def orion_records(self) -> list[OrionRecord]:
        """Every ORI changed on the wire, oldest change first."""
        rows = self.conn.execute("SELECT ori, record, updated_at, updated_by FROM orion "
                                 "ORDER BY updated_at, ori").fetchall()
        return [OrionRecord(str(r[0]), json.loads(r[1]) if r[1] is not None else None,
                            float(r[2]), str(r[3])) for r in rows]

    def put_orion_record(self, rec: OrionRecord) -> None:
        """Record the latest change of ``rec.ori`` (``record`` None: deleted)."""
        with self.transaction():
            self.conn.execute(
                "INSERT INTO orion (ori, record, updated_at, updated_by) VALUES (%s,%s,%s,%s) "
                "ON CONFLICT (ori) DO UPDATE SET record = excluded.record, "
                "updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                (rec.ori, json.dumps(dict(rec.record), sort_keys=True)
                 if rec.record is not None else None, rec.updated_at, rec.updated_by))

    def seed_help_files(self, files: Iterable[HelpFile]) -> None:
        """Write those of ``files`` that do not exist yet."""
        rows = [(hf.state, hf.file, hf.text, hf.updated_at, hf.updated_by) for hf in files]
        if not rows:
            return
        with self.transaction(), self.conn.cursor() as cur:
            cur.executemany(f"INSERT INTO help_files ({_HELP_COLUMNS}) VALUES "
                            "(%s,%s,%s,%s,%s) ON CONFLICT DO NOTHING", rows)


def _fields(rec: AuditRecord) -> Iterable[Any]:
    return (rec.id, rec.ts, rec.component, rec.type, rec.subject, rec.outcome, rec.detail,
            rec.mac)


# Every public method of the protocols raises StoreError for the driver's errors.
for _name in ("find_messages", "count_messages", "get_message", "replies_to", "owed_per_link",
              "append_audit", "audit_anchor", "last_audit_record", "list_audit_records",
              "prune_messages", "prune_audit", "help_file", "put_help_file",
              "seed_help_files", "delete_help_file", "orion_records", "put_orion_record"):
    setattr(PostgresStore, _name, _translated(getattr(PostgresStore, _name)))


def open_pg_store(url: str, *, readonly: bool = False, node: str = "") -> PostgresStore:
    """The store in database ``url``; close it (or use it as a context manager).

    Read-only refuses a database this program does not know (newer, or without
    the switch's tables) and changes nothing; writable migrates it first.
    ``node``: the audit chain it reads and appends (a cluster node's name).
    """
    conn = connect(url, application="nlets-switch tool")
    try:
        with translated_errors(redact(url)):
            _prepare(conn, url, readonly)
    except BaseException:
        conn.close()
        raise
    return PostgresStore(conn, owned=True, node=node)


def _prepare(conn: Any, url: str, readonly: bool) -> None:
    if readonly:
        if check_version(conn, redact(url)) == 0:
            raise StoreError(f"{redact(url)}: no nlets-switch tables in this database "
                             "(nlets-switch store migrate --store URL makes them)")
        conn.execute("SET default_transaction_read_only = on")
    else:
        migrate(conn, redact(url))
