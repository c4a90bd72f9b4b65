"""A throwaway PostgreSQL for tests: Debian's binaries, a temporary directory, a free port.

Debian keeps ``initdb`` and ``pg_ctl`` off the PATH in
``/usr/lib/postgresql/<version>/bin``; ``initdb`` refuses to run as root, so
as root the server runs as the ``postgres`` user in a directory it owns. The
server listens on 127.0.0.1 only (and a Unix socket in its own directory),
trusts local connections, and is stopped and removed at the end of the
session. Each test gets a fresh database of its own (:func:`pg_url`).

Use with ``pytest_plugins = ["tests.conftest_postgres"]``. Tests are skipped,
saying why, only when the binaries are absent (``make system-deps`` installs
them).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import free_port

#: The role the tests connect as (made by initdb, superuser).
USER = "nlets"


def _bin_dir() -> Path | None:
    """The newest Debian PostgreSQL's bin directory that has initdb and pg_ctl."""
    found = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        d = Path(initdb).parent
        try:
            version = int(d.parent.name)
        except ValueError:
            continue
        if (d / "pg_ctl").exists():
            found.append((version, d))
    return max(found)[1] if found else None


class PgServer:
    """One PostgreSQL server in a temporary directory; :meth:`stop` / :meth:`start` it."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = Path(tempfile.mkdtemp(prefix="nlets-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self._names = itertools.count(1)
        # As root, run everything as postgres (initdb refuses root) in a
        # directory postgres owns.
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._as = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=trust", "-E", "UTF8",
                  "--locale=C.UTF-8", "--no-instructions")

    def _run(self, tool: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.bin / tool), *args], check=check, capture_output=True,
                              text=True, cwd=self.root, timeout=60, **self._as)

    @property
    def admin_url(self) -> str:
        """The server's ``postgres`` database (to create and drop others)."""
        return self.url("postgres")

    def url(self, db: str) -> str:
        """A URL to database ``db`` on this server."""
        return f"postgresql://{USER}@{self.host}:{self.port}/{db}"

    def start(self) -> None:
        """Start (or restart) the server on the same port and directory; wait until it is up.
        Nothing to do when it runs."""
        if self.running():
            return
        opts = (f"-p {self.port} -c listen_addresses={self.host} -k {self.root} "
                "-c max_connections=200 -c shared_buffers=32MB")
        r = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", opts, "-w",
                      "-t", "60", "start", check=False)
        if r.returncode != 0:
            tail = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start: {r.stderr.strip()}\n{tail}")

    def running(self) -> bool:
        """Whether the server is up (``pg_ctl status``)."""
        return self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect every session, like an outage)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop", check=False)

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = f"t{next(self._names)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (started once, removed at the end)."""
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL's binaries are not installed (/usr/lib/postgresql/*/bin/"
                    "initdb; Debian package postgresql, `make system-deps`)")
    pytest.importorskip("psycopg", reason="the [postgres] extra (psycopg) is not installed")
    server = PgServer(bin_dir)
    try:
        server.start()
        yield server
    finally:
        server.remove()


@pytest.fixture
def pg_url(pg_server: PgServer) -> str:
    """A fresh, empty database of the session's server, for one test."""
    # A test that stopped the server (an outage) may have left it down.
    pg_server.start()
    return pg_server.create_database()
