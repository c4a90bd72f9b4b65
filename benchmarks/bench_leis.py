"""The DHS LEIS data set: what building it and searching it cost, and every answer it gives.

::

    .venv/bin/python benchmarks/bench_leis.py                 # build x3, GPQ timings
    .venv/bin/python benchmarks/bench_leis.py --answers FILE  # also every answer, JSON Lines
    .venv/bin/python benchmarks/bench_leis.py --postgres      # the same in PostgreSQL's tables

``--answers`` writes one line per query (``{"q": ..., "a": ...}``) for a
large set made from the data itself (every name, alias, date of birth,
identifier, address and DIN of the generated persons, phonetic variants,
initials, SEX filters, IAQs): run it on two versions of the code and
``cmp`` the files to prove the answers identical (docs/leis.md). The load
average is printed with the figures: the machine may be shared.
``--postgres`` starts a throwaway PostgreSQL (as the tests do) and measures
the data set in its ``leis_*`` tables (each build in a new database); the
answers file it writes must equal the SQLite one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from nlets_switch.services.leis import LeisData, Person

TODAY = dt.date(2026, 5, 1)

#: Timed GPQs: (label, fields).
QUERIES: list[tuple[str, dict[str, str]]] = [
    ("NAM exact + DOB", {"NAM": "GARCIA,MARIA", "DOB": "19850312"}),
    ("NAM phonetic", {"NAM": "GARSIA,MARIA"}),
    ("NAM alias", {"NAM": "LOPEZ,MARIA"}),
    ("NAM last only (limit)", {"NAM": "GARCIA"}),
    ("NAM initial", {"NAM": "SMITH,J"}),
    ("ARN", {"ARN": "204518736"}),
    ("SOC", {"SOC": "900450987"}),
    ("ADR words", {"ADR": "500 SOUTH CONGRESS AVENUE"}),
    ("ADR common words", {"ADR": "ST PHOENIX AZ"}),
    ("DIN record", {"DIN": "D000000001"}),
]


def _load() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def build(path: Path, persons: int) -> float:
    """Seconds to build a fresh file of ``persons`` generated persons."""
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    start = time.perf_counter()
    LeisData.open(path, seed=1, persons=persons).close()
    return time.perf_counter() - start


def build_url(url: str, persons: int) -> float:
    """Seconds to build ``persons`` generated persons into an empty PostgreSQL database."""
    start = time.perf_counter()
    LeisData.open_url(url, seed=1, persons=persons).close()
    return time.perf_counter() - start


def _pg_server() -> Any:
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.conftest_postgres import PgServer, _bin_dir

    bin_dir = _bin_dir()
    if bin_dir is None:
        raise SystemExit("--postgres: PostgreSQL's binaries are not installed "
                         "(Debian package postgresql; make system-deps)")
    server = PgServer(bin_dir)
    server.start()
    return server


def timings(data: LeisData, runs: int) -> list[tuple[str, float, int]]:
    """(label, mean milliseconds, persons found) of each of :data:`QUERIES`."""
    out = []
    for label, fields in QUERIES:
        data.gpq_text(fields, 20, today=TODAY)  # warm
        start = time.perf_counter()
        for _ in range(runs):
            text = data.gpq_text(fields, 20, today=TODAY)
        ms = (time.perf_counter() - start) / runs * 1000
        out.append((label, ms, 0 if text == "NO RECORD" else text.count("\n") + 1))
    return out


def _variant(last: str) -> str:
    """A one-letter spelling variant (GARCIA -> GARCIE), for phonetic searches."""
    return last[:-1] + ("E" if last[-1] != "E" else "A")


def queries(p: Person) -> Iterator[tuple[str, dict[str, str]]]:
    """GPQ fields (``gpq``) and IAQ fields (``iaq``) made from one person's data."""
    for full in (p.name, *p.aliases):
        last, _, rest = full.partition(",")
        first = rest.split(" ")[0] if rest else ""
        yield "gpq", {"NAM": full}
        yield "gpq", {"NAM": last}
        yield "gpq", {"NAM": f"{_variant(last)},{first}"}
        if first:
            yield "gpq", {"NAM": f"{last},{first[0]}"}
            yield "gpq", {"NAM": f"{last},{first}", "SEX": "M"}
        for dob in p.dobs:
            yield "gpq", {"NAM": full, "DOB": dob}
            yield "iaq", {"NAM": full, "DOB": dob, "SEX": p.sex}
    for ident in p.identifiers:
        if ident.kind in ("ARN", "SOC", "PPN"):
            yield "gpq", {ident.kind: ident.value}
            yield "gpq", {ident.kind: ident.value, "DOB": p.dobs[0]}
        if ident.kind == "ARN":
            yield "iaq", {"ARN": ident.value, "NAM": "DOE,JOHN", "DOB": "19700101"}
    for loc in p.locations:
        words = loc.address.split()
        yield "gpq", {"ADR": f"{loc.address} {loc.city} {loc.state}"}
        yield "gpq", {"ADR": loc.address}
        yield "gpq", {"ADR": " ".join(words[1:3])}
        yield "gpq", {"ADR": " ".join([*words[-2:], loc.city])}
    yield "gpq", {"DIN": p.din}


def answers(data: LeisData, out: Path, step: int) -> int:
    """Write every answer of :func:`queries` over every ``step``-th person; returns how many."""
    dins = [f"D00000000{n}" for n in range(1, 6)]
    dins += [f"D{100000000 + n:09d}" for n in range(1, data.count() - 4, step)]
    seen: set[str] = set()
    count = 0
    with out.open("w") as f:
        for din in dins:
            person = data.get(din)
            assert person is not None, din
            for kind, fields in queries(person):
                key = kind + json.dumps(fields, sort_keys=True)
                if key in seen:
                    continue
                seen.add(key)
                if kind == "gpq":
                    text = data.gpq_text(fields, 20, today=TODAY)
                else:
                    text = data.iar_text(fields, today=TODAY)
                f.write(json.dumps({"q": key, "a": text}) + "\n")
                count += 1
    return count


def main() -> None:
    """Build, time, and optionally write every answer."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--persons", type=int, default=10000)
    ap.add_argument("--builds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=50, help="runs of each timed GPQ")
    ap.add_argument("--answers", type=Path, help="write every answer here (JSON Lines)")
    ap.add_argument("--step", type=int, default=1, help="every n-th generated person")
    ap.add_argument("--postgres", action="store_true",
                    help="the data set in a throwaway PostgreSQL's leis_* tables")
    args = ap.parse_args()
    os.environ.setdefault("XDG_CONFIG_HOME", tempfile.mkdtemp(prefix="bench-leis-keys-"))
    server = _pg_server() if args.postgres else None
    try:
        run(args, server)
    finally:
        if server is not None:
            server.remove()


def run(args: argparse.Namespace, server: Any) -> None:
    """Build ``args.builds`` times, then time the GPQs (and write the answers)."""
    with tempfile.TemporaryDirectory(prefix="bench-leis-") as tmp:
        path = Path(tmp) / "leis.sqlite"
        builds = []
        url = ""
        for _ in range(args.builds):
            before = _load()
            if server is not None:
                url = server.create_database()
                builds.append(build_url(url, args.persons))
            else:
                builds.append(build(path, args.persons))
            print(f"build {args.persons} persons: {builds[-1]:.2f} s (load {before})")
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        print(f"build median {statistics.median(builds):.2f} s, min {min(builds):.2f} s"
              + (f"; files {size / 1e6:.1f} MB" if server is None else " (PostgreSQL)"))
        with (LeisData.open_url(url, seed=1, persons=args.persons) if server is not None
              else LeisData.open(path, seed=1, persons=args.persons)) as data:
            print(f"load before GPQs: {_load()}")
            for label, ms, found in timings(data, args.runs):
                print(f"  {label:<24} {ms:8.2f} ms  ({found} lines)")
            print(f"load after GPQs: {_load()}")
            if args.answers:
                start = time.perf_counter()
                n = answers(data, args.answers, args.step)
                print(f"{n} answers in {time.perf_counter() - start:.1f} s -> {args.answers}")


if __name__ == "__main__":
    main()
