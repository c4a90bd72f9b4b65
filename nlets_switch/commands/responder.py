"""``nlets-switch responder NAME... --connect HOST:PORT``: adapters out of process.

Runs one or more adapters (``leis``, ``states``, or any installed one) in
their own process. For every ORI they answer as, it signs on over TCP like
any endpoint, which replaces the switch's in-process endpoint for that ORI
(PROTOCOL part 1: a second sign-on replaces the first). The adapter code is
the same as in the switch; only :meth:`Context.answer` differs: it sends
over the link signed on as the answering ORI.

Each delivered message is acknowledged when its handler is done, so the
switch's window (PROTOCOL part 1) bounds how many run at once, and a message
whose handler did not finish is delivered again on the next sign-on.
The process stops on SIGTERM or Ctrl-C (signing off), or with exit code 1
when the switch closes a link.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from nlets_switch.commands._common import (
    SubParsers,
    add_config_args,
    config_or_exit,
    parse_hostport,
)
from nlets_switch.config import Config
from nlets_switch.core.directory import Directory
from nlets_switch.errors import AdapterError, ConfigError, SmCode
from nlets_switch.log import configure, get_logger
from nlets_switch.services import adapter as ad
from nlets_switch.services import local as svc
from nlets_switch.store import textcrypt
from nlets_switch.tools.client import Client, SignOnError
from nlets_switch.wire import frames as fr
from nlets_switch.wire.message import parse_output
from nlets_switch.wire.schema import SchemaSet, load_schemas


def register(sub: SubParsers) -> None:
    """Add ``responder``."""
    p = sub.add_parser(
        "responder", help="run adapters (leis, states, ...) as their own process",
        description="Run adapters out of process: sign on as every ORI they answer as "
        "(leis: VTICE0900; states: every simulated control terminal) and answer what the "
        "switch delivers. Same code as in the switch.")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="adapter names (see `nlets-switch adapters`)")
    p.add_argument("--connect", default="127.0.0.1:7330", metavar="HOST:PORT",
                   help="the switch (default 127.0.0.1:7330)")
    p.add_argument("--credential", help="sign-on credential (prefer --credential-file: "
                   "a command line is visible to other users)")
    p.add_argument("--credential-file", metavar="FILE",
                   help="read the sign-on credential from FILE: the service credential "
                   "`serve` makes at start-up (DATA_DIR/service.credential, shown in its "
                   "banner). Service ORIs never sign on without one (or a client "
                   "certificate)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    add_config_args(p)
    p.set_defaults(func=responder)


def responder(args: argparse.Namespace) -> int:
    """Run until signalled; 1 on a start-up error or a lost link."""
    configure(args.log_level, None)
    cfg = config_or_exit(args)
    if cfg is None:
        return 1
    try:
        chosen = choose(args.names)
        schemas = load_schemas(ad.schema_dirs(chosen))
        ad.check_adapters(chosen, schemas)
    except (AdapterError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    try:
        # The keyring the LEIS data (and any text) is sealed under: the switch's.
        textcrypt.configure_for(cfg.security.text_key_file, cfg.security.encrypt_text,
                                create=True)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    host, port = parse_hostport(args.connect)
    credential = args.credential
    if args.credential_file:
        try:
            credential = Path(args.credential_file).read_text().strip()
        except OSError as e:
            print(f"error: cannot read --credential-file: {e}", file=sys.stderr)
            return 1
    return asyncio.run(Responder(cfg, chosen, schemas).run(host, port, credential))


def choose(names: list[str]) -> list[ad.Loaded]:
    """The installed adapters of those names, in that order; AdapterError otherwise."""
    eps = {ep.name: ep for ep in ad.entry_points()}
    unknown = [n for n in names if n not in eps]
    if unknown:
        raise AdapterError(f"no adapter named {', '.join(unknown)} is installed "
                           f"(installed: {', '.join(sorted(eps)) or 'none'})")
    return [ad.load_entry_point(eps[n]) for n in dict.fromkeys(names)]


class Responder:
    """Adapters hosted over TCP links, one link per answering ORI."""

    def __init__(self, cfg: Config, adapters: list[ad.Loaded], schemas: SchemaSet) -> None:
        self.cfg = cfg
        self.adapters = adapters
        self.schemas = schemas
        self.directory = Directory(cfg.entries)
        self.clients: dict[str, Client] = {}
        self.handlers: dict[str, dict[str, tuple[ad.Loaded, ad.Context]]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.log = get_logger("responder")

    async def send(self, link: str, text: str) -> None:
        """Send over ``link``'s client; wait for the switch's A (custody)."""
        client = self.clients.get(link)
        if client is None:
            raise ConnectionError(f"no link signed on as {link}")
        answer = await client.send(text)
        if not answer.ok:
            raise ConnectionError(f"switch refused the message: {answer.text}")

    async def run(self, host: str, port: int, credential: str | None) -> int:
        """Start adapters, sign on, serve until a signal or a lost link."""
        started: list[ad.Loaded] = []
        try:
            for loaded in self.adapters:
                section = svc.adapter_section(self.cfg, loaded)
                oris = tuple(loaded.adapter.oris(self.directory, section.options))
                svc.check_oris(loaded, oris, self.directory)
                ctx = svc.context_for(self.cfg, loaded, oris, self.directory, self.schemas,
                                      self.send)
                await loaded.adapter.start(ctx)
                started.append(loaded)
                for ori in oris:
                    for key in loaded.keys:
                        self.handlers.setdefault(ori, {})[key] = (loaded, ctx)
            for ori in self.handlers:
                self.clients[ori] = await Client.connect(host, port, ori, credential,
                                                         auto_ack=False, keep_frames=True)
            print(f"responder {' '.join(a.name for a in self.adapters)}: signed on as "
                  f"{len(self.clients)} ORI(s): {' '.join(sorted(self.clients))}", flush=True)
            return await self._serve(host, port, credential)
        except (SignOnError, OSError, AdapterError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        finally:
            for c in self.clients.values():
                with contextlib.suppress(Exception):
                    await c.close()
            for t in list(self.tasks):
                t.cancel()
            await asyncio.gather(*self.tasks, return_exceptions=True)
            for loaded in started:
                with contextlib.suppress(Exception):
                    await loaded.adapter.stop()

    async def _serve(self, host: str, port: int, credential: str | None) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        links = [loop.create_task(self._keep(ori, host, port, credential),
                                  name=f"responder-{ori}") for ori in self.clients]
        await stop.wait()
        for t in links:
            t.cancel()
        await asyncio.gather(*links, return_exceptions=True)
        return 0

    async def _keep(self, ori: str, host: str, port: int, credential: str | None) -> None:
        """Serve ``ori``'s link; when it drops, sign on again with back-off.

        What the switch had sent and not yet seen acknowledged comes again on
        the new link (PROTOCOL part 1), so nothing is lost in between.
        """
        delay = 0.5
        while True:
            await self._read(ori, self.clients[ori])
            self.log.warning("link_lost", ori=ori)
            while True:
                await asyncio.sleep(delay)
                try:
                    self.clients[ori] = await Client.connect(host, port, ori, credential,
                                                             auto_ack=False, keep_frames=True)
                except (SignOnError, OSError, TimeoutError) as e:
                    self.log.warning("reconnect_failed", ori=ori, error=type(e).__name__,
                                     retry_s=min(delay * 2, 10.0))
                    delay = min(delay * 2, 10.0)
                    continue
                self.log.info("signed_on_again", ori=ori)
                delay = 0.5
                break

    async def _read(self, ori: str, client: Client) -> None:
        frames = client.frames
        assert frames is not None
        while True:
            get = asyncio.ensure_future(frames.get())
            closed = asyncio.ensure_future(client.closed.wait())
            done, _ = await asyncio.wait({get, closed}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                closed.cancel()
                return
            closed.cancel()
            f = get.result()
            if f.type != fr.MESSAGE:
                continue
            with contextlib.suppress(asyncio.QueueEmpty):
                client.inbox.get_nowait()  # the text is in the frame; keep the inbox empty
            task = asyncio.get_running_loop().create_task(self._handle(ori, client, f))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _handle(self, ori: str, client: Client, f: fr.Frame) -> None:
        answer, body = fr.ACK, b""
        try:
            out = parse_output(f.body.decode("ascii", "replace"))
            loaded, ctx = self.handlers.get(ori, {}).get(out.key, (None, None))
            sm = await ad.dispatch(loaded.adapter if loaded is not None else None, ctx,
                                   ad.Inquiry.from_output(out, self.schemas),
                                   schemas=self.schemas, log=self.log.bind(ori=ori))
            if sm is not None:
                # Only the switch sends SM (PROTOCOL part 4): the delivery is refused
                # with the SM's reason, and the switch records it as refused.
                answer, body = fr.NAK, SmCode.NOT_TAKEN.wire.encode()
        except asyncio.CancelledError:
            raise  # not acknowledged: the switch delivers it again
        except Exception as e:  # one failed inquiry must not stop the responder
            self.log.error("handler_failed", ori=ori, error=type(e).__name__)
        with contextlib.suppress(Exception):
            client.send_frame(answer, body, seq=f.seq)
