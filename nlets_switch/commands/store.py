"""``nlets-switch store migrate`` and ``store version``: a PostgreSQL store's schema.

::

    nlets-switch store migrate --store postgresql://nlets@db1/nlets
    nlets-switch store version --store postgresql://nlets@db1/nlets

``serve --store URL`` runs the same check before it starts
(:func:`refuse_unfit_store`): an unreachable database, or one at a newer
schema version than this program's, is refused in one line and nothing is
written. An older (or empty) database is brought up to date at start, as
``migrate`` does.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit
from nlets_switch.errors import StoreError

if TYPE_CHECKING:
    from nlets_switch.store.postgres import PostgresStore

EPILOG = """examples:
  nlets-switch store migrate --store postgresql://nlets@db1/nlets
  nlets-switch store version --config /etc/nlets/switch.yaml

The URL comes from --store, or from the configuration's store.url.
exit status: 0 done (or already up to date), 2 the database cannot be reached or
is at a newer schema version (nothing written). A configuration with errors exits 1.
"""


def register(sub: SubParsers) -> None:
    """Add ``store`` with ``migrate`` and ``version``."""
    p = sub.add_parser("store", help="create or upgrade a PostgreSQL store's tables",
                       description="The PostgreSQL store (cluster mode) keeps the journal and "
                       "every table in one database.\n`migrate` creates or upgrades its "
                       "tables; `version` shows the schema version.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ssub = p.add_subparsers(dest="store_command", metavar="COMMAND")
    for name, fn, text in (("migrate", migrate_command, "bring the database's tables up to "
                            "date (creating them in an empty database)"),
                           ("version", version_command, "print the database's schema version "
                            "and this program's")):
        c = ssub.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".",
                            epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        add_config_args(c)
        c.add_argument("--store", metavar="postgresql://USER@HOST/DB",
                       help="the database (default: the configuration's store.url)")
        c.set_defaults(func=fn)
    p.set_defaults(func=lambda _args: (p.print_help(), 2)[1])


def _url(args: argparse.Namespace) -> str | None:
    cfg = config_or_exit(args)
    if cfg is None:
        return None
    if not cfg.store.url:
        print("nlets-switch: no PostgreSQL store: give --store postgresql://USER@HOST/DB or "
              "store.url in the configuration", file=sys.stderr)
        return None
    return cfg.store.url


def migrate_command(args: argparse.Namespace) -> int:
    """Create or upgrade the tables; 2 when the database is unreachable or newer."""
    from nlets_switch.store import textcrypt
    from nlets_switch.store.postgres import connect, redact, translated_errors
    from nlets_switch.store.postgres_schema import migrate

    url = _url(args)
    if url is None:
        return 1
    cfg = config_or_exit(args)
    try:
        # The keyring serve uses (never made here): a migration seals and indexes the
        # rows written in clear before (schema version 4).
        if cfg is not None:
            textcrypt.configure_for(cfg.security.text_key_file, cfg.security.encrypt_text,
                                    create=False)
    except (OSError, ValueError) as e:
        print(f"nlets-switch: {e}", file=sys.stderr)
        return 1
    try:
        conn = connect(url, application="nlets-switch store migrate")
        try:
            with translated_errors(redact(url)):
                before, after = migrate(conn, redact(url))
        finally:
            conn.close()
    except StoreError as e:
        print(f"nlets-switch: {e}", file=sys.stderr)
        return 2
    if before == after:
        print(f"{redact(url)}: schema version {after}, up to date")
    else:
        print(f"{redact(url)}: schema version {before} -> {after}")
        if before < 4 and textcrypt.current() is None and cfg is not None \
                and cfg.security.encrypt_text:
            # Loud: version 4 seals old rows only with the keyring in hand.
            ring = textcrypt.keyring_path(cfg.security.text_key_file)
            print(f"nlets-switch: warning: no text keyring ({ring}): message text "
                  "written before stays in clear in the database; give this command "
                  "the switch's security.text_key_file", file=sys.stderr)
    return 0


def version_command(args: argparse.Namespace) -> int:
    """Print the database's version and this program's; changes nothing."""
    from nlets_switch.store.postgres import connect, redact, translated_errors
    from nlets_switch.store.postgres_schema import SCHEMA_VERSION, schema_version

    url = _url(args)
    if url is None:
        return 1
    try:
        conn = connect(url, application="nlets-switch store version")
        try:
            with translated_errors(redact(url)):
                version = schema_version(conn)
        finally:
            conn.close()
    except StoreError as e:
        print(f"nlets-switch: {e}", file=sys.stderr)
        return 2
    print(f"{redact(url)}: schema version {version} (this nlets-switch: {SCHEMA_VERSION})")
    return 2 if version > SCHEMA_VERSION else 0


def open_configured(url: str, who: str, node: str | None = None) -> PostgresStore | None:
    """The PostgreSQL store at ``url``, read-only, for a tool (``node``: the audit chain
    it reads); None (after printing why, prefixed with ``who``) when it cannot be opened."""
    from nlets_switch.store.postgres import open_pg_store

    try:
        return open_pg_store(url, readonly=True, node=node or "")
    except StoreError as e:
        print(f"{who}: {e}", file=sys.stderr)
        return None


def refuse_unfit_store(url: str) -> bool:
    """Check the PostgreSQL store at ``url`` without writing; on a problem print one line
    and return True (an unreachable database, or a newer schema version)."""
    from nlets_switch.store.postgres import connect, redact, translated_errors
    from nlets_switch.store.postgres_schema import check_version

    try:
        conn = connect(url, application="nlets-switch serve")
        try:
            with translated_errors(redact(url)):
                check_version(conn, f"database {redact(url)}")
        finally:
            conn.close()
    except StoreError as e:
        print(f"nlets-switch: {e}", file=sys.stderr)
        return True
    return False
