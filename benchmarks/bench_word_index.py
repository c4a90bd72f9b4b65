"""What the word index costs the journal's writer, per message (issue 10, text search).

Runs the writer's own statement (:func:`nlets_switch.store.tables.write_rows`) on a
journal in a temporary directory, in transactions of ``--batch`` messages as the
group commit makes them, twice over the same messages: as before the word index
(the text sealed, no tokens: the index's trigger does not fire), and as the writer
does now (the tokens made, the FTS5 table filled). Prints CPU and wall microseconds
per message for each, and the difference. A PostgreSQL URL (``--pg``) measures the
PostgreSQL writer's statement the same way (COPY with and without the tokens).

    python benchmarks/bench_word_index.py --messages 20000 [--pg postgresql://...]

The figures include the commit (``synchronous=FULL``: an fsync per batch), which is
the same for both; the difference is the index's. Run on a quiet machine, and say the
load average with the figures.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from nlets_switch.store import keys, tables, textcrypt
from nlets_switch.store.records import MessageRow

_BEFORE = ("INSERT INTO messages (id, received_at, link, key, origin, destinations, control, "
           "input_no, status, reason, reply_to, body_start, text) "
           "VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,ns_seal(?13, ?1))")
_NAMES = ("SMITH", "JONES", "GARCIA", "NGUYEN", "JOHNSON", "OKAFOR", "MARIA", "JOHN", "LEE")


def messages(n: int, first: int) -> list[MessageRow]:
    """``n`` inquiries of the benchmark's shape (a DQ with name, date of birth, sex)."""
    rnd = random.Random(first)
    return [MessageRow(i, 1000.0 + i, "AZNLETS20", "DQ", "AZNLETS20", "NY", f"DQ{i:06d}", i,
                       "accepted", None, None, 0,
                       f"DQ.AZNLETS20.NY.*DQ{i:06d}.TXT\nNAM/{rnd.choice(_NAMES)},"
                       f"{rnd.choice(_NAMES)}.DOB/19{rnd.randint(40, 99)}0{rnd.randint(1, 9)}"
                       f"1{rnd.randint(0, 9)}.SEX/{rnd.choice('MF')}.RAC/W")
            for i in range(first, first + n)]


def _run(conn: Any, rows: list[MessageRow], batch: int, index: bool) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    for i in range(0, len(rows), batch):
        chunk = [tuple(r) for r in rows[i:i + batch]]
        conn.execute("BEGIN IMMEDIATE")
        if index:
            tables.write_rows(conn, chunk, [], {}, {}, [])
        else:
            conn.executemany(_BEFORE, chunk)
        conn.execute("COMMIT")
    n = len(rows)
    return (time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6


def sqlite(n: int, batch: int) -> None:
    """The SQLite writer's statement, before and with the word index."""
    with tempfile.TemporaryDirectory() as tmp:
        conn = tables.connect(Path(tmp) / "journal.sqlite")
        tables.create(conn)
        _run(conn, messages(1000, 10_000_000), batch, True)  # warm up
        before = _run(conn, messages(n, 1), batch, False)
        after = _run(conn, messages(n, 1 + n), batch, True)
        conn.close()
    _print("SQLite", before, after)


def postgres(url: str, n: int, batch: int) -> None:
    """The PostgreSQL writer's COPY, without and with the tokens."""
    from nlets_switch.store.postgres import connect
    from nlets_switch.store.postgres_journal import _MSG_COLUMNS
    from nlets_switch.store.postgres_schema import migrate

    conn = connect(url)
    migrate(conn, url)

    def run(rows: list[MessageRow], index: bool) -> tuple[float, float]:
        cols = _MSG_COLUMNS if index else _MSG_COLUMNS.replace(", words", "")
        cpu, wall = time.process_time(), time.perf_counter()
        for i in range(0, len(rows), batch):
            with conn.transaction(), conn.cursor() as cur, \
                    cur.copy(f"COPY messages ({cols}) FROM STDIN") as cp:
                for m in rows[i:i + batch]:
                    sealed = textcrypt.seal_text(m.text, m.id)
                    cp.write_row((*m[:12], sealed, textcrypt.word_tokens(m.text))
                                 if index else (*m[:12], sealed))
        return ((time.process_time() - cpu) / len(rows) * 1e6,
                (time.perf_counter() - wall) / len(rows) * 1e6)

    run(messages(1000, 10_000_000), True)
    before = run(messages(n, 1), False)
    after = run(messages(n, 1 + n), True)
    conn.close()
    _print("PostgreSQL (client CPU; the server's GIN work shows in wall time)", before, after)


def _print(what: str, before: tuple[float, float], after: tuple[float, float]) -> None:
    print(f"{what}: us per message, CPU / wall")
    print(f"  before the index  {before[0]:7.1f} / {before[1]:7.1f}")
    print(f"  with the index    {after[0]:7.1f} / {after[1]:7.1f}")
    print(f"  the index costs   {after[0] - before[0]:7.1f} / {after[1] - before[1]:7.1f}")


def main() -> None:
    """Parse the arguments and run."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=20_000)
    ap.add_argument("--batch", type=int, default=64, help="messages per transaction")
    ap.add_argument("--pg", metavar="URL", help="also measure a PostgreSQL store")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as keydir:
        ring, _ = keys.load_keyring(Path(keydir) / "text.keys")
        textcrypt.configure(ring)
        print(f"load average before: {os.getloadavg()}")
        sqlite(args.messages, args.batch)
        if args.pg:
            postgres(args.pg, args.messages, args.batch)
        print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
