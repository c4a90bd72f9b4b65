"""The journal's writer process runs the services' operations without loading the
switch (issue 9: memory): what it maps stays the store's, not pydantic's or lxml's."""

from __future__ import annotations

import functools
import time
from pathlib import Path

from nlets_switch.ops import retention
from tests.conftest import ClientFactory, SwitchFactory


def mapped(pid: int) -> set[str]:
    """The files (shared libraries) process ``pid`` has mapped."""
    out = set()
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 6:
            out.add(Path(parts[5]).name)
    return out


async def test_writer_runs_the_services_operations_without_the_switchs_libraries(
        make_switch: SwitchFactory, connect: ClientFactory) -> None:
    # build: the NL service seeds the help files and reads ORION through the
    # writer; a sign-on is audited through it; retention prunes through it.
    sw = await make_switch(build=True)
    c = await connect(sw, "AZNLETS20")
    ans = await c.send("AM.AZNLETS20.AZ0070500.TXT\nHELLO")
    assert ans.ok
    res = await sw.journal.call(functools.partial(retention.prune, now=time.time()))
    assert res == retention.PruneResult(0, 0, 0)
    await sw.journal.barrier()
    assert sw.journal.pid is not None
    libs = mapped(sw.journal.pid)
    assert any(n.startswith("_sqlite3") for n in libs)  # it is the writer
    assert not [n for n in libs if n.startswith(("_pydantic_core", "etree", "_rustyfish"))]
