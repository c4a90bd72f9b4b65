"""The plain values the core is built from: directory entries and hold overrides.

The configuration (:mod:`nlets_switch.config`) reads YAML into these; the
directory and the router take them as they are. Kept here, free of pydantic
and YAML, so that the pure core never depends on how a configuration is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# ICE LESC and DHS LEIS answer for ``AX`` as this ORI (PROTOCOL part 5); one
# definition, in the domain rules.
from nlets_switch.wire.domain import LESC_ORI as LESC_ORI

#: What an ORI is in the directory.
ROLES: Final = ("control_terminal", "agency", "service")
#: What a link speaks: PROTOCOL.md's legacy text, or XML.md's NIEM documents.
FORMATS: Final = ("text", "xml")


@dataclass(frozen=True, slots=True)
class HoldOverride:
    """A configured hold rule for one key (PROTOCOL part 4: it is configuration).

    None leaves the schema's rule as it is.
    """

    held: bool | None = None
    expire_s: int | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One ORI of the directory (Nlets' ORION).

    ``signs_on`` is True for an ORI that signs on itself, False for one served
    through its state's control terminal; ``keys`` None takes every key.
    ``format`` is what its link sends and receives (``text`` or ``xml``,
    XML.md); it matters for an ORI that signs on, whose link it is.
    """

    ori: str
    name: str
    state: str
    role: str
    signs_on: bool
    credential: str | None = None
    keys: frozenset[str] | None = None
    speaks_for: frozenset[str] = frozenset()
    simulated: bool = False
    format: str = "text"

    @property
    def xml(self) -> bool:
        """Its link speaks XML (XML.md): documents in, documents out."""
        return self.format == "xml"

    @property
    def is_control_terminal(self) -> bool:
        """A state control terminal speaks for every ORI of its state."""
        return self.role == "control_terminal"

    def takes(self, key: str) -> bool:
        """Whether this ORI takes messages of ``key`` (else SM ``.01.``)."""
        return self.keys is None or key in self.keys
