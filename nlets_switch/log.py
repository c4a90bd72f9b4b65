"""structlog, configured once (DESIGN.md): context first, ISO UTC times,
JSON in production and readable lines in a terminal.

Never pass message text to a logger: it is criminal-justice information and
lives only in the journal. Bind ``link``, ``ori``, ``mke`` and ``msg_id``.

Two formats (``serve --log-format``): ``json``, one object per line, for
log collectors; ``console``, one readable line per event
(``2026-12-01T02:22:27Z [info     ] listening   [switch] addresses=...``).
``auto`` (the default) picks ``console`` when standard output is a terminal
and ``json`` when it is not.

Routine events are kept at debug level: every ORI the switch answers for
itself (NL0000000, VTICE0900, each simulated state: about 55 in the demo
world) signs on at start and off at stop, and those lines would bury what an
operator needs to read. See :data:`ROUTINE`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Final

import structlog

#: The values of ``serve --log-format``.
LOG_FORMATS: Final = ("auto", "console", "json")

#: Events that are routine for an endpoint inside the switch's own process
#: (``kind=local``): shown at debug level only. A real link's sign-on and
#: sign-off stay at info.
ROUTINE: Final = frozenset({"signed_on", "signed_off"})

#: Start-up events that ``serve``'s console banner says again (where it
#: listens, which adapters run): at debug level when there is a banner.
SAID_BY_BANNER: Final = frozenset({"listening", "http_listening", "operator_http",
                                   "adapter_started"})

_configured = False


def wants_console(fmt: str = "auto") -> bool:
    """Whether ``fmt`` (one of :data:`LOG_FORMATS`) means readable console lines."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    if fmt == "auto":
        return sys.stdout.isatty()
    return fmt == "console"


class RoutineFilter:
    """A structlog processor that lowers :data:`ROUTINE` events of local endpoints to debug.

    ``signed_on`` names the endpoint's ``kind``; ``signed_off`` does not, so
    the filter remembers which ORIs signed on as ``local`` (a responder's
    TCP link that replaces a local endpoint takes its ORI out again). Events
    named in ``also`` are lowered whatever they carry. Below ``min_level`` a
    lowered event is dropped; at debug it is shown as debug.
    """

    def __init__(self, min_level: int, also: frozenset[str] = frozenset()) -> None:
        self.min_level = min_level
        self.also = also
        self.local: set[str] = set()

    def __call__(self, logger: Any, method: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        """Pass the event on, lowered to debug, or drop it (structlog.DropEvent)."""
        event = event_dict.get("event")
        if event in ROUTINE:
            lower = self._local(event, event_dict.get("ori"), event_dict.get("kind"))
        else:
            lower = event in self.also
        if not lower or method != "info":
            return event_dict  # warnings and errors are never lowered
        if self.min_level > logging.DEBUG:
            raise structlog.DropEvent
        event_dict["level"] = "debug"
        return event_dict

    def _local(self, event: str, ori: Any, kind: Any) -> bool:
        """Whether a ROUTINE event is about a local endpoint (and remember sign-ons)."""
        if event == "signed_on":
            if kind == "local":
                self.local.add(ori)
                return True
            self.local.discard(ori)
            return False
        return ori in self.local


def _rename_component(logger: Any, method: str,
                      event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # The console renderer shows the ``logger`` key in brackets after the event.
    if "component" in event_dict:
        event_dict["logger"] = event_dict.pop("component")
    return event_dict


def configure(level: str = "info", json: bool | None = None, *, banner: bool = False) -> None:
    """Configure structlog for the process.

    ``json=None`` picks by terminal (:func:`wants_console` with ``auto``).
    ``banner``: the process prints a start banner, so the events it repeats
    (:data:`SAID_BY_BANNER`) are lowered to debug. Log lines go to standard
    error.
    """
    global _configured
    if json is None:
        json = not wants_console("auto")
    min_level = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        RoutineFilter(min_level, SAID_BY_BANNER if banner else frozenset()),
    ]
    if json:
        processors += [structlog.processors.TimeStamper(fmt="iso", utc=True),
                       structlog.processors.JSONRenderer()]
    else:
        # Seconds are enough on a screen; still ISO 8601 and UTC.
        processors += [structlog.processors.TimeStamper(fmt="%Y-%m-%dT%H:%M:%SZ", utc=True),
                       _rename_component,
                       structlog.dev.ConsoleRenderer(colors=False, sort_keys=False)]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _configured = True


def get_logger(name: str) -> Any:
    """A logger for a component (``component=name``).

    Lazy: modules call this at import time, before :func:`configure`; the
    logger takes the configuration in force when it is first used.
    """
    return structlog.get_logger(component=name)
