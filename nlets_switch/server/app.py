"""Assembles a running switch from a configuration: the core, then what plugs into it.

Kept apart from :mod:`nlets_switch.server.switch` so that the core does not import
its services, monitoring or operator interfaces.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from nlets_switch.config import Config
from nlets_switch.core.delivery import Delivery
from nlets_switch.errors import MessageError
from nlets_switch.ops import audit, msglog
from nlets_switch.server.switch import Switch
from nlets_switch.services import adapter as ad
from nlets_switch.services import local as svc
from nlets_switch.store.postgres_journal import journal_for
from nlets_switch.wire.message import SWITCH_ORI, OutputMessage, format_message
from nlets_switch.wire.schema import load_schemas

#: The message-log services on the wire (Nlets' RAND): inquiry key -> response key.
LOG_KEYS = {"NLQ": "NLR", "NFQ": "NFR"}


async def build_switch(cfg: Config, adapters: Sequence[ad.Loaded] | None = None, *,
                       service_credential: str | None = None) -> Switch:
    """A switch for ``cfg``, with everything the configuration asks for attached.

    ``adapters`` defaults to every adapter installed in the entry-point group
    ``nlets_switch.adapters`` that the configuration does not disable. Raises
    :class:`~nlets_switch.errors.AdapterError` for an adapter of the wrong API
    version, a key without a schema or a key claimed twice.
    ``service_credential`` is what service ORIs without a credential of their
    own sign on with (out-of-process responders; ``serve`` makes one).
    """
    loaded = svc.load_adapters(cfg) if adapters is None else list(adapters)
    extra = ad.schema_dirs(loaded)
    schemas = load_schemas(extra) if extra else None
    journal = journal_for(cfg.store.url, cfg.data_dir)
    switch = Switch(cfg, schemas, audit=audit.trail_for(cfg, journal), journal=journal,
                    service_credential=service_credential)
    ad.check_adapters(loaded, switch.schemas)
    services = svc.Services(switch, loaded)
    services.install()
    for key in LOG_KEYS:
        services.nl.handlers[key] = functools.partial(_log_query, switch)
    return switch


async def _log_query(switch: Switch, out: OutputMessage, p: Delivery) -> None:
    """``NLQ``/``NFQ`` to ``NL``: search or fetch the message log.

    An ORI sees only messages it sent or received (msglog's visibility rule);
    the search runs on the journal's writer thread so the loop never scans.
    """
    try:
        fields = switch.schemas[out.key].validate(out.text)
    except MessageError:
        fields = ()  # already validated on the way in; be safe with old journals
    fn = msglog.answer_nlq if out.key == "NLQ" else msglog.answer_nfq
    text = await switch.journal.call(functools.partial(
        fn, requester_ori=out.sender, fields=fields, tz=switch.config.tz))
    switch.audit("log_access", out.sender, "success", component="nl", via=out.key)
    header = format_message(LOG_KEYS[out.key], SWITCH_ORI, out.sender, out.control or None, "")
    room = switch.config.limits.max_message - len(header)
    if len(text) > room:
        text = text[: room - 40].rsplit("\n", 1)[0] + "\nTRUNCATED: RESPONSE TOO LONG"
    await svc.send_local(switch, SWITCH_ORI, header + text)
