"""The regions of the regional inquiries ``DQG`` and ``RQG`` (docs/services.md).

A ``DQG`` or ``RQG`` addressed to a region is rewritten by the NL service to
a ``DQ`` or ``RQ`` for each state of the region. Nlets' guide names regional
inquiries but publishes no table; this one is the project's own (ten regions,
every US state and DC in exactly one), coded ``RK`` to ``RJ`` so a region can
never be mistaken for a state code. State codes are NCIC's (Nebraska ``NB``).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Final

#: Region code -> (name, its states).
REGIONS: Final[Mapping[str, tuple[str, tuple[str, ...]]]] = types.MappingProxyType({
    "RA": ("NORTHEAST", ("CT", "MA", "ME", "NH", "RI", "VT")),
    "RB": ("EASTERN", ("NJ", "NY", "PA")),
    "RC": ("ATLANTIC", ("DC", "DE", "MD", "VA", "WV")),
    "RD": ("SOUTHEAST", ("AL", "FL", "GA", "MS", "NC", "SC", "TN")),
    "RE": ("MIDWEST", ("IN", "KY", "MI", "OH")),
    "RF": ("CENTRAL", ("IA", "IL", "KS", "MN", "MO", "WI")),
    "RG": ("PACIFIC", ("AZ", "CA", "HI", "NV")),
    "RH": ("SOUTHWEST", ("AR", "LA", "NM", "OK", "TX")),
    "RJ": ("ROCKY MOUNTAIN-PLAINS", ("CO", "MT", "NB", "ND", "SD", "UT", "WY")),
    "RK": ("NORTHWEST", ("AK", "ID", "OR", "WA")),
})

#: The key a regional inquiry becomes for each state of the region.
REGIONAL_KEYS: Final[Mapping[str, str]] = types.MappingProxyType({"DQG": "DQ", "RQG": "RQ"})


def region_states(code: str) -> tuple[str, ...] | None:
    """The states of region ``code``, or None when there is no such region."""
    r = REGIONS.get(code)
    return None if r is None else r[1]
