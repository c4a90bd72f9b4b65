"""Assembles a running switch from a configuration: the core, then what plugs into it.

Kept apart from :mod:`nlets_switch.server.switch` so that the core does not import
its services, monitoring or operator interfaces.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from nlets_switch.config import Config
from nlets_switch.core.delivery import Delivery
from nlets_switch.errors import ConfigError, MessageError
from nlets_switch.log import get_logger
from nlets_switch.ops import audit, msglog, rand
from nlets_switch.ops.console import OperatorConsole
from nlets_switch.server.switch import Switch
from nlets_switch.services import adapter as ad
from nlets_switch.services import local as svc
from nlets_switch.store import textcrypt
from nlets_switch.store.keys import private_tree
from nlets_switch.store.postgres_journal import journal_for
from nlets_switch.wire.message import SWITCH_ORI, OutputMessage, er_text, format_message
from nlets_switch.wire.schema import load_schemas

#: The message-log services on the wire (Nlets' RAND): inquiry key -> response key.
LOG_KEYS = {"NLQ": "NLR", "NFQ": "NFR"}

log = get_logger("switch")


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
    protect_data(cfg)
    extra = ad.schema_dirs(loaded)
    schemas = load_schemas(extra) if extra else None
    journal = journal_for(cfg.store.url, cfg.data_dir, cfg.store.node_id)
    trail = audit.trail_for(cfg, journal)
    switch = Switch(cfg, schemas, audit=trail, journal=journal,
                    service_credential=service_credential)
    # Audit records still waiting for the journal (an outage) get a last chance.
    switch.on_stop.append(trail.settle)
    ad.check_adapters(loaded, switch.schemas)
    services = svc.Services(switch, loaded)
    services.install()
    OperatorConsole(switch).install()  # remove status, kept in the journal
    for key in LOG_KEYS:
        services.nl.handlers[key] = functools.partial(_log_query, switch)
    return switch


def protect_data(cfg: Config) -> None:
    """CJI at rest (CJIS 5.10.1.2, issue 11): the data directory 0700 and its files
    0600, and message text sealed under the keyring outside it (made, and said
    where, at the first start). Raises ConfigError for a key file that is missing
    or unreadable."""
    data = Path(cfg.data_dir)
    private_tree(data)
    sec = cfg.security
    try:
        ring, made = textcrypt.configure_for(sec.text_key_file, sec.encrypt_text, create=True)
    except (OSError, ValueError) as e:
        raise ConfigError([str(e) if str(e).startswith("security.") else
                           f"security.text_key_file: {e}"], cfg.source) from None
    if not cfg.audit.key and not cfg.audit.key_file and audit.legacy_key_path(cfg).exists():
        # Kept for the chain it sealed; but beside the journal it lets whoever
        # reads the data directory rewrite the chain.
        log.warning("audit_key_in_data_dir", path=str(audit.legacy_key_path(cfg)),
                    hint="move it out of the data directory and name it in audit.key_file")
    if made and ring is not None:
        log.warning("text_key_created", path=str(ring.path),
                    note="message text is encrypted under this key: back it up, apart "
                    "from the data directory")


async def _log_query(switch: Switch, out: OutputMessage, p: Delivery) -> None:
    """``NLQ``/``NFQ`` to ``NL``: search or fetch the message log.

    An ORI sees only messages it sent or received, a control terminal its
    state's (RAND, ops/rand.py); the search runs on the journal's writer thread
    so the loop never scans.
    """
    try:
        fields = switch.schemas[out.key].validate(out.text)
    except MessageError:
        fields = ()  # already validated on the way in; be safe with old journals
    ctl = out.control or None
    if out.key == "NLQ":
        # RAND (ops/rand.py): the old fields get an ER naming the new ones; else an
        # automatic acknowledgement, then the NLR.
        try:
            rand.check_fields(fields)
        except MessageError as err:
            original = format_message(out.key, out.sender, "NL", ctl, out.text.strip())
            await svc.send_local(switch, SWITCH_ORI, format_message(
                "ER", SWITCH_ORI, out.sender, ctl, er_text(err, original)), p.msg_id)
            return
        await svc.send_local(switch, SWITCH_ORI, format_message(
            "AM", SWITCH_ORI, out.sender, ctl, "ACK NLQ RECEIVED, SEARCHING THE MESSAGE LOG"))
        who = switch.directory.entry(out.sender)
        text = await switch.journal.call(functools.partial(
            rand.answer_rand, requester_ori=out.sender, fields=fields,
            known_keys=frozenset(switch.schemas),
            control_terminal=who is not None and who.is_control_terminal, tz=switch.config.tz))
    else:
        text = await switch.journal.call(functools.partial(
            msglog.answer_nfq, requester_ori=out.sender, fields=fields, tz=switch.config.tz))
    switch.audit("log_access", out.sender, "success", component="nl", via=out.key)
    header = format_message(LOG_KEYS[out.key], SWITCH_ORI, out.sender, ctl, "")
    room = switch.config.limits.max_message - len(header)
    if len(text) > room:
        text = text[: room - 40].rsplit("\n", 1)[0] + "\nTRUNCATED: RESPONSE TOO LONG"
    await svc.send_local(switch, SWITCH_ORI, header + text)
