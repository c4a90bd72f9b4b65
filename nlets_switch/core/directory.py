"""The directory of ORIs (Nlets calls it ORION), pure.

Built from the configuration's entries; answers the questions the router
and the link layer ask of every message: may this ORI sign on, may this link
speak for that origin, and which link carries a destination address.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from nlets_switch.core.entries import Entry
from nlets_switch.core.foreign import foreign_for
from nlets_switch.core.regions import REGIONS
from nlets_switch.wire.domain import LESC_ORI, SWITCH_ORI, is_ori
from nlets_switch.wire.message import AX, HELP, NL, ORI, ORION, REGION, STATE


@dataclass(frozen=True, slots=True)
class Target:
    """Where one destination address goes.

    ``link`` is the ORI whose link carries the message; ``receiver`` is the
    ORI printed on line 3 of the output header (PROTOCOL part 3): the ORI as
    addressed, or the control terminal's own ORI where a state was addressed.
    ``entry`` is the directory entry whose keys decide SM ``.01.``; None for
    the switch's own services, which take every key.
    """

    link: str
    receiver: str
    entry: Entry | None
    addressed: str


class Directory:
    """ORIs, their states' control terminals, and who speaks for whom."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        #: Bumped by every change (:meth:`put`, :meth:`remove`): what was worked
        #: out from the entries (the router's shapes) is stale past it.
        self.version = 0
        self._by_ori: dict[str, Entry] = {}
        self._ct: dict[str, Entry] = {}
        for e in entries:
            self._by_ori[e.ori] = e
            if e.is_control_terminal:
                self._ct[e.state] = e

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._by_ori.values())

    def __len__(self) -> int:
        return len(self._by_ori)

    def entry(self, ori: str) -> Entry | None:
        """The configured entry of ``ori``, if any."""
        return self._by_ori.get(ori)

    def control_terminal(self, state: str) -> Entry | None:
        """The control terminal of a state, if the state has one."""
        return self._ct.get(state)

    def states(self) -> list[str]:
        """Every state that has a control terminal (configured or simulated)."""
        return sorted(self._ct)

    def sign_on_entry(self, ori: str) -> Entry | None:
        """The entry if ``ori`` may sign on by itself (PROTOCOL part 1), else None."""
        e = self._by_ori.get(ori)
        return e if e is not None and e.signs_on and e.active else None

    def put(self, entry: Entry) -> None:
        """Add or replace one ORI's entry (ORION ``TA``/``TU``); effective at once.

        A control terminal's entry is never replaced by this (its role stays).
        """
        old = self._by_ori.get(entry.ori)
        if old is not None and old.is_control_terminal:
            return
        self._by_ori[entry.ori] = entry
        self.version += 1

    def remove(self, ori: str) -> Entry | None:
        """Remove one ORI's entry (ORION ``TD``); never a control terminal's."""
        e = self._by_ori.get(ori)
        if e is None or e.is_control_terminal:
            return None
        self.version += 1
        return self._by_ori.pop(ori)

    def may_speak(self, link_ori: str, origin: str) -> bool:
        """Whether a link signed on as ``link_ori`` may send as ``origin`` (part 2)."""
        if origin == link_ori:
            return True
        link = self._by_ori.get(link_ori)
        if link is None:
            return False
        if origin in link.speaks_for:
            return True
        # A state control terminal speaks for its state's ORIs (part 2).
        return link.is_control_terminal and origin[:2] == link.state and is_ori(origin)

    def resolve(self, address: str, kind: str) -> Target | None:
        """The target of one destination address, or None if it does not exist.

        ``kind`` is what :func:`nlets_switch.wire.message.address_kind` said.
        """
        if kind == STATE:
            ct = self._ct.get(address)
            if ct is None:
                # Canada (CN or a province), INTERPOL (IP), Mexico (MX).
                fo = foreign_for(address)
                ct = self._by_ori.get(fo.ori) if fo is not None else None
            return Target(ct.ori, ct.ori, ct, address) if ct is not None else None
        if kind == ORI:
            if address == SWITCH_ORI:
                # Answers to the switch's own inquiries (the NL fan-out, part 5).
                return Target(SWITCH_ORI, SWITCH_ORI, None, address)
            e = self._by_ori.get(address)
            if e is not None and not e.active:
                return None  # ORION: an inactive ORI takes no traffic
            if e is not None and e.signs_on:
                return Target(e.ori, e.ori, e, address)
            ct = self._ct.get(address[:2])
            if ct is None:
                return None
            # Served through its state's control terminal (part 8): line 3
            # names the ORI as addressed so the terminal can pass it on.
            return Target(ct.ori, address, e if e is not None else ct, address)
        if kind == AX:
            e = self._by_ori.get(LESC_ORI)
            return Target(e.ori, e.ori, e, address) if e is not None else None
        if kind == HELP:
            # Line 3 names the help file, so one AM can ask for several.
            return Target(SWITCH_ORI, address, None, address)
        if kind == NL:
            return Target(SWITCH_ORI, SWITCH_ORI, None, address)
        if kind == ORION:
            return Target(SWITCH_ORI, SWITCH_ORI, None, address)
        if kind == REGION:
            # The NL service rewrites a regional inquiry for each state of the
            # region; line 3 names the region, so one DQG can ask several.
            return Target(SWITCH_ORI, address, None, address) if address in REGIONS else None
        return None

    def is_law_enforcement(self, ori: str) -> bool:
        """Whether ``ori`` is a law enforcement agency (``AML``, docs/protocol.md).

        An ORI without its own entry (served through its control terminal)
        counts as law enforcement, as ORION's default agency type is.
        """
        e = self._by_ori.get(ori)
        return e is None or e.law_enforcement
