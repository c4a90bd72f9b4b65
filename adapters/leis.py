"""ICE LESC and DHS LEIS (``VTICE0900``, address ``AX``; PROTOCOL part 5).

* ``IAQ``: an ``AM`` whose text starts with ``ACK`` at once, then, after
  ``delay_s`` (default 2), an ``IAR`` saying what the DHS data holds.
* ``GPQ``: a ``GPR`` with the summary (one line per person, ``DIN/`` first,
  best match first, at most ``limit`` lines and a line saying so when
  reached) or ``NO RECORD``; with ``DIN/`` the full record.

The data set (:class:`nlets_switch.services.leis.LeisData`) is built on first start in
``<data_dir>/leis.sqlite`` in a worker thread, logging progress when it
takes more than a second. Inquiries that arrive meanwhile wait for it. With a
PostgreSQL store (``store.url``) the data set is the database's, one for
every node of a cluster (docs/cluster.md), built by the first node to start.

Configuration ``services.leis``: :class:`LeisSettings` (``delay_s``, ``seed``,
``persons``, ``limit``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from nlets_switch.config.model import Between, problems_of
from nlets_switch.core.directory import Directory
from nlets_switch.errors import MessageError, StoreError
from nlets_switch.services import leis_data, leis_model
from nlets_switch.services.adapter import API_VERSION, Context, Inquiry, NotTaken
from nlets_switch.services.leis import DB_NAME, DEFAULT_LIMIT, LeisData, LeisKeyError
from nlets_switch.services.settings import AdapterSettings
from nlets_switch.store import leis as leis_store
from nlets_switch.store import leis_rows, leiscrypt, textcrypt
from nlets_switch.store.leiscrypt import LeisCipher
from nlets_switch.wire.domain import LESC_ORI


class LeisSettings(AdapterSettings):
    """``services.leis``: the DHS LEIS responder (docs/services.md)."""

    delay_s: Annotated[float, Between(0, 3600)] = Field(
        2.0, description="seconds between the ACK and the IAR")
    seed: Annotated[int, Between(0, 2**31, whole=True)] = Field(
        1, description="seed of the synthetic data set")
    persons: Annotated[int, Between(0, 2_000_000, whole=True)] = Field(
        10_000, description="persons in the synthetic data set")
    limit: Annotated[int, Between(1, 500, whole=True)] = Field(
        DEFAULT_LIMIT, description="GPR summary lines at most")


class _Cancelled(Exception):
    """The switch stopped while the data set was still being built."""


def cache_file(seed: int, persons: int, keys: str = "") -> Path:
    """Where a freshly built synthetic data set is kept for the next new data directory.

    ``$NLETS_SWITCH_CACHE`` or ``~/.cache/nlets-switch``; the name carries the
    seed, the size, a hash of the generator, so a changed generator never
    reuses an old copy, and ``keys``, the fingerprint of the keyring it is
    sealed under (a copy sealed under another keyring would not open).
    """
    base = os.environ.get("NLETS_SWITCH_CACHE") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nlets-switch")
    digest = hashlib.sha256()
    # What decides the file's content: the generator, the index keys and the tables.
    for module in (leis_data, leis_model, leis_store, leis_rows, leiscrypt):
        digest.update(Path(module.__file__ or "").read_bytes())
    code = digest.hexdigest()[:12]
    return Path(base) / f"leis-s{seed}-p{persons}-{code}{'-' + keys if keys else ''}.sqlite"


#: Copies kept per seed, size and generator: each keyring (each test session
#: has its own) makes its own, so the oldest are removed.
_CACHE_KEEP = 3


def _prune(cache: Path) -> None:
    stem = cache.name.rsplit("-", 1)[0]
    same = sorted(cache.parent.glob(f"{stem}-*.sqlite"), key=lambda p: p.stat().st_mtime,
                  reverse=True)
    for old in same[_CACHE_KEEP:]:
        old.unlink(missing_ok=True)


def open_store(path: Path, seed: int, persons: int,
               progress: Any = None, store_url: str | None = None) -> LeisData:
    """Open the data set at ``path``; a new one is copied from the cache when it can be.

    With ``store_url`` (a PostgreSQL store) the data set is the database's
    instead, and ``path`` is not used.

    Building 10,000 persons costs one to two seconds of CPU; every fresh data
    directory (each test, each scenario) would pay it again. The copy is
    sealed like the data directory's file (docs/leis.md), under the same keyring.
    Raises :class:`LeisKeyError` (one line) when the file or the keyring is wrong.
    """
    try:
        ring = textcrypt.data_keyring()
    except (OSError, ValueError) as e:
        raise LeisKeyError(str(e)) from None
    cache = cache_file(seed, persons, LeisCipher(ring).fingerprint())
    if store_url:
        # The database's data set, built once for the cluster: from the cache when
        # this machine has one (rows copied as they are), else generated.
        return LeisData.open_url(store_url, seed=seed, persons=persons, progress=progress,
                                 keyring=ring, copy_from=cache if cache.is_file() else None)
    fresh = not path.exists()
    if fresh and cache.is_file():
        try:
            shutil.copyfile(cache, path)
        except OSError:
            path.unlink(missing_ok=True)
    store = LeisData.open(path, seed=seed, persons=persons, progress=progress, keyring=ring)
    if fresh and not cache.is_file():
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            store.backup_to(tmp)
            os.chmod(tmp, 0o600)
            os.replace(tmp, cache)
            _prune(cache)
        except OSError:
            pass  # a cache is a convenience: a read-only home must not stop the switch
    return store


class LeisAdapter:
    """The ``AX`` responder: answers ``IAQ`` and ``GPQ`` as ``VTICE0900``."""

    API_VERSION = API_VERSION
    name = "leis"
    version = "1.0"
    keys = frozenset({"IAQ", "GPQ"})
    schema_dirs: tuple[Path, ...] = ()
    settings_model = LeisSettings

    def __init__(self) -> None:
        self.store: LeisData | None = None
        #: Why the data set cannot be used (a wrong or missing keyring), else None.
        self.failure: str | None = None
        self._ready: asyncio.Task[LeisData | None] | None = None
        #: Opens the data again after the database could not be reached.
        self._reopen: Callable[[], asyncio.Task[LeisData | None]] | None = None
        self._cancel = threading.Event()
        self._later: set[asyncio.Task[None]] = set()
        self.settings = LeisSettings()

    def check_config(self, section: Mapping[str, Any]) -> list[str]:
        """Problems of ``services.leis`` (paths relative to the section)."""
        return problems_of(LeisSettings, section)

    def oris(self, directory: Directory, section: Mapping[str, Any]) -> tuple[str, ...]:
        """``VTICE0900`` when the directory has it (PROTOCOL part 8)."""
        return (LESC_ORI,) if directory.entry(LESC_ORI) is not None else ()

    async def start(self, ctx: Context) -> None:
        """Start building (or opening) the data set in a worker thread."""
        cfg = self.settings = ctx.settings_as(LeisSettings)
        path = ctx.data_dir / DB_NAME
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        last = [started]

        def progress(done: int, total: int) -> None:
            # Runs on the worker thread: only the (thread-safe) logger call.
            if self._cancel.is_set():
                raise _Cancelled()  # rolls the build back; the next start redoes it
            now = time.monotonic()
            if now - started > 1.0 and (now - last[0] > 1.0 or done >= total):
                last[0] = now
                ctx.log.info("leis_building", done=done, total=total)

        def build() -> LeisData:
            return open_store(path, cfg.seed, cfg.persons, progress, ctx.store_url)

        async def opened() -> LeisData | None:
            try:
                store = await asyncio.to_thread(build)
            except LeisKeyError as e:
                self._unavailable(ctx, e)
                return None
            except StoreError as e:
                # The database was away: said, and tried again at the next inquiry.
                ctx.log.error("leis_unavailable", error=str(e))
                self._reopen = lambda: loop.create_task(opened(), name="leis-open")
                return None
            self.store = store
            ctx.log.info("leis_ready", persons=store.count(),
                         seconds=round(time.monotonic() - started, 2))
            return store

        self._ready = loop.create_task(opened(), name="leis-open")

    def _unavailable(self, ctx: Context, e: LeisKeyError) -> NotTaken:
        """A keyring that does not open the data: one error line (no traceback, no
        CJI: the message names files and key ids), and every inquiry gets SM .01."""
        if self.failure is None:
            ctx.log.error("leis_unavailable", error=str(e))
        self.failure = str(e)
        return NotTaken(f"DHS LEIS data unavailable: {e}")

    async def _store(self) -> LeisData:
        if self.store is not None:
            return self.store
        assert self._ready is not None, "start() first"
        store = await asyncio.shield(self._ready)
        if store is None:
            if self._reopen is not None and self.failure is None:
                self._ready, self._reopen = self._reopen(), None
                raise NotTaken("DHS LEIS data unavailable: the database cannot be reached")
            raise NotTaken(f"DHS LEIS data unavailable: {self.failure}")
        return store

    async def handle(self, ctx: Context, inquiry: Inquiry) -> None:
        """IAQ: ACK now and IAR later; GPQ: GPR."""
        if self.failure is not None:
            raise NotTaken(f"DHS LEIS data unavailable: {self.failure}")
        if inquiry.key == "IAQ":
            await ctx.answer(inquiry.reply(
                "AM", f"ACK IAQ RECEIVED BY ICE LESC {LESC_ORI}\n"
                      "AN IAR WILL FOLLOW"))
            # The IAR comes later, as LESC sends it: the IAQ's delivery slot is
            # freed at once, so pending IARs never hold GPQs back.
            task = asyncio.get_running_loop().create_task(self._iar_later(ctx, inquiry))
            self._later.add(task)
            task.add_done_callback(self._later.discard)
        elif inquiry.key == "GPQ":
            store = await self._store()
            try:
                text = await asyncio.to_thread(store.gpq_text, inquiry.fields,
                                               self.settings.limit)
            except MessageError as e:
                # Only the switch sends ER (part 4): LESC says why in its GPR.
                text = f"GPQ REJECTED\n{e.code.wire}\n{e.detail}".rstrip()
            except LeisKeyError as e:
                raise self._unavailable(ctx, e) from None
            except StoreError as e:
                # The database is away (an outage): this inquiry is not taken, and
                # the next one tries again (the store reconnects).
                ctx.log.warning("leis_database_unavailable", error=str(e))
                raise NotTaken(f"DHS LEIS data unavailable: {e}") from None
            await ctx.answer(inquiry.reply("GPR", text))
        else:
            raise NotTaken(f"ICE LESC answers IAQ and GPQ, not {inquiry.key}")

    async def _iar_later(self, ctx: Context, inquiry: Inquiry) -> None:
        try:
            store = await self._store()
            if self.settings.delay_s:
                await asyncio.sleep(self.settings.delay_s)
            text = await asyncio.to_thread(store.iar_text, inquiry.fields)
            await ctx.answer(inquiry.reply("IAR", text))
        except LeisKeyError as e:
            self._unavailable(ctx, e)
        except StoreError as e:
            ctx.log.warning("leis_database_unavailable", error=str(e))
        except NotTaken:
            pass  # the data set did not open: said once, as leis_unavailable
        except ConnectionError:
            pass  # the switch is stopping
        except Exception as e:  # one failed IAR must not take the adapter down
            ctx.log.error("iar_failed", error=type(e).__name__)

    async def stop(self) -> None:
        """Drop IARs still waiting; close the data set; abandon a build still running."""
        for task in list(self._later):
            task.cancel()
        await asyncio.gather(*self._later, return_exceptions=True)
        self._cancel.set()
        if self._ready is not None and not self._ready.done():
            try:
                await self._ready
            except Exception:  # cancelled or failed: nothing to close
                pass
        if self.store is not None:
            self.store.close()
            self.store = None
