"""The DHS LEIS data set's typed rows and the records sealed for them.

Shared by both homes of the tables of :mod:`nlets_switch.store.leis` (the SQLite
file, and the PostgreSQL store's ``leis_*`` tables); nothing here touches a database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Contact", "Identifier", "Location", "Person", "PersonRow", "Record", "pack",
           "unpack"]

# --------------------------------------------------------------------------
# Typed rows.
# --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Identifier:
    """One identifier: ``kind`` is ARN, SOC, PPN or FBI."""

    kind: str
    value: str


@dataclass(frozen=True, slots=True)
class Location:
    """A known location; ``since``/``until`` are CCYYMMDD or empty (unknown /
    still there)."""

    address: str
    city: str
    state: str
    since: str = ""
    until: str = ""


@dataclass(frozen=True, slots=True)
class Contact:
    """A prior DHS contact: when, which component, what kind, where."""

    date: str
    component: str
    kind: str
    place: str


@dataclass(frozen=True, slots=True)
class Person:
    """One person in the DHS data set.

    ``name`` and each alias are ``LAST,FIRST MIDDLE``; ``dobs`` are CCYYMMDD,
    the first being the one a summary shows.
    """

    din: str
    name: str
    dobs: tuple[str, ...]
    sex: str = "U"
    pob: str = "XX"
    aliases: tuple[str, ...] = ()
    identifiers: tuple[Identifier, ...] = ()
    locations: tuple[Location, ...] = ()
    contacts: tuple[Contact, ...] = ()
    status: str = ""
    remarks: str = ""

    def ids(self, kind: str) -> tuple[str, ...]:
        """The values of the identifiers of one kind."""
        return tuple(i.value for i in self.identifiers if i.kind == kind)

    @property
    def arn(self) -> str:
        """The first alien registration number, or empty."""
        found = self.ids("ARN")
        return found[0] if found else ""


@dataclass(frozen=True, slots=True)
class PersonRow:
    """A person ready for the tables, with the search keys the service computed.

    ``terms`` are ``(field, value)`` pairs (the phonetic codes and spelling of
    each last name, each DOB, each identifier, each address word, the DIN):
    the store keeps only their keyed tags (:mod:`nlets_switch.store.leiscrypt`).
    """

    person: Person
    origin: str
    terms: tuple[tuple[str, str], ...]


# --------------------------------------------------------------------------
# Records.
# --------------------------------------------------------------------------


def pack(p: Person) -> bytes:
    """A person as the bytes a sealed record holds (compact JSON)."""
    return json.dumps(
        [p.din, p.name, p.dobs, p.sex, p.pob, p.aliases,
         [[i.kind, i.value] for i in p.identifiers],
         [[loc.address, loc.city, loc.state, loc.since, loc.until] for loc in p.locations],
         [[c.date, c.component, c.kind, c.place] for c in p.contacts],
         p.status, p.remarks], separators=(",", ":")).encode()


class Record(NamedTuple):
    """A decrypted person as searches read it: the JSON of :func:`pack`, as is.

    Made for every candidate of a search, so it is a plain tuple (a
    :class:`Person`, frozen dataclasses all the way down, costs several
    times more); :meth:`person` makes the typed row for those that are kept.
    """

    din: str
    name: str
    dobs: list[str]
    sex: str
    pob: str
    aliases: list[str]
    identifiers: list[list[str]]     # [kind, value]
    locations: list[list[str]]       # [address, city, state, since, until]
    contacts: list[list[str]]        # [date, component, kind, place]
    status: str
    remarks: str

    def person(self) -> Person:
        """The typed row."""
        return Person(din=self.din, name=self.name, dobs=tuple(self.dobs), sex=self.sex,
                      pob=self.pob, aliases=tuple(self.aliases),
                      identifiers=tuple(Identifier(*i) for i in self.identifiers),
                      locations=tuple(Location(*loc) for loc in self.locations),
                      contacts=tuple(Contact(*c) for c in self.contacts),
                      status=self.status, remarks=self.remarks)


def unpack(data: bytes) -> Record:
    """The record :func:`pack` made ``data`` from."""
    return Record(*json.loads(data))
