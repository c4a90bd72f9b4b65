"""``nlets-switch leis``: the DHS LEIS data set behind ``AX`` (see docs/leis.md).

::

    nlets-switch leis load FILE      [--data-dir DIR | --store URL] [--config FILE]
                                     [--seed N] [--persons N]
    nlets-switch leis search QUERY   [--data-dir DIR | --store URL] [--config FILE]
                                     [--seed N] [--persons N] [--limit N]

``load`` adds an agency's own test persons (JSON Lines) to the data set and
either loads every row or, when any row is bad, lists every bad row with its
line number and loads nothing. ``search`` answers a GPQ text such as
``NAM/GARSIA,MARIA.DOB/19850312`` exactly as the ``AX`` responder would.
Both open the data sealed under the text keyring (docs/leis.md): a wrong
or missing keyring is one line on stderr and exit code 2. With a PostgreSQL
store (``--store``, or the configuration's ``store.url``) the data set is the
database's, the one every node of a cluster answers from (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import TextIO

from nlets_switch.config import load_config
from nlets_switch.errors import ConfigError, MessageError, StoreError
from nlets_switch.services import leis
from nlets_switch.store import textcrypt

#: Where the data set lives unless ``--data-dir`` says otherwise
#: (PROTOCOL part 8: ``--data-dir``, default ``./nlets-data``).
DEFAULT_DATA_DIR = Path("nlets-data")

# ``TAG/value`` fields separated by periods (PROTOCOL part 2); a period not
# followed by a tag stays in the value, so ``ADR/12 N. MAIN ST`` survives.
_FIELD = re.compile(r"([A-Z]{3})/(.*?)(?=\.[A-Z]{3}/|\.?\s*$)", re.DOTALL)


class ProgressPrinter:
    """A ``progress(done, total)`` callback for :meth:`LeisData.open` that
    writes ``building DHS LEIS data: N/M persons`` to a terminal, but only
    once the build has taken more than ``after`` seconds (a quick build stays
    silent)."""

    def __init__(self, stream: TextIO | None = None, after: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.after = after
        self.started = time.monotonic()
        self.shown = False

    def __call__(self, done: int, total: int) -> None:
        if not self.shown and time.monotonic() - self.started < self.after:
            return
        self.shown = True
        end = "\n" if done >= total else ""
        self.stream.write(f"\rbuilding DHS LEIS data: {done}/{total} persons{end}")
        self.stream.flush()


def parse_fields(text: str) -> dict[str, str]:
    """The ``TAG/value`` fields of a GPQ or IAQ text, by tag (upper case)."""
    body = text.strip()
    if "TXT" in body.upper() and body.upper().index("TXT") < body.find("/"):
        # A whole message (GPQ.AZNLETS20.AX.TXT...): keep what follows TXT.
        body = body[body.upper().index("TXT") + 3:]
    body = " ".join(body.upper().split())
    return {tag: value.strip() for tag, value in _FIELD.findall(body)}


class _Unusable(Exception):
    """The keyring or the data set cannot be used; the message is one line."""


def _open(args: argparse.Namespace) -> leis.LeisData:
    """The data set, sealed under the keyring of ``--config`` (else the default one,
    made and said where when missing): the PostgreSQL store's (``--store``, else
    ``store.url``) or ``DATA_DIR/leis.sqlite``; :class:`_Unusable` with one line otherwise."""
    path = Path(args.data_dir) / leis.DB_NAME
    try:
        cfg = load_config(args.config) if args.config else None
        ring, made = textcrypt.configure_for(
            cfg.security.text_key_file if cfg else None,
            cfg.security.encrypt_text if cfg else True, create=True)
        if made and ring is not None:
            print(f"made the text keyring {ring.path}: the LEIS data and message text "
                  "are sealed under it; back it up apart from the data directory",
                  file=sys.stderr)
        url = args.store or (cfg.store.url if cfg else None)
        # The build the switch makes (services.leis): the command line must not
        # rebuild, for its own defaults, what the nodes built for the configuration.
        section = cfg.services.section("leis").options if cfg else {}
        seed = args.seed if args.seed is not None else int(section.get("seed", 1))
        persons = args.persons if args.persons is not None else int(
            section.get("persons", 10000))
        if url:
            return leis.LeisData.open_url(url, seed=seed, persons=persons,
                                          progress=ProgressPrinter(),
                                          keyring=textcrypt.data_keyring())
        return leis.LeisData.open(path, seed=seed, persons=persons,
                                  progress=ProgressPrinter(), keyring=textcrypt.data_keyring())
    except ConfigError as e:
        raise _Unusable(e.render()) from None
    except (OSError, ValueError, StoreError) as e:  # LeisKeyError is a ValueError
        raise _Unusable(str(e)) from None


def _load(args: argparse.Namespace) -> int:
    file = Path(args.file)
    try:
        # Check the file before building anything, so a bad file costs nothing.
        leis.parse_load_file(file)
    except leis.LeisLoadError as e:
        print(f"{file}: {len(e.lines)} bad row(s), nothing loaded:", file=sys.stderr)
        for problem in e.problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{file}: {e.strerror or e}", file=sys.stderr)
        return 1
    try:
        with _open(args) as store:
            count = store.load_file(file)
            where = store.where
    except (_Unusable, StoreError) as e:
        print(f"leis: {e}", file=sys.stderr)
        return 2
    print(f"loaded {count} person(s) from {file} into {where}")
    return 0


def _search(args: argparse.Namespace) -> int:
    fields = parse_fields(args.query)
    if not fields:
        print("no TAG/value fields in the query, e.g. 'NAM/GARSIA,MARIA.DOB/19850312'",
              file=sys.stderr)
        return 2
    try:
        with _open(args) as store:
            print(store.gpq_text(fields, args.limit))
    except MessageError as e:
        print(f"{e.code.wire} {e.detail}".rstrip(), file=sys.stderr)
        return 1
    except (_Unusable, leis.LeisKeyError, StoreError) as e:
        print(f"leis: {e}", file=sys.stderr)
        return 2
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``leis`` and its sub-commands."""
    parser = subparsers.add_parser(
        "leis",
        help="the DHS LEIS data set behind AX: load an agency's test data, search it",
        description="The synthetic DHS LEIS data set that answers GPQ and IAQ sent to AX. "
        "It is built from a seed on first use into DATA_DIR/leis.sqlite, or, with a "
        "PostgreSQL store, into the database's LEIS tables.",
    )
    parser.set_defaults(func=lambda _args: _usage(parser))
    sub = parser.add_subparsers(dest="leis_command", metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR), metavar="DIR",
                       help=f"where leis.sqlite lives (default: ./{DEFAULT_DATA_DIR})")
        p.add_argument("--store", metavar="postgresql://USER@HOST/DB",
                       help="the PostgreSQL store whose LEIS tables every cluster node "
                       "answers from (default: the configuration's store.url; without "
                       "one, DATA_DIR/leis.sqlite)")
        p.add_argument("--config", metavar="FILE",
                       help="the switch's configuration, for security.text_key_file: the "
                       "keyring the data is sealed under (default: "
                       "$XDG_CONFIG_HOME/nlets-switch/text.keys)")
        p.add_argument("--seed", type=int,
                       help="seed of the generated persons, if the data set must be built "
                       "(default: the configuration's services.leis.seed, else 1)")
        p.add_argument("--persons", type=int,
                       help="how many persons to generate, if it must be built "
                       "(default: the configuration's services.leis.persons, else 10000)")
        return p

    p = common(sub.add_parser(
        "load", help="load an agency's own test persons from a JSON Lines file",
        description="Load persons from a JSON Lines file (one JSON object per line; "
        "see docs/leis.md). Every row is checked first: if any is bad, every bad row "
        "is listed with its line number, nothing is loaded and the exit code is 1. "
        "A person whose DIN is already on file is replaced.",
    ))
    p.add_argument("file", metavar="FILE", help="the JSON Lines file")
    p.set_defaults(func=_load)

    p = common(sub.add_parser(
        "search", help="answer a GPQ text as AX would (a debugging aid)",
        description="Print the GPR text that answers a GPQ, e.g. "
        "'NAM/GARSIA,MARIA.DOB/19850312', 'ARN/012345678', 'ADR/500 S CONGRESS AVE' "
        "or 'DIN/D000000001' (the full record).",
    ))
    p.add_argument("query", metavar="QUERY", help="GPQ fields, TAG/value separated by periods")
    p.add_argument("--limit", type=_positive, default=leis.DEFAULT_LIMIT,
                   help=f"summary lines at most (default {leis.DEFAULT_LIMIT})")
    p.set_defaults(func=_search)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
