"""Links frozen out of the collector's full collections (issue 15), and freed when they end.

The links sign on from a child process, so that every link object in this
process is the switch's own: once they have signed off, none may be left,
although they were frozen (a frozen object held by a cycle would never be
collected: a leak per link).
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlets_switch.core.conn import Conn, Now
from nlets_switch.core.delivery import Endpoint
from nlets_switch.core.link import Link
from nlets_switch.server.connection import LinkConnection
from nlets_switch.server.heap import HeapKeeper
from tests.conftest import SwitchFactory
from tests.faults_link import until

ROOT = Path(__file__).resolve().parent.parent

N = 300

#: Signs N links on (raw frames), says "on" once each got its A, holds them until
#: its stdin closes, then signs them off.
_LINKS = """
import socket, sys
from nlets_switch.wire import frames as fr
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(fr.encode_frame(fr.SIGN_ON, 1, f"AZH{i:06d}".encode()))
    socks.append(s)
for s in socks:
    buf = fr.FrameBuffer()
    while not any(f.type == fr.ACK and f.seq == 1 for f in buf.feed(s.recv(4096))):
        pass
print("on", flush=True)
sys.stdin.read()
for s in socks:
    s.sendall(fr.encode_frame(fr.SIGN_OFF, 2))
for s in socks:
    s.recv(4096)
    s.close()
"""


def _alive(*kinds: type) -> int:
    """Objects of ``kinds`` the collector sees that belong to this test's links (AZH...)."""
    return len(_ours(kinds))


def _ours(kinds: tuple[type, ...]) -> list[object]:
    out = []
    for o in gc.get_objects():
        if type(o) in kinds:
            link = o if isinstance(o, Link) else getattr(o, "link", None)
            conn = getattr(o, "conn", None)
            ori = getattr(link, "ori", None) or getattr(o, "ori", None) or (
                conn.link.ori if isinstance(conn, Conn) else None)
            if ori is not None and ori.startswith("AZH"):
                out.append(o)
    return out


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.collect()
    yield
    gc.unfreeze()


async def test_links_frozen_once_they_grow_and_freed_when_they_end(
        make_switch: SwitchFactory, unfrozen: None) -> None:
    raw = {"limits": {"max_unauthenticated": 1000, "max_unauthenticated_per_peer": 1000,
                      "max_connections": 1000, "max_connections_per_peer": 1000},
           "links": [{"ori": f"AZH{i:06d}"} for i in range(N)]}
    sw = await make_switch(raw=raw)
    keeper = HeapKeeper(lambda: len(sw.engine.conns), growth=N // 2)
    assert keeper.check() is None  # nothing grew
    port = sw.addresses[0][1]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _LINKS, str(port), str(N), stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL, cwd=ROOT)
    try:
        assert await until(lambda: sum(1 for ep in sw.links.values() if ep.ready) >= N, 30)
        kinds = (Conn, Link, LinkConnection, Endpoint)
        assert _alive(*kinds) >= N
        frozen = gc.get_freeze_count()
        assert keeper.check() == "freeze"
        # Frozen: a full collection no longer walks them.
        assert _alive(*kinds) == 0
        assert gc.get_freeze_count() - frozen >= 4 * N
        assert keeper.check() is None
        assert proc.stdin is not None
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        assert await until(lambda: not sw.engine.conns, 30)
        # A closed link's timer entry holds it until it is due (its heartbeat);
        # past that, every link object was freed by its reference count, frozen
        # or not: none is left for a collection to find (none in a cycle).
        later = sw.now()
        sw.apply(sw.engine.tick(Now(later.mono + 3600, later.wall)))
        gc.unfreeze()
        assert _alive(*kinds) == 0, [(type(o).__name__, [type(r).__name__ for r in
                                                        gc.get_referrers(o)])
                                     for o in _ours(kinds)[:6]]
        gc.freeze()
        # Most of the links are gone: the collector looks at everything once.
        assert keeper.check() == "refreeze"
        assert keeper.check() is None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
