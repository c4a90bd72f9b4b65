"""What ``serve`` says when it starts: the port check before anything else, and the banner.

A port already taken is the commonest first-hour failure (a second
``make run``); it is found before the switch starts its services, so that
the one line that explains it is the first and only thing printed.
"""

from __future__ import annotations

import errno
import importlib.metadata
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nlets_switch.config import Config

#: ``Config.source`` of the demo world (PROTOCOL part 8).
DEMO_SOURCE = "(demo world)"


def port_problem(host: str, port: int) -> str | None:
    """Why the switch could not listen on ``host:port``, or None when it can.

    Binds (and closes at once) a socket for every address ``host`` resolves
    to, with the options asyncio's server uses (``SO_REUSEADDR``, IPv6 only
    on IPv6 sockets), so that it fails exactly where the server would.
    Port 0 (any free port) is always fine.
    """
    if port == 0:
        return None
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as e:
        return f"{host}:{port}: cannot resolve {host!r} ({e.strerror})"
    for family, kind, proto, _name, sockaddr in infos:
        try:
            s = socket.socket(family, kind, proto)
        except OSError:
            continue  # a family this machine lacks (IPv6 off): the server skips it too
        with s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                s.bind(sockaddr)
            except OSError as e:
                return f"{host}:{port} {_why(e)}"
    return None


def _why(e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return "is already in use (is another nlets-switch running?)"
    if e.errno == errno.EACCES:
        return "needs privileges (ports below 1024)"
    if e.errno == errno.EADDRNOTAVAIL:
        return "is not an address of this machine"
    return f"cannot be used: {e.strerror or e}"


@dataclass(frozen=True, slots=True)
class Place:
    """One address to check, and the option that changes it."""

    host: str
    port: int
    option: str


def first_problem(places: Iterable[Place]) -> str | None:
    """The line ``serve`` prints when one of ``places`` cannot be listened on."""
    for p in places:
        why = port_problem(p.host, p.port)
        if why is not None:
            return f"cannot start: {why}; choose another with {p.option}"
    return None


def version() -> str:
    """The installed version of nlets-switch ("" when it is not installed)."""
    try:
        return importlib.metadata.version("nlets-switch")
    except importlib.metadata.PackageNotFoundError:
        return ""


def banner(cfg: Config, addresses: Sequence[tuple[str, int]],
           http: tuple[str, int] | None, services: Sequence[str],
           service_credential: Path | None = None) -> str:
    """The few lines a person reads when the switch has started in a terminal.

    ``addresses`` are where the links are accepted (the real ports, from the
    switch), ``http`` the operator HTTP server's address (None when off),
    ``services`` the names of what the switch answers for itself,
    ``service_credential`` the file of the credential responders sign on with.
    """
    tls = {(lst.host, lst.port) for lst in cfg.listeners if lst.tls}
    links = ", ".join(f"{h}:{p}" + (" (TLS)" if (h, p) in tls else "") for h, p in addresses)
    simulated = sum(1 for e in cfg.entries if e.simulated)
    url = f"http://{http[0]}:{http[1]}/" if http is not None else "off (--http HOST:PORT)"
    demo = cfg.source == DEMO_SOURCE
    lines = [
        f"nlets-switch {version()} is running "
        + ("the demo world (PROTOCOL part 8)" if demo else f"with {cfg.source}"),
        f"  links      {links or '-'}",
        f"  dashboard  {url}",
        f"  data       {Path(cfg.data_dir).resolve()}",
        f"  directory  {len(cfg.entries)} ORIs, {simulated} of them simulated states",
        f"  services   {', '.join(services) or '-'}",
    ]
    if demo and addresses:
        host, port = addresses[0]
        where = "" if (host, port) == ("127.0.0.1", 7330) else f" --connect {host}:{port}"
        lines.append(f"  try        nlets-switch term --ori AZNLETS20{where}   "
                     "(in another terminal)")
    if service_credential is not None:
        lines.append(f"  responders nlets-switch responder leis --credential-file "
                     f"{service_credential}   (service ORIs sign on only with it)")
    lines.append("Ctrl-C stops it. Log lines follow (--log-level debug shows every ORI's "
                 "sign-on).")
    return "\n".join(lines)
