"""Generating one simulated state's records, and the fixed test records.

Internal to :mod:`nlets_switch.services.statedata`. Python seeds
``random.Random`` from a string with SHA-512, so the records are the same in
every process and on every machine, whatever ``PYTHONHASHSEED`` says; each
file has its own random stream, so changing the size of one file does not
reshuffle another.
"""

from __future__ import annotations

import datetime as dt
import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from nlets_switch.services.statedata_records import (
    STATES,
    TEST_FBI,
    TEST_MNU,
    TEST_OLN,
    TEST_PLATE,
    TEST_SOC,
    TEST_VIN,
    Address,
    Charge,
    CriminalHistory,
    Cycle,
    Driver,
    Person,
    Suspension,
    Vehicle,
    Violation,
    fixed_sid,
)
from nlets_switch.services.statedata_tables import (
    AS_OF,
    BASIC_CLASS,
    CITIES,
    COLOURS,
    DISPOSITIONS,
    DUI,
    EYES,
    FEMALE,
    FPC_PATTERNS,
    HAIR,
    LAST,
    LETTERS,
    MALE,
    MODELS,
    OFFENSES,
    OLN_FORMAT,
    PLATE_FORMATS,
    RACES,
    SMT,
    STREETS,
    VIN_CHARS,
    VIN_YEAR,
    VIOLATIONS,
    vin_check_digit,
)
from nlets_switch.wire.domain import NAME_MAX_LEN, postal_code

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Agency:
    ori: str
    name: str
    court_ori: str
    court: str


def _weighted(rng: random.Random, table: Sequence[tuple[T, int]]) -> T:
    values = [v for v, _ in table]
    weights = [w for _, w in table]
    return rng.choices(values, weights)[0]


def _pattern(rng: random.Random, fmt: str) -> str:
    out = []
    for c in fmt:
        if c == "#":
            out.append(str(rng.randrange(10)))
        elif c == "@":
            out.append(rng.choice(LETTERS))
        elif c == "*":
            out.append(rng.choice(VIN_CHARS))
        else:
            out.append(c)
    return "".join(out)


def _unique(rng: random.Random, make: Callable[[random.Random], str], taken: set[str]) -> str:
    # Draw until the value is new; the spaces are huge, so this loops rarely.
    while True:
        value = make(rng)
        if value not in taken:
            taken.add(value)
            return value


def _date_between(rng: random.Random, first: dt.date, last: dt.date) -> dt.date:
    return dt.date.fromordinal(rng.randint(first.toordinal(), max(first, last).toordinal()))


def _anniversary(day: dt.date, year: int) -> dt.date:
    # 29 February falls back to the 28th in years that lack it.
    try:
        return day.replace(year=year)
    except ValueError:
        return day.replace(year=year, day=28)


def _agencies(state: str) -> tuple[_Agency, ...]:
    # Agencies depend on the state only, not the seed, so the test records'
    # rap sheets read the same whatever seed a switch runs with.
    rng = random.Random(f"nlets-switch:agencies:{state}")
    out = []
    for city, _zip in CITIES[state]:
        county = rng.randint(1, 99)
        out.append(_Agency(
            ori=f"{state}{county:03d}{rng.randint(1, 40):02d}00",
            name=f"{city} POLICE DEPT",
            court_ori=f"{state}{county:03d}{rng.randint(10, 99):03d}J",
            court=f"{city} CRIMINAL COURT",
        ))
    return tuple(out)


class Generator:
    """Draws one state's records; one random stream per file."""

    def __init__(self, state: str, seed: int) -> None:
        self.state = state
        self.seed = seed
        self.agencies = _agencies(state)
        self.name_keys: set[tuple[str, str, dt.date]] = {("SMITH", "JOHN", dt.date(1950, 1, 1))}
        self.socs: set[str] = {TEST_SOC}

    def rng(self, stream: str) -> random.Random:
        # Python seeds Random from a str via SHA-512: stable in every process.
        return random.Random(f"nlets-switch:{self.seed}:{self.state}:{stream}")

    def address(self, rng: random.Random) -> Address:
        city, zip_code = rng.choice(CITIES[self.state])
        street = f"{rng.randint(100, 9899)} {rng.choice(STREETS)}"
        if rng.random() < 0.2:
            street += f" APT {rng.randint(1, 40)}"
        return Address(street, city, postal_code(self.state), zip_code)

    def person(self, rng: random.Random) -> Person:
        while True:
            sex = rng.choice("MF")
            firsts = MALE if sex == "M" else FEMALE
            first = rng.choice(firsts)
            last = rng.choice(LAST)
            dob = _date_between(rng, dt.date(1945, 1, 1), dt.date(2006, 12, 31))
            # (LAST, FIRST, DOB) is unique in a state, so a name search
            # finds exactly the record it was drawn from.
            if (last, first, dob) not in self.name_keys:
                self.name_keys.add((last, first, dob))
                break
        middle = rng.choice(firsts) if rng.random() < 0.7 else ""
        # NCIC's NAM holds 30 characters: drop the middle name rather than cut.
        if middle == first or len(f"{last},{first} {middle}") > NAME_MAX_LEN:
            middle = ""
        if sex == "M":
            height = min(79, max(61, round(rng.gauss(70, 3))))
            weight = min(340, max(120, round(rng.gauss(185, 30))))
        else:
            height = min(74, max(58, round(rng.gauss(64.5, 2.8))))
            weight = min(300, max(95, round(rng.gauss(152, 28))))
        hair = _weighted(rng, HAIR)
        if dob.year < 1965 and rng.random() < 0.5:
            hair = rng.choice(("GRY", "WHI"))
        # Area numbers 900-999 are never issued as SSNs: no real person's.
        soc = _unique(rng, lambda r: f"9{r.randint(0, 99):02d}{r.randint(1, 99):02d}"
                                     f"{r.randint(1, 9999):04d}", self.socs)
        return Person(
            last=last, first=first, middle=middle, dob=dob, sex=sex,
            race=_weighted(rng, RACES), height=height, weight=weight,
            eyes=_weighted(rng, EYES), hair=hair, address=self.address(rng), soc=soc,
        )

    # -- drivers -----------------------------------------------------------

    def drivers(self, count: int) -> list[Driver]:
        rng = self.rng("drivers")
        olns: set[str] = {TEST_OLN}
        fmt = OLN_FORMAT[self.state]
        basic = BASIC_CLASS.get(self.state, "D")
        out = []
        for _ in range(count):
            person = self.person(rng)
            oln = _unique(rng, lambda r: _pattern(r, fmt), olns)
            issued = _date_between(rng, max(dt.date(2017, 1, 1),
                                            _anniversary(person.dob, person.dob.year + 16)),
                                   AS_OF)
            expires = _anniversary(person.dob, issued.year + 8)
            cls, endorsements = basic, "NONE"
            roll = rng.random()
            if roll < 0.05:
                cls = rng.choice("AB")
                endorsements = " ".join(sorted(rng.sample("HNPTX", rng.randint(1, 2))))
            elif roll < 0.17:
                endorsements = "M"
            violations = self.violations(rng, person)
            suspensions = self.suspensions(rng, violations)
            status = "VALID"
            roll = rng.random()
            if roll < 0.06:
                status = "SUSPENDED"
                start = _date_between(rng, dt.date(2023, 1, 1), AS_OF)
                reason = rng.choice(("FAILURE TO APPEAR", "FAILURE TO PAY FINE",
                                     "NO INSURANCE"))
                suspensions = (*suspensions, Suspension(start, None, reason))
            elif roll < 0.075:
                status = "REVOKED"
                start = _date_between(rng, dt.date(2022, 1, 1), AS_OF)
                suspensions = (*suspensions, Suspension(start, None, "HABITUAL OFFENDER"))
            restrictions = "NONE"
            if any(v.description == DUI for v in violations):
                restrictions = "I - IGNITION INTERLOCK"
            elif rng.random() < 0.3:
                restrictions = "B - CORRECTIVE LENSES"
            out.append(Driver(
                person=person, oln=oln, state=self.state, license_class=cls,
                endorsements=endorsements, status=status, issued=issued, expires=expires,
                restrictions=restrictions, violations=violations,
                suspensions=tuple(sorted(suspensions, key=lambda s: s.effective)),
            ))
        return out

    def violations(self, rng: random.Random, person: Person) -> tuple[Violation, ...]:
        count = _weighted(rng, ((0, 55), (1, 25), (2, 12), (3, 5), (4, 3)))
        first = max(dt.date(2014, 1, 1), _anniversary(person.dob, person.dob.year + 16))
        out = []
        for _ in range(count):
            when = _date_between(rng, first, AS_OF - dt.timedelta(days=90))
            description, points = rng.choice(VIOLATIONS)
            out.append(Violation(when, when + dt.timedelta(days=rng.randint(20, 90)),
                                 points, description))
        return tuple(sorted(out, key=lambda v: v.date))

    def suspensions(self, rng: random.Random,
                    violations: Sequence[Violation]) -> tuple[Suspension, ...]:
        out = []
        for v in violations:
            if v.description == DUI:
                days = rng.choice((90, 180, 365))
                out.append(Suspension(v.convicted, v.convicted + dt.timedelta(days=days),
                                      "DUI CONVICTION"))
        if sum(v.points for v in violations) >= 12:
            last = violations[-1].convicted
            out.append(Suspension(last, last + dt.timedelta(days=90), "POINTS ACCUMULATION"))
        return tuple(out)

    # -- vehicles ----------------------------------------------------------

    def vehicles(self, count: int, owners: Sequence[Person]) -> list[Vehicle]:
        rng = self.rng("vehicles")
        formats = {kind: rng.choice(fmts) for kind, fmts in PLATE_FORMATS.items()}
        plates: set[str] = {TEST_PLATE[0]}
        vins: set[str] = {TEST_VIN}
        out = []
        for _ in range(count):
            vma, vmo, vst, wmi, lit = rng.choice(MODELS)
            vyr = rng.randint(2000, 2025)
            if lit == "PC" and rng.random() < 0.05:
                lit = "PE"  # personalised: letters chosen by the owner
                lic = _unique(rng, lambda r: "".join(r.choice(LETTERS)
                                                     for _ in range(r.randint(4, 7))), plates)
            else:
                lic = _unique(rng, functools.partial(_pattern, fmt=formats[lit]), plates)
            vin = _unique(rng, functools.partial(_make_vin, wmi=wmi, year=vyr), vins)
            expires = _date_between(rng, dt.date(2025, 1, 1), dt.date(2027, 12, 31))
            expires = _month_end(expires)
            status = "SUSPENDED - NO INSURANCE" if rng.random() < 0.03 else "VALID"
            out.append(Vehicle(
                lic=lic, lit=lit, liy=str(expires.year), state=self.state, vin=vin,
                vyr=vyr, vma=vma, vmo=vmo, vst=vst, vco=_weighted(rng, COLOURS),
                owner=rng.choice(owners), expires=expires, status=status,
            ))
        return out

    # -- criminal histories --------------------------------------------------

    def histories(self, count: int, drivers: Sequence[Driver]) -> list[CriminalHistory]:
        rng = self.rng("histories")
        sids: set[str] = {fixed_sid(self.state)}
        fbis: set[str] = {TEST_FBI}
        mnus: set[str] = {TEST_MNU}
        # Half the subjects also hold a licence here, as in life.
        from_drivers = rng.sample(list(drivers), min(len(drivers), count // 2))
        subjects: list[tuple[Person, str]] = [(d.person, d.oln) for d in from_drivers]
        while len(subjects) < count:
            subjects.append((self.person(rng), ""))
        out = []
        for person, oln in subjects:
            sid = _unique(rng, lambda r: f"{self.state}{r.randint(0, 99_999_999):08d}", sids)
            fbi = _unique(rng, lambda r: _pattern(r, "######@@#"), fbis)
            mnu = ""
            if rng.random() < 0.1:
                mnu = _unique(rng, lambda r: f"{r.choice(('AR', 'PP'))}-"
                                             f"{r.randint(10_000_000, 999_999_999):09d}", mnus)
            pob = self.state if rng.random() < 0.6 else rng.choice((*STATES, "MM", "YY"))
            aliases = tuple(sorted({
                f"{person.last},{rng.choice(MALE if person.sex == 'M' else FEMALE)}"
                for _ in range(_weighted(rng, ((0, 60), (1, 30), (2, 10))))
            } - {f"{person.last},{person.first}"}))
            smt = tuple(sorted(set(rng.sample(SMT, _weighted(rng, ((0, 40), (1, 35),
                                                                     (2, 15), (3, 10)))))))
            out.append(CriminalHistory(
                person=person, sid=sid, fbi=fbi, mnu=mnu, oln=oln, pob=pob,
                aliases=aliases, smt=smt, fpc=_make_fpc(rng),
                cycles=self.cycles(rng, person, (person.name, *aliases)),
            ))
        return out

    def cycles(self, rng: random.Random, person: Person,
               names: Sequence[str]) -> tuple[Cycle, ...]:
        count = _weighted(rng, ((1, 40), (2, 25), (3, 15), (4, 12), (5, 8)))
        first = _anniversary(person.dob, person.dob.year + 18)
        dates = sorted(_date_between(rng, first, AS_OF - dt.timedelta(days=30))
                       for _ in range(count))
        out = []
        for arrested in dates:
            agency = rng.choice(self.agencies)
            # One court date per cycle; a case not yet heard by the data
            # set's "as of" date is pending.
            heard: dt.date | None = arrested + dt.timedelta(days=rng.randint(20, 240))
            if heard is not None and heard > AS_OF:
                heard = None
            charges = []
            for _ in range(_weighted(rng, ((1, 60), (2, 30), (3, 10)))):
                code, literal, severity, _w = rng.choices(
                    OFFENSES, [o[3] for o in OFFENSES])[0]
                charges.append(self.charge(rng, heard, code, literal, severity))
            out.append(Cycle(
                arrest_date=arrested,
                tracking=f"{arrested.year % 100:02d}{rng.randint(0, 999_999):06d}",
                agency_ori=agency.ori, agency=agency.name,
                court_ori=agency.court_ori, court=agency.court,
                court_case=f"CR{arrested.year}-{rng.randint(1, 999_999):06d}",
                name_used=rng.choice(names), charges=tuple(charges),
            ))
        return tuple(out)

    def charge(self, rng: random.Random, heard: dt.date | None, code: str, literal: str,
               severity: str) -> Charge:
        disposition = _weighted(rng, DISPOSITIONS)
        when = heard
        sentence = ""
        if heard is None:
            disposition = "PENDING"
        elif disposition == "NO DISPOSITION REPORTED":
            # Common on real rap sheets: the court never reported back.
            when = None
        elif disposition == "DEFERRED ADJUDICATION":
            sentence = f"{rng.choice((6, 12, 18, 24))} MONTHS PROBATION"
        elif disposition == "CONVICTED":
            sentence = _sentence(rng, code, severity)
        return Charge(code, literal, severity, _weighted(rng, ((1, 85), (2, 10), (3, 5))),
                      disposition, when, sentence)


def _sentence(rng: random.Random, code: str, severity: str) -> str:
    if code == "0999":
        return f"{rng.randint(15, 40)} YEARS PRISON"
    if code == "5404":
        return (f"FINE ${rng.choice((500, 750, 1000, 1500))}, {rng.choice((1, 2, 10, 30))}"
                " DAYS JAIL, ALCOHOL EDUCATION")
    if severity == "FELONY":
        return rng.choice((
            f"{rng.randint(1, 10)} YEARS PRISON",
            f"{rng.choice((24, 36, 48, 60))} MONTHS PROBATION",
            f"{rng.choice((90, 180, 365))} DAYS JAIL, {rng.choice((24, 36))} MONTHS PROBATION",
        ))
    return rng.choice((
        f"{rng.choice((2, 5, 10, 30, 60, 90, 180))} DAYS JAIL",
        f"FINE ${rng.choice((100, 250, 500, 1000))}",
        f"{rng.choice((6, 12, 18, 24))} MONTHS PROBATION",
        f"{rng.choice((10, 30))} DAYS JAIL SUSPENDED, FINE ${rng.choice((100, 250))}",
    ))


def _make_vin(rng: random.Random, wmi: str, year: int) -> str:
    vds = "".join(rng.choice(VIN_CHARS) for _ in range(5))
    tail = (VIN_YEAR[(year - 1980) % 30] + rng.choice(VIN_CHARS)
            + f"{rng.randint(0, 999_999):06d}")
    draft = f"{wmi}{vds}0{tail}"
    return f"{wmi}{vds}{vin_check_digit(draft)}{tail}"


def _make_fpc(rng: random.Random) -> str:
    # Ten fingers, two characters each: a pattern code or a ridge count.
    parts = []
    for _ in range(10):
        if rng.random() < 0.55:
            parts.append(f"{rng.randint(1, 25):02d}")
        else:
            parts.append(rng.choice(FPC_PATTERNS))
    return "".join(parts)


def _month_end(day: dt.date) -> dt.date:
    # Registrations run to the last day of a month.
    nxt = day.replace(day=28) + dt.timedelta(days=4)
    return nxt - dt.timedelta(days=nxt.day)


# --------------------------------------------------------------------------
# The fixed test records
# --------------------------------------------------------------------------


def fixed_records(state: str) -> tuple[Driver, Vehicle, CriminalHistory]:
    city, zip_code = CITIES[state][0]
    address = Address("100 MAIN ST", city, postal_code(state), zip_code)
    person = Person(
        last="SMITH", first="JOHN", middle="", dob=dt.date(1950, 1, 1), sex="M", race="W",
        height=70, weight=180, eyes="BRO", hair="BRO", address=address, soc=TEST_SOC,
    )
    driver = Driver(
        person=person, oln=TEST_OLN, state=state,
        license_class=BASIC_CLASS.get(state, "D"), endorsements="NONE", status="VALID",
        issued=dt.date(2024, 1, 1), expires=dt.date(2032, 1, 1),
        restrictions="B - CORRECTIVE LENSES",
        violations=(Violation(dt.date(2023, 3, 15), dt.date(2023, 5, 1), 3,
                              "SPEEDING 11-15 MPH OVER LIMIT"),),
        suspensions=(),
    )
    lic, liy, lit = TEST_PLATE
    vehicle = Vehicle(
        lic=lic, lit=lit, liy=liy, state=state, vin=TEST_VIN, vyr=2019, vma="FORD",
        vmo="F15", vst="PK", vco="BLU", owner=person, expires=dt.date(2027, 6, 30),
        status="VALID",
    )
    agency = _agencies(state)[0]
    history = CriminalHistory(
        person=person, sid=fixed_sid(state), fbi=TEST_FBI, mnu=TEST_MNU, oln=TEST_OLN,
        pob=state, aliases=("SMITH,JACK",), smt=("TAT R ARM",), fpc="12PI09PM13CI10AA1511",
        cycles=(
            Cycle(
                arrest_date=dt.date(1975, 6, 14), tracking="75012345",
                agency_ori=agency.ori, agency=agency.name, court_ori=agency.court_ori,
                court=agency.court, court_case="CR1975-000123", name_used="SMITH,JOHN",
                charges=(Charge("2399", "LARCENY", "MISDEMEANOR", 1, "CONVICTED",
                                dt.date(1975, 8, 1), "30 DAYS JAIL SUSPENDED"),),
            ),
            Cycle(
                arrest_date=dt.date(1988, 3, 2), tracking="88054321",
                agency_ori=agency.ori, agency=agency.name, court_ori=agency.court_ori,
                court=agency.court, court_case="CR1988-004567", name_used="SMITH,JACK",
                charges=(
                    Charge("5404", "DRIVING UNDER INFLUENCE LIQUOR", "MISDEMEANOR", 1,
                           "CONVICTED", dt.date(1988, 5, 10), "FINE $500, 2 DAYS JAIL"),
                    Charge("4899", "OBSTRUCTING POLICE", "MISDEMEANOR", 1, "DISMISSED",
                           dt.date(1988, 5, 10), ""),
                ),
            ),
        ),
    )
    return driver, vehicle, history
