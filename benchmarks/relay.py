"""A bare asyncio relay: the floor the switch's throughput is compared with.

It speaks the same link framing as the switch (PROTOCOL part 1, parsed with
the switch's own :class:`~nlets_switch.wire.frames.FrameBuffer`) and does only
what cannot be left out of moving a message from one link to another:

* ``C`` sign-on by ORI (any ORI is accepted) answered ``A NL0000000``;
* ``M`` answered ``A`` at once (no journal, no custody), then forwarded
  unchanged to the link of its first destination, found by parsing only the
  header's destination field (a 2-letter state goes to the last link that
  signed on with an ORI of that state);
* ``H`` echoed, ``D`` answered ``A`` and closed; ``A``/``N`` ignored.

No validation, no routing rules, no output header, no window, no journal.
Writes are gathered per peer and flushed once per loop turn, as the switch
does, so the comparison is about the work the switch does, not about
syscalls. Run: ``python benchmarks/relay.py --listen 127.0.0.1:7391``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any, cast

from nlets_switch.errors import FrameError
from nlets_switch.wire import frames as fr

_SWITCH_ORI = b"NL0000000"


class Relay:
    """The relay's table of signed-on links, by ORI and by state."""

    def __init__(self) -> None:
        self.by_ori: dict[bytes, RelayLink] = {}
        self.by_state: dict[bytes, RelayLink] = {}
        self.forwarded = 0
        self.dropped = 0

    def find(self, dest: bytes) -> RelayLink | None:
        """The link a destination address goes to, or None."""
        if len(dest) == 2:
            return self.by_state.get(dest)
        return self.by_ori.get(dest[:9])


class RelayLink(asyncio.Protocol):
    """One TCP link of the relay."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.buf = fr.FrameBuffer()
        self.ori: bytes | None = None
        self.seq = 0
        self.out: list[bytes] = []
        self.flush_scheduled = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        # uvloop's transports do not subclass asyncio.Transport; same interface.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget this link's ORI."""
        if self.ori is not None and self.relay.by_ori.get(self.ori) is self:
            del self.relay.by_ori[self.ori]
            if self.relay.by_state.get(self.ori[:2]) is self:
                del self.relay.by_state[self.ori[:2]]
        self.transport = None

    def queue(self, data: bytes) -> None:
        """Queue bytes; written together at the end of this loop turn."""
        self.out.append(data)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Write what was queued in one call."""
        self.flush_scheduled = False
        if self.out and self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(self.out)
        self.out = []

    def forward(self, body: bytes) -> None:
        """Send ``body`` to this link as an ``M`` frame."""
        self.seq = (self.seq + 1) & 0xFFFFFFFF
        self.queue(fr.encode_frame(fr.MESSAGE, self.seq, body))

    def data_received(self, data: bytes) -> None:
        """Frames in: answer, forward."""
        try:
            frames = self.buf.feed(data)
        except FrameError as e:
            self.queue(fr.encode_frame(fr.NAK, 0, e.wire.encode()))
            self.close()
            return
        relay = self.relay
        for f in frames:
            t = f.type
            if t == fr.MESSAGE:
                if self.ori is None:
                    self.queue(fr.encode_frame(fr.NAK, f.seq, b".01. SIGN-ON REQUIRED"))
                    self.close()
                    return
                self.queue(fr.encode_frame(fr.ACK, f.seq))
                # Only the destination field of "MKE.ORIGIN.DEST[,DEST][.*CTL].TXT".
                parts = f.body.split(b".", 3)
                dest = parts[2].split(b",", 1)[0] if len(parts) > 2 else b""
                peer = relay.find(dest)
                if peer is None:
                    relay.dropped += 1
                else:
                    relay.forwarded += 1
                    peer.forward(f.body)
            elif t == fr.ACK or t == fr.NAK:
                pass
            elif t == fr.SIGN_ON:
                ori = f.body[:9]
                self.ori = ori
                relay.by_ori[ori] = self
                relay.by_state[ori[:2]] = self
                self.queue(fr.encode_frame(fr.ACK, f.seq, _SWITCH_ORI))
            elif t == fr.HEARTBEAT:
                self.queue(fr.encode_frame(fr.HEARTBEAT, f.seq))
            elif t == fr.SIGN_OFF:
                self.queue(fr.encode_frame(fr.ACK, f.seq))
                self.close()
                return
        if self.buf.failed:
            self.close()

    def close(self) -> None:
        """Flush and close."""
        self.flush()
        if self.transport is not None:
            self.transport.close()


async def serve(host: str, port: int) -> None:
    """Run the relay until SIGTERM or SIGINT."""
    relay = Relay()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: RelayLink(relay), host, port, reuse_address=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"relay listening on {host}:{port}", flush=True)
    await stop.wait()
    server.close()
    for link in list(relay.by_ori.values()):
        link.close()
    print(f"relay stopped: {relay.forwarded} forwarded, {relay.dropped} dropped", flush=True)


def runner() -> Callable[[Coroutine[Any, Any, None]], None]:
    """uvloop's runner when installed (as the switch uses), else asyncio's."""
    try:
        import uvloop

        return uvloop.run
    except ImportError:
        return asyncio.run


def main(argv: list[str] | None = None) -> int:
    """Command line: ``--listen HOST:PORT``."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--listen", default="127.0.0.1:7391", metavar="HOST:PORT")
    args = ap.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    runner()(serve(host, int(port)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
