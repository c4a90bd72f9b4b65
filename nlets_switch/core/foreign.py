"""Destinations outside the United States: Canada, INTERPOL, Mexico (docs/protocol.md).

Each is one responder ORI in the directory. The demo world (and any
configuration that does not name that ORI) has the switch answer for it with
a simulated counterpart, like a simulated state (docs/simulated-states.md).

* ``CN``, and any Canadian province or territory code (NCIC's: ``NK`` New
  Brunswick, ``PQ`` Quebec, ``NF`` Newfoundland, ...), addresses Canada's CPIC
  through ``CNNLETS00``. A message to Canada takes at most
  :data:`CANADA_MAX_TEXT` characters of text (Nlets' limit); a longer one is
  refused with ER ``.22.``.
* ``IP`` addresses INTERPOL Washington through ``IPNLETS00``.
* ``MX`` addresses Mexico through ``MXNLETS00``.

Nlets publishes neither these responders' ORIs nor the framing of their
circuits; the ORIs are the project's choice, in the simulated states' pattern.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Foreign:
    """One counterpart outside the US: its responder ORI, name, keys and limit."""

    code: str
    ori: str
    name: str
    keys: frozenset[str]
    #: Most characters of text a message to it may carry (None: the link's limit).
    max_text: int | None = None


#: Nlets: messages to Canada carry at most 14,400 characters.
CANADA_MAX_TEXT: Final = 14_400

#: Canadian provinces and territories as NCIC codes; each addresses Canada.
PROVINCES: Final[tuple[str, ...]] = (
    "AB", "BC", "MB", "NF", "NK", "NS", "NT", "ON", "PE", "PQ", "SN", "YT")

FOREIGN: Final[Mapping[str, Foreign]] = types.MappingProxyType({
    "CN": Foreign("CN", "CNNLETS00", "CANADA CPIC (SIMULATED)",
                  frozenset({"DQ", "RQ", "IQ", "AM", "AML"}), CANADA_MAX_TEXT),
    "IP": Foreign("IP", "IPNLETS00", "INTERPOL WASHINGTON (SIMULATED)",
                  frozenset({"IQ", "RQ", "AM", "AML"})),
    "MX": Foreign("MX", "MXNLETS00", "MEXICO (SIMULATED)", frozenset({"RQ", "DQ", "AM"})),
})

#: Responder ORI -> its counterpart.
BY_ORI: Final[Mapping[str, Foreign]] = types.MappingProxyType(
    {f.ori: f for f in FOREIGN.values()})


def foreign_for(address: str) -> Foreign | None:
    """The counterpart a two-letter address names (``CN``, a province, ``IP``, ``MX``)."""
    if address in PROVINCES:
        return FOREIGN["CN"]
    return FOREIGN.get(address)
