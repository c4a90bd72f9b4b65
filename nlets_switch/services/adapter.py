"""The adapter plug-in interface: everything that is specific to a message type.

An adapter answers some message keys as some ORIs (the DHS LEIS responder
answers ``IAQ`` and ``GPQ`` as ``VTICE0900``; the simulated states answer
``DQ`` ... ``AQ`` as every simulated control terminal). It is an explicit
:class:`typing.Protocol` (DESIGN.md, "Adapters"): no hooks found by method
name or argument count.

Adapters are found through the entry-point group ``nlets_switch.adapters``;
the bundled ones (``nlets_switch.adapters.leis``, ``...states``) load through
the same group as third-party ones. :func:`discover` loads them and
:func:`check_adapters` refuses, with :class:`~nlets_switch.errors.AdapterError`
naming the adapter and where it came from: a wrong API version, a key that
no schema defines, or two adapters claiming one key.

Adapters never see sockets. They get a :class:`Context`: a bound logger
(never log message text: it is criminal-justice information), their own
configuration section (checked by their ``settings_model`` when they declare
one, see :class:`Adapter`), the data directory, and :meth:`Context.answer`, which
sends one input message. In the switch's process that is
``Switch.accept`` (the answer is journaled and routed like any message); in
a responder process (``nlets-switch responder``) it is a
:class:`~nlets_switch.tools.client.Client` link signed on as the answering ORI.
The same adapter code runs both ways.

An inquiry nobody here can answer is never dropped in silence: the host
hands every delivery to :func:`dispatch`, which logs it and gives back the
``SM .01.`` ("USER DOES NOT RESPOND TO MSG TYPE, NLETS WILL NOT FORWARD",
PROTOCOL part 4) the switch owes the sender, when no adapter claims the key
or the adapter raises :class:`NotTaken`.
"""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from nlets_switch.config.model import validate
from nlets_switch.core.directory import Directory
from nlets_switch.errors import AdapterError, MessageError, SmCode
from nlets_switch.wire.message import (
    SWITCH_ORI,
    OutputMessage,
    format_message,
    parse_message,
    sm_text,
)
from nlets_switch.wire.schema import SchemaSet, parse_fields

#: The version of this interface. An adapter states the version it was
#: written for; any other is refused at start-up.
API_VERSION: Final = 1

#: The entry-point group adapters register in (pyproject ``[project.entry-points]``).
ENTRY_POINT_GROUP: Final = "nlets_switch.adapters"

#: What every adapter must have (checked at load time, after API_VERSION).
REQUIRED_MEMBERS: Final = (
    "API_VERSION", "name", "version", "keys", "schema_dirs",
    "check_config", "oris", "start", "handle", "stop",
)


@dataclass(frozen=True, slots=True)
class Inquiry:
    """One message delivered to an ORI an adapter answers as.

    ``sender`` is the inquirer (line 1 of the output header); ``receiver``
    the ORI it was delivered to (line 3: the ORI as addressed, or the control
    terminal's own ORI where a state was addressed); ``control`` the
    inquirer's control field, to be echoed; ``text`` what follows ``TXT``;
    ``fields`` its ``TAG -> value`` pairs (the first of each tag; empty for a
    free-text key or text that does not read as fields).
    """

    key: str
    sender: str
    receiver: str
    control: str | None
    text: str
    fields: Mapping[str, str]
    input_no: int = 0
    output_no: int = 0

    @classmethod
    def from_output(cls, out: OutputMessage, schemas: SchemaSet | None = None) -> Inquiry:
        """The inquiry of a delivered message (PROTOCOL part 3 layout, parsed)."""
        text = out.text.strip("\r\n")
        schema = schemas.get(out.key) if schemas is not None else None
        fields: dict[str, str] = {}
        if schema is None or not schema.free_text:
            try:
                for tag, value in parse_fields(text):
                    fields.setdefault(tag, value)
            except MessageError:
                fields = {}
        return cls(out.key, out.sender, out.receiver, out.control, text, fields,
                   out.input_no, out.output_no)

    def reply(self, key: str, text: str, *, origin: str | None = None) -> str:
        """An input message answering this inquiry (PROTOCOL part 3).

        Addressed to the inquirer, echoing its control field, sent as
        ``origin`` (default: the ORI the inquiry was delivered to).
        """
        return format_message(key, origin or self.receiver, self.sender, self.control or None,
                              text)


Sender = Callable[[str, str], Awaitable[None]]
M = TypeVar("M", bound=BaseModel)


class NotTaken(Exception):
    """Raised by :meth:`Adapter.handle` for an inquiry the adapter cannot answer.

    The host logs it and the sender gets ``SM .01.`` from the switch
    (:func:`dispatch`). The exception's text says why, for the log: never
    put message text in it (criminal-justice information).
    """


def expects_answer(key: str, schemas: SchemaSet | None) -> bool:
    """Whether a message of ``key`` is an inquiry, whose sender waits for an answer.

    Only inquiries (schema kind ``inquiry``) get an SM when nobody takes
    them: an ``AM`` is read, not answered, and an SM about an ``SM``, ``ER``
    or a response could go back and forth for ever.
    """
    schema = schemas.get(key) if schemas is not None else None
    return schema is not None and schema.kind == "inquiry"


def not_taken(inquiry: Inquiry, addressed: str | None = None) -> str:
    """The ``SM .01.`` the switch sends the inquirer when nobody here answers ``inquiry``.

    An input message from ``NL0000000`` (only the switch sends SM, PROTOCOL
    part 4) to the inquirer, echoing its control field, naming the
    destination as the sender addressed it (``addressed``; default the ORI
    it was delivered to) and quoting the inquiry.
    """
    dest = addressed or inquiry.receiver
    original = format_message(inquiry.key, inquiry.sender, dest, inquiry.control, inquiry.text)
    return format_message("SM", SWITCH_ORI, inquiry.sender, inquiry.control,
                          sm_text(SmCode.NOT_TAKEN, dest, original))


async def dispatch(adapter: Adapter | None, ctx: Context | None, inquiry: Inquiry, *,
                   schemas: SchemaSet | None, log: Any,
                   addressed: str | None = None) -> str | None:
    """Hand ``inquiry`` to ``adapter`` (the one claiming its key, or None).

    Returns None when it was handled (or needs no answer: not an inquiry),
    else the ``SM .01.`` to send for the switch (:func:`not_taken`), after
    logging ``inquiry_not_taken`` as a warning. Only :class:`NotTaken` is
    caught; any other failure of ``handle`` is the host's to report.
    """
    if adapter is not None and ctx is not None:
        try:
            await adapter.handle(ctx, inquiry)
            return None
        except NotTaken as e:
            reason = str(e) or f"adapter {ctx.name} cannot answer it"
    else:
        reason = f"no adapter here answers {inquiry.key}"
    if not expects_answer(inquiry.key, schemas):
        log.debug("not_handled", mke=inquiry.key, ori=inquiry.receiver)
        return None
    log.warning("inquiry_not_taken", mke=inquiry.key, ori=inquiry.receiver,
                sender=inquiry.sender, reason=reason, sm=SmCode.NOT_TAKEN.wire[:4])
    return not_taken(inquiry, addressed)


class Context:
    """What an adapter gets from its host: never a socket.

    ``log`` is a structlog logger bound to the adapter (never pass message
    text to it); ``config`` is the adapter's section of the configuration
    (``services.<name>``, without ``enabled``) as a mapping, every default
    filled in when the adapter declares a ``settings_model``, and
    ``settings`` that model's instance (else None); ``data_dir`` is where it
    may keep files; ``oris`` are the ORIs it answers as; ``directory`` and
    ``schemas`` are the switch's; ``store_url`` is the switch's PostgreSQL
    store (``store.url``, shared by every node of a cluster), else None.
    """

    def __init__(self, name: str, log: Any, config: Mapping[str, Any], data_dir: Path,
                 oris: Sequence[str], directory: Directory, schemas: SchemaSet,
                 send: Sender, settings: Any = None, store_url: str | None = None) -> None:
        self.name = name
        self.log = log
        self.config = config
        self.settings = settings
        self.data_dir = data_dir
        self.oris = tuple(oris)
        self.directory = directory
        self.schemas = schemas
        self.store_url = store_url
        self._send = send

    def settings_as(self, model: type[M]) -> M:
        """The adapter's settings as ``model``: :attr:`settings` when the host
        checked them with it, else :attr:`config` read into it (ConfigError
        naming ``services.<name>.key`` paths when that fails)."""
        if isinstance(self.settings, model):
            return self.settings
        return validate(model, dict(self.config), prefix=("services", self.name))

    async def answer(self, text: str) -> None:
        """Send one input message (``KEY.ORIGIN.DEST[.*CTL].TXT...``).

        It goes over the link of its origin when the adapter answers as that
        ORI, else over the adapter's first ORI (where the switch refuses an
        origin the link may not speak for, as for any endpoint). Returns once
        the switch has custody of it (journaled). Raises ValueError when the
        text has no readable header, ConnectionError when it cannot be sent.
        """
        if not self.oris:
            raise ValueError(f"adapter {self.name} answers as no ORI")
        try:
            origin = parse_message(text).origin
        except MessageError as e:
            raise ValueError(f"not an input message: {e}") from None
        await self._send(self.link_for(origin), text)

    def link_for(self, origin: str) -> str:
        """The served ORI whose link carries a message from ``origin``.

        The origin itself when served; else a served ORI that may speak for
        it (a control terminal for its state's ORIs, PROTOCOL part 2); else
        the first served ORI (and the switch refuses the origin with ER .01.).
        """
        if origin in self.oris:
            return origin
        for ori in self.oris:
            if self.directory.may_speak(ori, origin):
                return ori
        return self.oris[0]


@runtime_checkable
class Adapter(Protocol):
    """A plug-in that answers some message keys as some ORIs.

    Attributes: ``API_VERSION`` (must equal :data:`API_VERSION`), ``name``
    (also the name of its configuration section ``services.<name>``),
    ``version``, ``keys`` (the message keys it answers; each must have a
    schema, and no two adapters may claim one key), ``schema_dirs`` (extra
    schema directories for keys of its own, may be empty).

    Optional: ``settings_model``, a pydantic model of its configuration
    section (best a :class:`nlets_switch.services.settings.AdapterSettings`,
    defaults in its fields). The configuration checks the section with it,
    naming every problem with its key path (``services.<name>.key: ...``), and
    the host passes the instance as :attr:`Context.settings`. Without one,
    :meth:`check_config` checks the section.
    """

    API_VERSION: int
    name: str
    version: str
    keys: frozenset[str]
    schema_dirs: tuple[Path, ...]

    def check_config(self, section: Mapping[str, Any]) -> list[str]:
        """Problems of the adapter's configuration section, as ``key.path: problem``
        (with a ``settings_model``: :func:`nlets_switch.config.model.problems_of`)."""
        ...

    def oris(self, directory: Directory, section: Mapping[str, Any]) -> tuple[str, ...]:
        """The ORIs it answers as, given the directory and its configuration."""
        ...

    async def start(self, ctx: Context) -> None:
        """Get ready (open data, build caches); called once before any inquiry."""
        ...

    async def handle(self, ctx: Context, inquiry: Inquiry) -> None:
        """Answer one inquiry with ``await ctx.answer(...)`` (any number of times).

        The host runs at most ``window`` of these at once per ORI and counts
        the inquiry delivered when this returns. Raise :class:`NotTaken` for
        one it cannot answer: the sender is told (SM ``.01.``) and it is logged.
        """
        ...

    async def stop(self) -> None:
        """Release what :meth:`start` took."""
        ...


@dataclass(slots=True)
class Loaded:
    """An adapter with where it came from (for messages and ``nlets-switch adapters``)."""

    adapter: Any
    entry_point: str
    distribution: str
    name: str = ""
    version: str = ""
    keys: frozenset[str] = field(default_factory=frozenset)

    @property
    def source(self) -> str:
        """``distribution (entry point NAME = module:attr)``."""
        return f"{self.distribution} (entry point {self.entry_point})"

    def describe(self) -> str:
        """``adapter 'leis' from nlets-switch 0.1.0 (entry point ...)``."""
        return f"adapter {self.name or '?'!r} from {self.source}"


def _dist_of(ep: md.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "(unknown distribution)"
    return f"{dist.metadata['Name']} {dist.version}"


def entry_points() -> list[md.EntryPoint]:
    """The entry points of the adapter group, sorted by name."""
    return sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)


def load_entry_point(ep: md.EntryPoint) -> Loaded:
    """Import one entry point and check it is an adapter of this API version."""
    where = f"{_dist_of(ep)} (entry point {ep.name} = {ep.value})"
    try:
        obj = ep.load()
        adapter = obj() if isinstance(obj, type) else obj
    except Exception as e:  # any import failure is reported with its source
        raise AdapterError(f"adapter {ep.name!r} from {where} cannot be loaded: "
                           f"{type(e).__name__}: {e}") from e
    return check_one(adapter, ep.name, _dist_of(ep), f"{ep.name} = {ep.value}")


def check_one(adapter: Any, ep_name: str, distribution: str, entry_point: str) -> Loaded:
    """Check one adapter object's API version and members; raise AdapterError."""
    name = getattr(adapter, "name", ep_name)
    loaded = Loaded(adapter, entry_point, distribution, str(name))
    version = getattr(adapter, "API_VERSION", None)
    if version != API_VERSION:
        raise AdapterError(f"{loaded.describe()} is written for adapter API version "
                           f"{version!r}; this switch supports version {API_VERSION}")
    missing = [m for m in REQUIRED_MEMBERS if not hasattr(adapter, m)]
    if missing or not isinstance(adapter, Adapter):
        raise AdapterError(f"{loaded.describe()} lacks {', '.join(missing) or 'members'} "
                           "of the Adapter protocol")
    keys = adapter.keys
    if isinstance(keys, str) or not all(isinstance(k, str) for k in keys):
        raise AdapterError(f"{loaded.describe()}: keys must be a set of message keys")
    loaded.version = str(adapter.version)
    loaded.keys = frozenset(keys)
    return loaded


def discover(eps: Iterable[md.EntryPoint] | None = None) -> list[Loaded]:
    """Load every adapter of the entry-point group (or of ``eps``)."""
    return [load_entry_point(ep) for ep in (entry_points() if eps is None else eps)]


def schema_dirs(adapters: Iterable[Loaded]) -> list[Path]:
    """The extra schema directories the adapters bring, in load order."""
    out: list[Path] = []
    for a in adapters:
        for d in a.adapter.schema_dirs:
            if Path(d) not in out:
                out.append(Path(d))
    return out


def check_adapters(adapters: Sequence[Loaded], schemas: SchemaSet) -> None:
    """Refuse keys without a schema and keys claimed twice (AdapterError)."""
    claimed: dict[str, Loaded] = {}
    for a in adapters:
        unknown = sorted(k for k in a.keys if k not in schemas)
        if unknown:
            raise AdapterError(f"{a.describe()} claims key(s) {', '.join(unknown)} that no "
                               "schema defines (add a schema directory with schema_dirs)")
        for k in sorted(a.keys):
            other = claimed.get(k)
            if other is not None:
                raise AdapterError(f"key {k} is claimed by two adapters: {other.describe()} "
                                   f"and {a.describe()}")
            claimed[k] = a
