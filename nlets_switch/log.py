"""structlog, configured once (DESIGN.md): context first, ISO UTC times,
JSON in production and readable lines in a terminal.

Never pass message text to a logger: it is criminal-justice information and
lives only in the journal. Bind ``link``, ``ori``, ``mke`` and ``msg_id``.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_configured = False


def configure(level: str = "info", json: bool | None = None) -> None:
    """Configure structlog for the process; ``json=None`` picks by terminal."""
    global _configured
    if json is None:
        json = not sys.stderr.isatty()
    renderer: Any = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
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
