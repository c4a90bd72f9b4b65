"""``nlets-switch serve`` and ``nlets-switch check-config``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from nlets_switch.commands import _start
from nlets_switch.commands._common import SubParsers, add_config_args, config_or_exit, pid_file
from nlets_switch.config import Config, load_config
from nlets_switch.errors import ConfigError, StoreError
from nlets_switch.log import LOG_FORMATS, configure, get_logger, wants_console


def register(sub: SubParsers) -> None:
    """Add ``serve`` and ``check-config``."""
    p = sub.add_parser(
        "serve", help="run the switch (the demo world when no --config is given)",
        description="Run the switch. Without --config it starts the demo world of PROTOCOL "
        "part 8 on 127.0.0.1:7330: AZNLETS20, NYNLETS00 and AZ0070500 sign on without a "
        "credential from loopback. SIGTERM or Ctrl-C stops it gracefully.")
    add_config_args(p)
    p.add_argument("--listen", action="append", default=[], metavar="HOST:PORT",
                   help="address to accept links on (repeatable; overrides the config)")
    p.add_argument("--store", default=None, metavar="postgresql://USER@HOST/DB",
                   help="keep the journal and every table in this PostgreSQL database "
                   "(default: the SQLite file in the data directory; docs/cluster.md)")
    p.add_argument("--node-id", default=None, metavar="NAME",
                   help="this node's name in a cluster of nodes on one --store database "
                   "(overrides store.node_id; docs/cluster.md)")
    p.add_argument("--http", default=None, metavar="HOST:PORT|off",
                   help="operator HTTP: metrics, API, dashboard (default 127.0.0.1:7331; "
                   "'off' turns it off)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="debug also shows every ORI the switch answers for itself signing "
                   "on and off (default info)")
    p.add_argument("--log-format", default="auto", choices=LOG_FORMATS,
                   help="console: a start banner and readable lines; json: one object per "
                   "line; auto (default): console when standard output is a terminal")
    p.add_argument("--log-json", action="store_true", default=None,
                   help="the same as --log-format json")
    p.set_defaults(func=serve)

    r = sub.add_parser("reload", help="make the running switch reload its configuration",
                       description="Check the configuration, then send SIGHUP to the switch "
                       "whose pid file is in the data directory. A configuration with errors "
                       "is refused and the switch keeps the one it has.")
    add_config_args(r)
    r.set_defaults(func=reload_command)

    c = sub.add_parser("check-config", help="validate a configuration file",
                       description="Check a configuration and name the key path of every "
                       "error (links[3].ori: ...). Exit 0 when it is valid.")
    c.add_argument("file", help="YAML configuration")
    c.set_defaults(func=check_config)


def check_config(args: argparse.Namespace) -> int:
    """Print every problem of a configuration; 0 when there is none."""
    try:
        cfg = load_config(args.file)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 1
    n = sum(1 for e in cfg.entries if not e.simulated)
    states = sum(1 for e in cfg.entries if e.simulated and e.is_control_terminal)
    print(f"{args.file}: OK ({n} ORIs configured, "
          f"{states} states simulated, "
          f"listening on {', '.join(lst.address for lst in cfg.listeners)})")
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the switch until SIGTERM/SIGINT."""
    args.console = wants_console("json" if args.log_json else args.log_format)
    configure(args.log_level, not args.console, banner=args.console)
    cfg = config_or_exit(args, args.listen)
    if cfg is None:
        return 1
    from nlets_switch.ops.monitor import http_address_from

    try:
        http = http_address_from(args.http, cfg)
    except ValueError as e:
        print(f"--http: {e}", file=sys.stderr)
        return 1
    # Before anything starts: a port in use is one plain line, not line 53 of 105.
    places = [_start.Place(lst.host, lst.port, "--listen HOST:PORT") for lst in cfg.listeners]
    if http is not None:
        places.append(_start.Place(http[0], http[1], "--http HOST:PORT (or --http off)"))
    problem = _start.first_problem(places)
    if problem is not None:
        print(problem, file=sys.stderr)
        return 1

    if cfg.store.url:
        from nlets_switch.commands.store import refuse_unfit_store

        if refuse_unfit_store(cfg.store.url):  # unreachable or newer: one line, exit 2
            return 2
    else:
        from nlets_switch.commands.journal import refuse_unfit_journal

        if refuse_unfit_journal(cfg):  # damaged, unreadable or read-only: one line, exit 2
            return 2
    try:
        import uvloop  # optional extra: faster event loop

        return uvloop.run(_serve(cfg, args))
    except ImportError:
        return asyncio.run(_serve(cfg, args))


def service_credential_file(data_dir: Path) -> Path:
    """Where ``serve`` keeps the credential its responders sign on with (0600)."""
    return data_dir / "service.credential"


def make_service_credential(data_dir: Path) -> tuple[str, Path]:
    """A new service credential for this run, written 0600 for the operator's responders.

    Service ORIs (``role: service``, simulated state terminals) never sign on
    by the loopback exemption (issue 11): out-of-process responders sign on
    with this (``responder ... --credential-file FILE``), or a client certificate.
    """
    import secrets

    data_dir.mkdir(parents=True, exist_ok=True)
    path = service_credential_file(data_dir)
    secret = secrets.token_urlsafe(24)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret, path


async def _serve(cfg: Config, args: argparse.Namespace) -> int:
    from nlets_switch.ops import checkpoint, retention
    from nlets_switch.ops.monitoring import attach_monitoring
    from nlets_switch.server.app import build_switch
    from nlets_switch.server.heap import HeapKeeper, freeze_startup
    from nlets_switch.services.local import load_adapters

    log = get_logger("serve")
    # From the start: a SIGTERM while the switch starts (its port may already be
    # open) stops it gracefully once started, instead of killing it half-way.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        adapters = load_adapters(cfg)
        secret, secret_file = make_service_credential(Path(cfg.data_dir))
        switch = await build_switch(cfg, adapters, service_credential=secret)
    except ConfigError as e:
        print(e.render(), file=sys.stderr)
        return 1
    # The switch's own ports first, then the operators' (HTTP, then MQTT): a
    # switch that cannot start says nothing to the monitoring of one that runs.
    # (The ports were checked before; this is for one taken in between.)
    try:
        await switch.start()
    except StoreError as e:  # the database went away since the check, say
        print(f"nlets-switch: {e}", file=sys.stderr)
        log.error("cannot_start", error=str(e))
        await switch.stop()
        return 2
    except OSError as e:
        print(f"cannot start: {e}; choose another with --listen HOST:PORT", file=sys.stderr)
        log.error("cannot_start", error=str(e))
        await switch.stop()
        return 1
    try:
        monitoring = await attach_monitoring(switch, cfg, http=args.http)
    except OSError as e:
        print(f"cannot start: {e}; choose another with --http HOST:PORT (or --http off)",
              file=sys.stderr)
        log.error("cannot_start", error=str(e), hint="--http HOST:PORT or --http off")
        await switch.stop()
        return 1
    if monitoring.http_address is not None:
        host, port = monitoring.http_address
        log.info("operator_http", url=f"http://{host}:{port}/")
    if args.console:
        services = ["NL", *(a.name for a in adapters)]
        print(_start.banner(cfg, switch.addresses, monitoring.http_address, services,
                            secret_file), flush=True)
    log.info("service_credential", file=str(secret_file),
             hint="responders: --credential-file FILE")
    pruning = asyncio.create_task(retention.retention_task(switch, cfg), name="retention")
    # Signed checkpoints of the audit chain, outside the data directory (issue 11).
    checkpoints = asyncio.create_task(
        checkpoint.checkpoint_task(cfg, monitoring.monitor.publish), name="audit-checkpoint")
    pid = pid_file(Path(cfg.data_dir))
    pid.write_text(f"{os.getpid()}\n")
    freeze_startup()
    # Links that sign on in numbers are frozen too (issue 15: full collections
    # over 10,000 idle links' objects took up to 67 ms).
    keeper = HeapKeeper(lambda: len(switch.engine.conns))
    heap = asyncio.create_task(keeper.run(), name="heap")

    def reload() -> None:
        # SIGHUP: read the configuration again; keep the old one on any error.
        new = config_or_exit(args, args.listen)
        if new is None:
            log.error("reload_refused", source=cfg.source)
            switch.audit("config_reload", cfg.source, "failure")
            return
        switch.reload(new)

    loop.add_signal_handler(signal.SIGHUP, reload)
    await stop.wait()
    log.info("stopping")
    pruning.cancel()
    checkpoints.cancel()
    heap.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await pruning
    with contextlib.suppress(asyncio.CancelledError):
        await checkpoints
    with contextlib.suppress(asyncio.CancelledError):
        await heap
    await switch.stop()
    # The last head, with the sign-offs of the stop in it; MQTT still runs.
    try:
        cp = await asyncio.to_thread(checkpoint.write_checkpoint, cfg)
        if cp is not None:
            monitoring.monitor.publish({"event": "audit_checkpoint", **cp.to_dict()})
    except (OSError, ValueError, StoreError) as e:
        log.error("audit_checkpoint_failed", error=f"{type(e).__name__}: {e}")
    # After the switch: its links' offline events and the final status reach MQTT.
    await monitoring.stop()
    with contextlib.suppress(OSError):
        pid.unlink()
    with contextlib.suppress(OSError):
        secret_file.unlink()  # good for this run only
    return 0


def reload_command(args: argparse.Namespace) -> int:
    """Check the configuration, then ask the running switch to reload it (SIGHUP)."""
    cfg = config_or_exit(args)
    if cfg is None:
        print("reload refused: the running switch keeps its configuration", file=sys.stderr)
        return 1
    pid = pid_file(Path(cfg.data_dir))
    try:
        os.kill(int(pid.read_text().strip()), signal.SIGHUP)
    except (OSError, ValueError) as e:
        print(f"no running switch found through {pid}: {e}", file=sys.stderr)
        return 1
    print(f"reload requested (pid file {pid})")
    return 0
