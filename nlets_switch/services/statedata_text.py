"""The text of a simulated state's answers: what follows ``TXT`` in its responses.

Internal to :mod:`nlets_switch.services.statedata`, which picks the records
and calls these writers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

from nlets_switch.services.statedata_records import CriminalHistory, Driver, Person, Vehicle


def _d(day: dt.date | None) -> str:
    return day.strftime("%m/%d/%Y") if day else "          "


def _person_lines(p: Person) -> list[str]:
    street, city_line = p.address.lines()
    return [
        f"NAME: {p.name}",
        f"ADDRESS: {street}",
        f"         {city_line}",
        f"DOB: {_d(p.dob)}   SEX: {p.sex}   RACE: {p.race}",
        f"HGT: {p.height // 12}-{p.height % 12:02d}   WGT: {p.weight}   EYES: {p.eyes}"
        f"   HAIR: {p.hair}",
    ]


def _status(stored: str, expires: dt.date, today: dt.date | None) -> str:
    if stored == "VALID" and today is not None and expires < today:
        return "EXPIRED"
    return stored


def driver_lines(d: Driver, today: dt.date | None, history: bool) -> list[str]:
    lines = _person_lines(d.person)
    lines += [
        f"OLN: {d.oln}   STATE: {d.state}   CLASS: {d.license_class}"
        f"   ENDORSEMENTS: {d.endorsements}",
        f"STATUS: {_status(d.status, d.expires, today)}",
        f"ISSUED: {_d(d.issued)}   EXPIRES: {_d(d.expires)}",
        f"RESTRICTIONS: {d.restrictions}",
    ]
    if not history:
        return lines
    points = sum(v.points for v in d.violations)
    lines += ["DRIVING HISTORY",
              f"CONVICTIONS: {len(d.violations)}   POINTS: {points}"]
    if d.violations:
        lines.append("  VIOLATION  CONVICTED  PTS  DESCRIPTION")
        lines += [f"  {_d(v.date)} {_d(v.convicted)} {v.points:>3}  {v.description}"
                  for v in d.violations]
    if d.suspensions:
        lines += ["SUSPENSIONS/REVOCATIONS:", "  EFFECTIVE  ENDS       REASON"]
        lines += [f"  {_d(s.effective)} {_d(s.ends) if s.ends else 'INDEF     '} {s.reason}"
                  for s in d.suspensions]
    else:
        lines.append("SUSPENSIONS/REVOCATIONS: NONE")
    return lines


def vehicle_lines(v: Vehicle, today: dt.date | None) -> list[str]:
    street, city_line = v.owner.address.lines()
    return [
        f"PLATE: {v.lic}   STATE: {v.state}   TYPE: {v.lit}   YEAR: {v.liy}",
        f"VIN: {v.vin}",
        f"VEHICLE YEAR: {v.vyr}   MAKE: {v.vma}   MODEL: {v.vmo}   STYLE: {v.vst}"
        f"   COLOR: {v.vco}",
        f"REGISTERED OWNER: {v.owner.name}",
        f"ADDRESS: {street}",
        f"         {city_line}",
        f"REGISTRATION EXPIRES: {_d(v.expires)}   STATUS: {_status(v.status, v.expires, today)}",
    ]


def _identifiers(h: CriminalHistory) -> str:
    parts = [f"SID: {h.sid}", f"FBI: {h.fbi}", f"SOC: {h.person.soc}"]
    if h.mnu:
        parts.append(f"MNU: {h.mnu}")
    return "   ".join(parts)


def rap_sheet_lines(h: CriminalHistory) -> list[str]:
    p = h.person
    lines = [
        "IDENTIFICATION",
        f"NAME: {p.name}",
        f"ALIASES: {'; '.join(h.aliases) if h.aliases else 'NONE'}",
        _identifiers(h),
        f"DOB: {_d(p.dob)}   POB: {h.pob}   SEX: {p.sex}   RACE: {p.race}",
        f"HGT: {p.height // 12}-{p.height % 12:02d}   WGT: {p.weight}   EYES: {p.eyes}"
        f"   HAIR: {p.hair}",
        f"SCARS/MARKS/TATTOOS: {'; '.join(h.smt) if h.smt else 'NONE'}",
        f"FINGERPRINT CLASS: {h.fpc}",
        f"CRIMINAL HISTORY: {len(h.cycles)} CYCLE{'S' if len(h.cycles) != 1 else ''}",
    ]
    for n, c in enumerate(h.cycles, 1):
        lines += [
            f"CYCLE {n:03d}",
            f"  ARREST DATE: {_d(c.arrest_date)}   TRACKING NUMBER: {c.tracking}",
            f"  ARRESTING AGENCY: {c.agency_ori} {c.agency}",
            f"  NAME USED: {c.name_used}",
        ]
        reported = [ch for ch in c.charges if ch.disposition_date is not None]
        for m, ch in enumerate(c.charges, 1):
            lines.append(f"  CHARGE {m:02d}: {ch.offense} {ch.literal} - {ch.severity}"
                         f"   COUNTS: {ch.counts}")
        if reported:
            lines.append(f"  COURT: {c.court_ori} {c.court}   CASE: {c.court_case}")
        for m, ch in enumerate(c.charges, 1):
            when = f"{_d(ch.disposition_date)} " if ch.disposition_date else ""
            lines.append(f"    CHARGE {m:02d} DISPOSITION: {when}{ch.disposition}")
            if ch.sentence:
                lines.append(f"      SENTENCE: {ch.sentence}")
    lines.append("END OF RECORD")
    return lines


def supplement_lines(h: CriminalHistory) -> list[str]:
    p = h.person
    last_event = h.cycles[-1].arrest_date if h.cycles else None
    other = [f"SOC/{p.soc}"]
    if h.mnu:
        other.append(f"MNU/{h.mnu}")
    if h.oln:
        other.append(f"OLN/{h.oln}")
    return [
        f"NAME: {p.name}   SID: {h.sid}   FBI: {h.fbi}",
        f"DOB: {_d(p.dob)}   SEX: {p.sex}   RACE: {p.race}",
        f"ALIASES: {'; '.join(h.aliases) if h.aliases else 'NONE'}",
        f"SCARS/MARKS/TATTOOS: {'; '.join(h.smt) if h.smt else 'NONE'}",
        f"FINGERPRINT CLASS: {h.fpc}",
        f"FINGERPRINTS ON FILE: YES, LAST TAKEN {_d(last_event)}",
        f"PHOTO ON FILE: YES, LAST TAKEN {_d(last_event)}",
        f"OTHER IDENTIFIERS: {'  '.join(other)}",
        f"LAST KNOWN ADDRESS: {p.address.one_line()}",
        "CERTIFIED COPIES: REQUEST FROM THE STATE IDENTIFICATION BUREAU",
    ]


TITLES: Final[Mapping[str, str]] = {
    "DQ": "DMV RESPONSE - DRIVER LICENSE",
    "KQ": "DMV RESPONSE - DRIVER HISTORY",
    "RQ": "DMV RESPONSE - VEHICLE REGISTRATION",
    "IQ": "STATE IDENTIFICATION BUREAU - CRIMINAL HISTORY",
    "FQ": "STATE IDENTIFICATION BUREAU - CRIMINAL HISTORY FULL RECORD",
    "AQ": "STATE IDENTIFICATION BUREAU - SUPPLEMENTAL RECORD INFORMATION",
    "SOQ": "SEX OFFENDER REGISTRY",
    "DNQ": "DMV RESPONSE - DRIVER LICENSE NAME SEARCH",
}

#: The second line of every hit, so a screen never passes for a real record.
SIMULATED: Final = "*** SIMULATED STATE - SYNTHETIC TEST DATA ***"
