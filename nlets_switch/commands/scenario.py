"""``nlets-switch scenario run PATH...``: play conformance scenarios (docs/scenarios.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import yaml

from nlets_switch.commands._common import SubParsers, parse_hostport
from nlets_switch.tools.scenario import (
    Result,
    Scenario,
    ScenarioError,
    find_scenarios,
    load_scenario,
    run_scenario,
    run_with_switch,
)

EPILOG = """examples:
  nlets-switch scenario run scenarios/
  nlets-switch scenario run scenarios/am_output_header.scn -v
  nlets-switch scenario run --connect 127.0.0.1:7330 my-agency/
  nlets-switch scenario run scenarios/ --junit report.xml

exit status: 0 every scenario passed (or failed as marked xfail), 1 any failed,
2 no scenario found or a scenario file could not be read.
"""


def register(sub: SubParsers) -> None:
    """Add ``scenario run``."""
    p = sub.add_parser("scenario", help="run conformance scenarios against a switch",
                       description="Conformance scenarios: scripts of sign-ons, sends and "
                       "expected messages (docs/scenarios.md).")
    ssub = p.add_subparsers(dest="scenario_cmd", required=True)
    r = ssub.add_parser(
        "run", help="run scenario files or directories of *.scn",
        description="Run each scenario against a switch started for it alone (free port, "
        "fresh data directory) or, with --connect, against a running switch. Prints pass or "
        "fail per scenario, with a diff of what was expected and what came.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or directories")
    r.add_argument("--connect", metavar="HOST:PORT",
                   help="use this running switch instead of starting one per scenario")
    r.add_argument("--config", metavar="FILE",
                   help="configuration for the switches started (scenarios' own `config` "
                   "wins; default: the demo world)")
    r.add_argument("--junit", metavar="FILE", help="write a JUnit XML report here")
    r.add_argument("-v", "--verbose", action="store_true", help="print each scenario's title")
    r.add_argument("-x", "--exitfirst", action="store_true", help="stop at the first failure")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the scenarios; returns the exit status."""
    # Quiet the in-process switch's log: the report is what the user reads.
    from nlets_switch.log import configure

    configure("error")
    files = find_scenarios(args.paths)
    if not files:
        print("scenario: no scenario files found (*.scn)", file=sys.stderr)
        return 2
    scenarios: list[Scenario] = []
    bad = 0
    for f in files:
        try:
            scenarios.append(load_scenario(f))
        except ScenarioError as e:
            print(f"ERROR {e}", file=sys.stderr)
            bad += 1
    base = None
    if args.config:
        try:
            base = yaml.safe_load(Path(args.config).read_text())
        except (OSError, yaml.YAMLError) as e:
            print(f"scenario: cannot read --config: {e}", file=sys.stderr)
            return 2
    results = asyncio.run(_run_all(scenarios, args, base))
    if args.junit:
        write_junit(results, args.junit)
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    total = sum(r.seconds for r in results)
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    print(f"\n{len(results)} scenario(s): {summary or 'none run'}"
          f"{f', {bad} unreadable' if bad else ''} in {total:.2f} s")
    if bad and not results:
        return 2
    return 1 if bad or any(r.counts_as_failure for r in results) else 0


async def _run_all(scenarios: list[Scenario], args: argparse.Namespace,
                   base: dict[str, object] | None) -> list[Result]:
    results: list[Result] = []
    stopping: list[asyncio.Task[None]] = []
    target = parse_hostport(args.connect) if args.connect else None
    n = len(scenarios)
    for i, scn in enumerate(scenarios, 1):
        label = f"[{i}/{n}] {scn.path}"
        print(f"{label} ...", end="", flush=True)
        t0 = time.monotonic()
        if target is not None:
            if scn.config is not None:
                print(" (its config is ignored with --connect)", end="")
            res = await run_scenario(scn, *target)
        else:
            res = await run_with_switch(scn, base)
        res.seconds = time.monotonic() - t0
        word = {"pass": "PASS", "fail": "FAIL", "xfail": "XFAIL", "xpass": "XPASS"}[res.status]
        print(f" {word} ({res.seconds:.2f} s)")
        if args.verbose or res.status != "pass":
            print(f"    {scn.title}")
        if res.status in ("fail", "xpass", "xfail"):
            if res.xfail:
                print(f"    xfail: {res.xfail}")
            if res.failure:
                print(f"    {res.failure}")
            if res.detail and (res.status != "xfail" or args.verbose):
                print("\n".join("    " + ln for ln in res.detail.split("\n")))
        results.append(res)
        if args.exitfirst and res.counts_as_failure:
            break
    # (Nothing is stopped in the background today: see run_with_switch.)
    await asyncio.gather(*stopping, return_exceptions=True)
    return results


def write_junit(results: list[Result], path: str) -> None:
    """A JUnit XML report: one testcase per scenario (xfail as skipped)."""
    suite = ET.Element("testsuite", {
        "name": "nlets-switch scenarios",
        "tests": str(len(results)),
        "failures": str(sum(r.counts_as_failure for r in results)),
        "skipped": str(sum(r.status == "xfail" for r in results)),
        "errors": "0",
        "time": f"{sum(r.seconds for r in results):.3f}",
    })
    for r in results:
        case = ET.SubElement(suite, "testcase", {
            "classname": "scenarios." + Path(r.path).parent.name,
            "name": Path(r.path).stem,
            "file": r.path,
            "time": f"{r.seconds:.3f}",
        })
        if r.status == "fail" or r.status == "xpass":
            fail = ET.SubElement(case, "failure", {
                "message": r.failure or f"passed but marked xfail: {r.xfail}"})
            fail.text = r.detail
        elif r.status == "xfail":
            ET.SubElement(case, "skipped", {"message": f"xfail: {r.xfail}: {r.failure}"})
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
