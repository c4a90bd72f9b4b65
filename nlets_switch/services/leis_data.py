"""DHS LEIS: the synthetic person data, made from a seed, and the fixed test records.

:class:`Generator` makes persons from one ``random.Random(seed)``: the same
seed gives the same persons, in the same order, on every machine.
:func:`fixed_persons` are the documented test records (docs/leis.md) that
exist whatever the seed. Every value here is invented data, not drawn from
any real record.
"""

from __future__ import annotations

import datetime as _dt
import random
from collections.abc import Callable, Iterable
from typing import Final

from nlets_switch.store.leis import Contact, Identifier, Location, Person
from nlets_switch.wire.domain import real_date

__all__ = ["DATA_AS_OF", "FIXED_DINS", "Generator", "fixed_persons", "generated_din"]

#: Dates in the generated data never pass this day, so that the data set
#: does not depend on when it was built (no clock reads).
DATA_AS_OF: Final = _dt.date(2025, 12, 31)


# --------------------------------------------------------------------------
# The fixed test records (documented in docs/leis.md).
# --------------------------------------------------------------------------


def fixed_persons() -> tuple[Person, ...]:
    """The test records that exist whatever the seed, with fixed DINs."""
    return (
        Person(
            din="D000000001",
            name="GARCIA,MARIA",
            aliases=("LOPEZ,MARIA",),
            dobs=("19850312",),
            sex="F",
            pob="MM",
            identifiers=(
                Identifier("ARN", "204518736"),
                Identifier("PPN", "G04581234"),
            ),
            locations=(
                Location("1420 W MCDOWELL RD", "PHOENIX", "AZ", "20080115", "20160630"),
                Location("3318 E BROADWAY BLVD", "TUCSON", "AZ", "20160701", ""),
            ),
            contacts=(
                Contact("20040822", "CBP", "ADMISSION", "NOGALES, AZ PORT OF ENTRY"),
                Contact("20150310", "USCIS", "APPLICATION", "PHOENIX FIELD OFFICE, AZ"),
                Contact("20190214", "ICE", "ENCOUNTER", "TUCSON, AZ"),
            ),
            status="LAWFUL PERMANENT RESIDENT",
            remarks="FIXED TEST RECORD. CONDITIONS REMOVED 2017.",
        ),
        Person(
            din="D000000002",
            name="NGUYEN,VAN THANH",
            dobs=("19720704", "19720407"),
            sex="M",
            pob="YY",
            identifiers=(
                Identifier("ARN", "012345678"),
                Identifier("SOC", "900123456"),
                Identifier("FBI", "482913KA7"),
            ),
            locations=(
                Location("8802 BELLAIRE BLVD APT 214", "HOUSTON", "TX", "20010301", ""),
            ),
            contacts=(
                Contact("19950611", "CBP", "ADMISSION", "LOS ANGELES INTL AIRPORT, CA"),
                Contact("20180923", "ICE", "ARREST", "HOUSTON, TX"),
                Contact("20181002", "ICE", "DETENTION", "HOUSTON CONTRACT DETENTION FACILITY, TX"),
            ),
            status="REMOVAL PROCEEDINGS PENDING",
            remarks="FIXED TEST RECORD. RELEASED ON BOND 20181120.",
        ),
        Person(
            din="D000000003",
            name="SMITH,JOHN ALLAN",
            aliases=("SMYTH,JOHN",),
            dobs=("19900530",),
            sex="M",
            pob="YY",
            identifiers=(Identifier("PPN", "X7654321"),),
            locations=(
                Location("45 W 45TH ST APT 9C", "NEW YORK", "NY", "20190605", ""),
            ),
            contacts=(
                Contact("20190601", "CBP", "ADMISSION", "JFK INTL AIRPORT, NY"),
            ),
            status="NONIMMIGRANT VISITOR (B-2), OVERSTAY",
            remarks="FIXED TEST RECORD. ADMITTED UNTIL 20191130.",
        ),
        Person(
            din="D000000004",
            name="HERNANDEZ,JOSE LUIS",
            dobs=("19900115",),
            sex="M",
            pob="MM",
            identifiers=(Identifier("ARN", "098765432"),),
            locations=(
                Location("500 S CONGRESS AVE", "AUSTIN", "TX", "20200101", ""),
                Location("2100 N MESA ST", "EL PASO", "TX", "20120801", "20191231"),
            ),
            contacts=(
                Contact("20120715", "CBP", "APPREHENSION", "EL PASO, TX"),
                Contact("20130402", "USCIS", "APPLICATION", "EL PASO FIELD OFFICE, TX"),
            ),
            status="ASYLUM APPLICANT, PENDING",
            remarks="FIXED TEST RECORD. SHARES AN ADDRESS WITH D000000005.",
        ),
        Person(
            din="D000000005",
            name="HERNANDEZ,ANA",
            dobs=("19920920",),
            sex="F",
            pob="MM",
            identifiers=(Identifier("SOC", "900450987"),),
            locations=(
                Location("500 S CONGRESS AVE", "AUSTIN", "TX", "20200101", ""),
            ),
            contacts=(
                Contact("20150118", "USCIS", "APPLICATION", "AUSTIN, TX"),
            ),
            status="TEMPORARY PROTECTED STATUS",
            remarks="FIXED TEST RECORD.",
        ),
    )


#: The DINs of the fixed test records; a load file may not replace them.
FIXED_DINS = tuple(p.din for p in fixed_persons())


# --------------------------------------------------------------------------
# The synthetic generator.
# --------------------------------------------------------------------------

# Surnames weighted roughly as they occur in DHS-facing populations; every
# value here is invented data, not drawn from any real record.
_SURNAMES: tuple[tuple[str, int], ...] = (
    ("GARCIA", 30), ("RODRIGUEZ", 25), ("MARTINEZ", 25), ("HERNANDEZ", 28),
    ("LOPEZ", 25), ("GONZALEZ", 25), ("PEREZ", 18), ("SANCHEZ", 18), ("RAMIREZ", 16),
    ("TORRES", 14), ("FLORES", 14), ("RIVERA", 14), ("GOMEZ", 12), ("DIAZ", 12),
    ("CRUZ", 10), ("MORALES", 10), ("REYES", 10), ("GUTIERREZ", 9), ("ORTIZ", 9),
    ("CHAVEZ", 9), ("RAMOS", 8), ("RUIZ", 8), ("ALVAREZ", 8), ("MENDOZA", 8),
    ("CASTILLO", 7), ("JIMENEZ", 7), ("VASQUEZ", 7), ("MORENO", 7), ("ROMERO", 7),
    ("HERRERA", 6), ("MEDINA", 6), ("AGUILAR", 6), ("VARGAS", 6), ("CASTRO", 6),
    ("GUZMAN", 5), ("MUNOZ", 5), ("SALAZAR", 5), ("DELGADO", 5), ("CONTRERAS", 5),
    ("ESPINOZA", 4), ("SANDOVAL", 4), ("FIGUEROA", 4), ("DOMINGUEZ", 4), ("VEGA", 4),
    ("NGUYEN", 8), ("TRAN", 5), ("LE", 4), ("PHAM", 4), ("KIM", 5), ("LEE", 5),
    ("PARK", 4), ("WANG", 5), ("LI", 5), ("ZHANG", 5), ("CHEN", 5), ("LIU", 4),
    ("PATEL", 7), ("SINGH", 6), ("SHAH", 4), ("KHAN", 5), ("ALI", 5), ("AHMED", 5),
    ("HASSAN", 4), ("IBRAHIM", 3), ("MOHAMED", 4), ("SMITH", 6), ("JOHNSON", 5),
    ("WILLIAMS", 5), ("BROWN", 5), ("JONES", 5), ("MILLER", 4), ("DAVIS", 4),
    ("WILSON", 3), ("TAYLOR", 3), ("CLARK", 3), ("MURPHY", 3), ("OCONNOR", 2),
    ("KOWALSKI", 2), ("NOWAK", 2), ("IVANOV", 3), ("PETROV", 2), ("POPESCU", 2),
    ("SILVA", 4), ("SANTOS", 4), ("OLIVEIRA", 3), ("SOUZA", 3), ("PIERRE", 3),
    ("JEAN", 3), ("JOSEPH", 3), ("OKAFOR", 2), ("MENSAH", 2), ("ADEYEMI", 2),
    ("MUELLER", 2), ("SCHMIDT", 2), ("ROSSI", 2), ("ESPOSITO", 2), ("COHEN", 2),
)

_MALE = (
    "JOSE", "JUAN", "LUIS", "CARLOS", "JORGE", "MIGUEL", "ANTONIO", "FRANCISCO",
    "PEDRO", "JESUS", "MANUEL", "ALEJANDRO", "RICARDO", "FERNANDO", "RAFAEL",
    "DAVID", "DANIEL", "JAVIER", "EDUARDO", "ROBERTO", "SERGIO", "MARIO", "OSCAR",
    "VAN", "MINH", "HUNG", "WEI", "JUN", "HAO", "RAJ", "AMIT", "RAHUL", "MOHAMMED",
    "AHMED", "OMAR", "ALI", "YUSUF", "JOHN", "MICHAEL", "JAMES", "ROBERT", "WILLIAM",
    "THOMAS", "PAUL", "MARK", "ANDREI", "IVAN", "PIOTR", "JEAN", "EMMANUEL",
    "CHINEDU", "KWAME", "JOAO", "PAULO", "GIUSEPPE", "DMITRI",
)
_FEMALE = (
    "MARIA", "ANA", "ROSA", "GUADALUPE", "JUANA", "CARMEN", "ELENA", "LAURA",
    "PATRICIA", "VERONICA", "GABRIELA", "ALEJANDRA", "LETICIA", "ADRIANA", "SOFIA",
    "ISABEL", "LUCIA", "TERESA", "YOLANDA", "SILVIA", "CLAUDIA", "MONICA", "DIANA",
    "LAN", "HUONG", "MAI", "MEI", "LING", "XIU", "PRIYA", "ANITA", "SUNITA", "FATIMA",
    "AISHA", "LEILA", "MARY", "JENNIFER", "LINDA", "ELIZABETH", "SARAH", "KAREN",
    "OLGA", "IRINA", "ANNA", "MARIE", "NADIA", "NGOZI", "AMA", "BEATRIZ", "GIULIA",
)

# Spelling variants that show up as aliases (and that phonetic search must
# see through).
_VARIANTS = {
    "GONZALEZ": "GONZALES", "HERNANDEZ": "HERNANDES", "RODRIGUEZ": "RODRIGUES",
    "MARTINEZ": "MARTINES", "LOPEZ": "LOPES", "PEREZ": "PERES", "SANCHEZ": "SANCHES",
    "RAMIREZ": "RAMIRES", "GARCIA": "GARSIA", "VASQUEZ": "VAZQUEZ", "JIMENEZ": "GIMENEZ",
    "GUTIERREZ": "GUTIERES", "CHAVEZ": "CHAVES", "ALVAREZ": "ALVARES", "NGUYEN": "NGUEN",
    "MOHAMED": "MOHAMMED", "AHMED": "AHMAD", "SMITH": "SMYTH", "IVANOV": "IVANOFF",
    "MUNOZ": "MUNOS", "SILVA": "SYLVA", "SOUZA": "SOUSA", "HASSAN": "HASAN",
}

_STREETS = (
    "MAIN", "OAK", "PINE", "MAPLE", "CEDAR", "ELM", "WASHINGTON", "LINCOLN",
    "JEFFERSON", "MADISON", "LAKE", "HILL", "PARK", "CENTRAL", "BROADWAY",
    "VAN BUREN", "INDIAN SCHOOL", "THOMAS", "CAMELBACK", "BUCKEYE", "MESA",
    "ALAMEDA", "SAN PEDRO", "FLORES", "MISSION", "VALLEY VIEW", "SUNSET", "GRAND",
    "CHURCH", "FRANKLIN", "RIVERSIDE", "COLLEGE", "MARKET", "UNION", "HOLLY",
    "MAGNOLIA", "PALM", "ORANGE", "CYPRESS", "WILLOW", "PECAN", "SYCAMORE",
)
_STREET_TYPES = ("ST", "AVE", "RD", "DR", "BLVD", "LN", "CT", "WAY", "PL")
_DIRECTIONS = ("N", "S", "E", "W")

_CITIES = (
    ("PHOENIX", "AZ"), ("TUCSON", "AZ"), ("YUMA", "AZ"), ("NOGALES", "AZ"),
    ("MESA", "AZ"), ("EL PASO", "TX"), ("HOUSTON", "TX"), ("SAN ANTONIO", "TX"),
    ("LAREDO", "TX"), ("DALLAS", "TX"), ("MCALLEN", "TX"), ("LOS ANGELES", "CA"),
    ("SAN DIEGO", "CA"), ("FRESNO", "CA"), ("SANTA ANA", "CA"), ("CHULA VISTA", "CA"),
    ("NEW YORK", "NY"), ("BROOKLYN", "NY"), ("QUEENS", "NY"), ("BUFFALO", "NY"),
    ("MIAMI", "FL"), ("ORLANDO", "FL"), ("TAMPA", "FL"), ("CHICAGO", "IL"),
    ("ATLANTA", "GA"), ("DENVER", "CO"), ("SEATTLE", "WA"), ("OMAHA", "NB"),
    ("NEWARK", "NJ"), ("BOSTON", "MA"), ("LAS VEGAS", "NV"), ("ALBUQUERQUE", "NM"),
)

# (component, kind, places): the kinds of contact each component has.
_CONTACT_KINDS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("CBP", "ADMISSION", (
        "SAN YSIDRO, CA PORT OF ENTRY", "NOGALES, AZ PORT OF ENTRY", "EL PASO, TX PORT OF ENTRY",
        "LAREDO, TX PORT OF ENTRY", "JFK INTL AIRPORT, NY", "MIAMI INTL AIRPORT, FL",
        "LOS ANGELES INTL AIRPORT, CA", "HOUSTON INTERCONTINENTAL AIRPORT, TX",
        "CHICAGO OHARE INTL AIRPORT, IL", "BUFFALO, NY PORT OF ENTRY",
    )),
    ("CBP", "APPREHENSION", (
        "TUCSON SECTOR, AZ", "YUMA SECTOR, AZ", "EL PASO SECTOR, TX",
        "RIO GRANDE VALLEY SECTOR, TX", "SAN DIEGO SECTOR, CA", "LAREDO SECTOR, TX",
    )),
    ("CBP", "ENCOUNTER", (
        "SAN YSIDRO, CA PORT OF ENTRY", "NOGALES, AZ PORT OF ENTRY", "MIAMI INTL AIRPORT, FL",
    )),
    ("ICE", "ENCOUNTER", (
        "PHOENIX, AZ", "HOUSTON, TX", "LOS ANGELES, CA", "NEW YORK, NY", "CHICAGO, IL",
        "ATLANTA, GA", "DENVER, CO",
    )),
    ("ICE", "ARREST", (
        "PHOENIX, AZ", "SAN ANTONIO, TX", "DALLAS, TX", "MIAMI, FL", "NEWARK, NJ",
        "SEATTLE, WA",
    )),
    ("ICE", "DETENTION", (
        "ELOY DETENTION CENTER, AZ", "OTAY MESA DETENTION CENTER, CA",
        "SOUTH TEXAS ICE PROCESSING CENTER, TX", "KROME SERVICE PROCESSING CENTER, FL",
    )),
    ("ICE", "REMOVAL", (
        "NOGALES, AZ", "LAREDO, TX", "MESA AIRPORT, AZ", "ALEXANDRIA STAGING FACILITY, LA",
    )),
    ("USCIS", "APPLICATION", (
        "PHOENIX FIELD OFFICE, AZ", "HOUSTON FIELD OFFICE, TX", "LOS ANGELES FIELD OFFICE, CA",
        "NEW YORK FIELD OFFICE, NY", "MIAMI FIELD OFFICE, FL", "CHICAGO FIELD OFFICE, IL",
        "NEBRASKA SERVICE CENTER, NB", "TEXAS SERVICE CENTER, TX",
    )),
    ("USCIS", "INTERVIEW", (
        "PHOENIX FIELD OFFICE, AZ", "SAN ANTONIO FIELD OFFICE, TX", "NEWARK FIELD OFFICE, NJ",
        "ATLANTA FIELD OFFICE, GA",
    )),
    ("USCIS", "BIOMETRICS", (
        "PHOENIX APPLICATION SUPPORT CENTER, AZ", "EL PASO APPLICATION SUPPORT CENTER, TX",
        "QUEENS APPLICATION SUPPORT CENTER, NY",
    )),
)
_CONTACT_WEIGHTS = (22, 8, 4, 8, 6, 4, 3, 20, 8, 6)

_STATUSES = (
    ("LAWFUL PERMANENT RESIDENT", 30),
    ("NATURALIZED U.S. CITIZEN", 15),
    ("NONIMMIGRANT VISITOR (B-2), IN STATUS", 8),
    ("NONIMMIGRANT VISITOR (B-2), OVERSTAY", 6),
    ("NONIMMIGRANT STUDENT (F-1), IN STATUS", 5),
    ("TEMPORARY PROTECTED STATUS", 6),
    ("ASYLUM APPLICANT, PENDING", 7),
    ("REMOVAL PROCEEDINGS PENDING", 8),
    ("FINAL ORDER OF REMOVAL", 5),
    ("NO STATUS, ENTERED WITHOUT INSPECTION", 10),
)
_REMARKS = (
    "", "", "", "", "",
    "EMPLOYMENT AUTHORIZATION VALID",
    "PENDING APPLICATION FOR ADJUSTMENT OF STATUS",
    "PRIOR REMOVAL ORDER REINSTATED",
    "RELEASED ON ORDER OF RECOGNIZANCE",
    "CONDITIONAL RESIDENT, CONDITIONS REMOVED",
    "VISA EXPIRED, NO EXTENSION ON FILE",
    "DACA RECIPIENT, RENEWAL PENDING",
    "SUBJECT OF ICE DETAINER, CONFIRM WITH LESC",
)


class Generator:
    """Makes persons from one ``random.Random``: the same seed, the same
    persons, in the same order."""

    def __init__(self, seed: int, taken_ids: Iterable[tuple[str, str]],
                 taken_keys: Iterable[tuple[str, str]]) -> None:
        self.rng = random.Random(seed)
        self.surnames = [s for s, _ in _SURNAMES]
        self.cum_weights: list[int] = []
        total = 0
        for _, weight in _SURNAMES:
            total += weight
            self.cum_weights.append(total)
        self.status_names = [s for s, _ in _STATUSES]
        self.status_weights = [w for _, w in _STATUSES]
        self.used_ids = set(taken_ids)
        # (name, dob) of the fixed records: a generated person never equals
        # one, so that a search with NAM + DOB finds only the fixed record.
        self.taken_keys = set(taken_keys)
        self.first_ordinal = _dt.date(1945, 1, 1).toordinal()
        self.last_ordinal = _dt.date(2006, 12, 31).toordinal()
        self.as_of = DATA_AS_OF.toordinal()

    def _surname(self) -> str:
        return self.rng.choices(self.surnames, cum_weights=self.cum_weights)[0]

    def _unique(self, kind: str, make: Callable[[], str]) -> str:
        while True:
            value = make()
            if (kind, value) not in self.used_ids:
                self.used_ids.add((kind, value))
                return value

    def _digits(self, n: int) -> str:
        return f"{self.rng.randrange(10 ** n):0{n}d}"

    def person(self, din: str) -> Person:
        """One synthetic person with the given DIN."""
        rng = self.rng
        sex = "F" if rng.random() < 0.48 else "M"
        firsts = _FEMALE if sex == "F" else _MALE
        first = rng.choice(firsts)
        last = self._surname()
        if rng.random() < 0.08:
            last = f"{last} {self._surname()}"  # a compound surname
        roll = rng.random()
        middle = ""
        if roll < 0.35:
            middle = rng.choice(firsts)
        elif roll < 0.5:
            middle = rng.choice(firsts)[0]  # a middle initial
        name = f"{last},{first}" + (f" {middle}" if middle else "")

        born_ord = rng.randint(self.first_ordinal, self.last_ordinal)
        dob = _dt.date.fromordinal(born_ord).strftime("%Y%m%d")
        while (name, dob) in self.taken_keys:
            born_ord += 1
            dob = _dt.date.fromordinal(born_ord).strftime("%Y%m%d")
        dobs = [dob]
        if rng.random() < 0.12:
            # A second DOB as records have them: month and day swapped, or a
            # year off.
            born = _dt.date.fromordinal(born_ord)
            other = real_date(born.year, born.day, born.month) if born.day <= 12 else None
            if other is None or other == born:
                other = real_date(born.year + rng.choice((-1, 1)), born.month,
                                   min(born.day, 28))
            if other is not None:
                dobs.append(other.strftime("%Y%m%d"))

        aliases: list[str] = []
        if rng.random() < 0.35:
            for _ in range(rng.choice((1, 1, 1, 2))):
                pick = rng.random()
                first_last = last.split()[0]
                if pick < 0.4 and first_last in _VARIANTS:
                    alias = f"{_VARIANTS[first_last]},{first}"
                elif pick < 0.75:
                    alias = f"{self._surname()},{first}"
                else:
                    alias = f"{last},{rng.choice(firsts)}"
                if alias != name and alias not in aliases:
                    aliases.append(alias)

        pob = rng.choices(("MM", "YY", "CD", "US", "XX"), weights=(45, 40, 4, 8, 3))[0]
        status = ("U.S. CITIZEN" if pob == "US"
                  else rng.choices(self.status_names, weights=self.status_weights)[0])

        identifiers: list[Identifier] = []
        if pob != "US" and rng.random() < 0.75:
            identifiers.append(Identifier("ARN", self._unique(
                "ARN", lambda: rng.choice(("0", "2")) + self._digits(8))))
        if rng.random() < 0.5:
            # Area 9xx with group 00-49: never an SSN and never an ITIN, so no
            # generated number can be anyone's real one.
            identifiers.append(Identifier("SOC", self._unique(
                "SOC", lambda: f"9{self._digits(2)}{rng.randrange(50):02d}{self._digits(4)}")))
        if rng.random() < 0.4:
            identifiers.append(Identifier("PPN", self._unique(
                "PPN", lambda: rng.choice("ABCEGKNPX") + self._digits(8))))
        if rng.random() < 0.15:
            identifiers.append(Identifier("FBI", self._unique(
                "FBI", lambda: self._digits(6) + rng.choice("ABCDEFHJK") * 2
                + self._digits(1))))

        adult = min(born_ord + 365 * 16, self.as_of - 400)
        locations: list[Location] = []
        n_loc = rng.choices((1, 2, 3), weights=(50, 35, 15))[0]
        starts = sorted(rng.randint(adult, self.as_of - 30) for _ in range(n_loc))
        for i, start in enumerate(starts):
            city, state = rng.choice(_CITIES)
            street = rng.choice(_STREETS)
            address = f"{rng.randint(100, 9999)} "
            if rng.random() < 0.4:
                address += rng.choice(_DIRECTIONS) + " "
            address += f"{street} {rng.choice(_STREET_TYPES)}"
            if rng.random() < 0.2:
                address += f" APT {rng.randint(1, 40)}"
            until = _dt.date.fromordinal(starts[i + 1] - 1).strftime("%Y%m%d") \
                if i + 1 < n_loc else ""
            locations.append(Location(address, city, state,
                                      _dt.date.fromordinal(start).strftime("%Y%m%d"), until))

        contacts: list[Contact] = []
        n_contacts = rng.choices((0, 1, 2, 3, 4), weights=(15, 30, 28, 17, 10))[0]
        dates = sorted(rng.randint(adult, self.as_of) for _ in range(n_contacts))
        for day in dates:
            component, kind, places = rng.choices(_CONTACT_KINDS, weights=_CONTACT_WEIGHTS)[0]
            contacts.append(Contact(_dt.date.fromordinal(day).strftime("%Y%m%d"), component,
                                    kind, rng.choice(places)))
        if contacts and contacts[-1].kind == "REMOVAL" and pob != "US":
            status = "REMOVED"

        return Person(
            din=din, name=name, aliases=tuple(aliases), dobs=tuple(dobs), sex=sex, pob=pob,
            identifiers=tuple(identifiers), locations=tuple(locations),
            contacts=tuple(contacts), status=status, remarks=rng.choice(_REMARKS),
        )


def generated_din(index: int) -> str:
    """DIN of the index-th generated person (0-based): D100000001, ..."""
    return f"D{100000001 + index:09d}"
