"""Static tables the simulated states' generator draws from, and the VIN check digit.

Internal to :mod:`nlets_switch.services.statedata`. Hand-written rather
than Faker: Faker's word lists change between releases, and the data set
must be the same wherever the switch runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Final

# State -> three (city, ZIP) pairs, the capital first.
CITIES: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "AL": (("MONTGOMERY", "36104"), ("BIRMINGHAM", "35203"), ("MOBILE", "36602")),
    "AK": (("JUNEAU", "99801"), ("ANCHORAGE", "99501"), ("FAIRBANKS", "99701")),
    "AZ": (("PHOENIX", "85003"), ("TUCSON", "85701"), ("MESA", "85201")),
    "AR": (("LITTLE ROCK", "72201"), ("FAYETTEVILLE", "72701"), ("FORT SMITH", "72901")),
    "CA": (("SACRAMENTO", "95814"), ("LOS ANGELES", "90012"), ("SAN DIEGO", "92101")),
    "CO": (("DENVER", "80202"), ("COLORADO SPRINGS", "80903"), ("AURORA", "80010")),
    "CT": (("HARTFORD", "06103"), ("NEW HAVEN", "06510"), ("BRIDGEPORT", "06604")),
    "DE": (("DOVER", "19901"), ("WILMINGTON", "19801"), ("NEWARK", "19711")),
    "DC": (("WASHINGTON", "20001"), ("WASHINGTON", "20002"), ("WASHINGTON", "20003")),
    "FL": (("TALLAHASSEE", "32301"), ("JACKSONVILLE", "32202"), ("MIAMI", "33130")),
    "GA": (("ATLANTA", "30303"), ("SAVANNAH", "31401"), ("AUGUSTA", "30901")),
    "HI": (("HONOLULU", "96813"), ("HILO", "96720"), ("KAILUA", "96734")),
    "ID": (("BOISE", "83702"), ("IDAHO FALLS", "83402"), ("POCATELLO", "83201")),
    "IL": (("SPRINGFIELD", "62701"), ("CHICAGO", "60602"), ("PEORIA", "61602")),
    "IN": (("INDIANAPOLIS", "46204"), ("FORT WAYNE", "46802"), ("EVANSVILLE", "47708")),
    "IA": (("DES MOINES", "50309"), ("CEDAR RAPIDS", "52401"), ("DAVENPORT", "52801")),
    "KS": (("TOPEKA", "66603"), ("WICHITA", "67202"), ("OLATHE", "66061")),
    "KY": (("FRANKFORT", "40601"), ("LOUISVILLE", "40202"), ("LEXINGTON", "40507")),
    "LA": (("BATON ROUGE", "70802"), ("NEW ORLEANS", "70112"), ("SHREVEPORT", "71101")),
    "ME": (("AUGUSTA", "04330"), ("PORTLAND", "04101"), ("BANGOR", "04401")),
    "MD": (("ANNAPOLIS", "21401"), ("BALTIMORE", "21202"), ("FREDERICK", "21701")),
    "MA": (("BOSTON", "02108"), ("WORCESTER", "01608"), ("SPRINGFIELD", "01103")),
    "MI": (("LANSING", "48933"), ("DETROIT", "48226"), ("GRAND RAPIDS", "49503")),
    "MN": (("SAINT PAUL", "55102"), ("MINNEAPOLIS", "55401"), ("DULUTH", "55802")),
    "MS": (("JACKSON", "39201"), ("GULFPORT", "39501"), ("HATTIESBURG", "39401")),
    "MO": (("JEFFERSON CITY", "65101"), ("KANSAS CITY", "64106"), ("SAINT LOUIS", "63101")),
    "MT": (("HELENA", "59601"), ("BILLINGS", "59101"), ("MISSOULA", "59802")),
    "NB": (("LINCOLN", "68508"), ("OMAHA", "68102"), ("GRAND ISLAND", "68801")),
    "NV": (("CARSON CITY", "89701"), ("LAS VEGAS", "89101"), ("RENO", "89501")),
    "NH": (("CONCORD", "03301"), ("MANCHESTER", "03101"), ("NASHUA", "03060")),
    "NJ": (("TRENTON", "08608"), ("NEWARK", "07102"), ("JERSEY CITY", "07302")),
    "NM": (("SANTA FE", "87501"), ("ALBUQUERQUE", "87102"), ("LAS CRUCES", "88001")),
    "NY": (("ALBANY", "12207"), ("BUFFALO", "14202"), ("ROCHESTER", "14604")),
    "NC": (("RALEIGH", "27601"), ("CHARLOTTE", "28202"), ("GREENSBORO", "27401")),
    "ND": (("BISMARCK", "58501"), ("FARGO", "58102"), ("GRAND FORKS", "58201")),
    "OH": (("COLUMBUS", "43215"), ("CLEVELAND", "44113"), ("CINCINNATI", "45202")),
    "OK": (("OKLAHOMA CITY", "73102"), ("TULSA", "74103"), ("NORMAN", "73069")),
    "OR": (("SALEM", "97301"), ("PORTLAND", "97204"), ("EUGENE", "97401")),
    "PA": (("HARRISBURG", "17101"), ("PHILADELPHIA", "19107"), ("PITTSBURGH", "15222")),
    "RI": (("PROVIDENCE", "02903"), ("WARWICK", "02886"), ("CRANSTON", "02920")),
    "SC": (("COLUMBIA", "29201"), ("CHARLESTON", "29401"), ("GREENVILLE", "29601")),
    "SD": (("PIERRE", "57501"), ("SIOUX FALLS", "57104"), ("RAPID CITY", "57701")),
    "TN": (("NASHVILLE", "37219"), ("MEMPHIS", "38103"), ("KNOXVILLE", "37902")),
    "TX": (("AUSTIN", "78701"), ("HOUSTON", "77002"), ("DALLAS", "75201")),
    "UT": (("SALT LAKE CITY", "84111"), ("PROVO", "84601"), ("OGDEN", "84401")),
    "VT": (("MONTPELIER", "05602"), ("BURLINGTON", "05401"), ("RUTLAND", "05701")),
    "VA": (("RICHMOND", "23219"), ("NORFOLK", "23510"), ("VIRGINIA BEACH", "23451")),
    "WA": (("OLYMPIA", "98501"), ("SEATTLE", "98104"), ("SPOKANE", "99201")),
    "WV": (("CHARLESTON", "25301"), ("HUNTINGTON", "25701"), ("MORGANTOWN", "26501")),
    "WI": (("MADISON", "53703"), ("MILWAUKEE", "53202"), ("GREEN BAY", "54301")),
    "WY": (("CHEYENNE", "82001"), ("CASPER", "82601"), ("LARAMIE", "82070")),
}

# Mailing addresses use postal codes; the only NCIC code that differs is NB.
# Licence number layouts, after each state's published format (one common
# variant where a state has several). "#" a digit, "@" a letter, "*" either;
# anything else is literal.
OLN_FORMAT: Final[Mapping[str, str]] = {
    "AL": "#######", "AK": "#######", "AZ": "@########", "AR": "#########",
    "CA": "@#######", "CO": "#########", "CT": "#########", "DE": "#######",
    "DC": "#######", "FL": "@############", "GA": "#########", "HI": "H########",
    "ID": "@@######@", "IL": "@###########", "IN": "##########", "IA": "###@@####",
    "KS": "K########", "KY": "@########", "LA": "#########", "ME": "#######",
    "MD": "@############", "MA": "S########", "MI": "@############",
    "MN": "@############", "MS": "#########", "MO": "@#########", "MT": "#############",
    "NB": "@########", "NV": "##########", "NH": "##@@@#####", "NJ": "@##############",
    "NM": "#########", "NY": "#########", "NC": "############", "ND": "@@@######",
    "OH": "@@######", "OK": "@#########", "OR": "#######", "PA": "########",
    "RI": "#######", "SC": "#########", "SD": "########", "TN": "#########",
    "TX": "########", "UT": "#########", "VT": "########", "VA": "@########",
    "WA": "WDL*********", "WV": "@######", "WI": "@#############", "WY": "#########",
}

# The ordinary (non-commercial) licence class where it is not "D".
BASIC_CLASS: Final[Mapping[str, str]] = {
    "CA": "C", "TX": "C", "PA": "C", "FL": "E", "MI": "O", "NV": "C", "WA": "C",
}

MALE: Final = (
    "JAMES", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "RICHARD", "JOSEPH", "THOMAS",
    "CHARLES", "CHRISTOPHER", "DANIEL", "MATTHEW", "ANTHONY", "MARK", "DONALD",
    "STEVEN", "PAUL", "ANDREW", "JOSHUA", "KENNETH", "KEVIN", "BRIAN", "GEORGE",
    "TIMOTHY", "RONALD", "JASON", "EDWARD", "JEFFREY", "RYAN", "JACOB", "GARY",
    "NICHOLAS", "ERIC", "JONATHAN", "STEPHEN", "LARRY", "JUSTIN", "SCOTT",
    "BRANDON", "BENJAMIN", "CARLOS", "LUIS", "JOSE", "MIGUEL", "TYRONE", "DARNELL",
)  # no JOHN: the test record SMITH,JOHN stays the only one
FEMALE: Final = (
    "MARY", "PATRICIA", "JENNIFER", "LINDA", "ELIZABETH", "BARBARA", "SUSAN",
    "JESSICA", "SARAH", "KAREN", "LISA", "NANCY", "BETTY", "MARGARET", "SANDRA",
    "ASHLEY", "KIMBERLY", "EMILY", "DONNA", "MICHELLE", "CAROL", "AMANDA",
    "MELISSA", "DEBORAH", "STEPHANIE", "REBECCA", "SHARON", "LAURA", "CYNTHIA",
    "KATHLEEN", "AMY", "ANGELA", "SHIRLEY", "ANNA", "BRENDA", "PAMELA", "EMMA",
    "NICOLE", "HELEN", "MARIA", "ROSA", "ANA", "KEISHA", "LATOYA",
)
LAST: Final = (
    "SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS",
    "RODRIGUEZ", "MARTINEZ", "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON",
    "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN", "LEE", "PEREZ", "THOMPSON",
    "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER",
    "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL",
    "FLORES", "GREEN", "ADAMS", "NELSON", "BAKER", "HALL", "RIVERA", "CAMPBELL",
    "MITCHELL", "CARTER", "ROBERTS", "GOMEZ", "PHILLIPS", "EVANS", "TURNER", "DIAZ",
    "PARKER", "CRUZ", "EDWARDS", "COLLINS", "REYES", "STEWART", "MORRIS", "MORALES",
    "MURPHY", "COOK", "ROGERS", "GUTIERREZ", "ORTIZ", "MORGAN", "COOPER", "PETERSON",
    "BAILEY", "REED", "KELLY", "HOWARD", "RAMOS", "KIM", "COX", "WARD", "RICHARDSON",
    "WATSON", "BROOKS", "CHAVEZ", "WOOD", "BENNETT", "GRAY", "MENDOZA", "RUIZ",
    "HUGHES", "PRICE", "ALVAREZ", "CASTILLO", "SANDERS", "PATEL", "MYERS", "LONG",
    "ROSS", "FOSTER", "JIMENEZ", "SMITH-JONES", "OCONNOR", "BEGAY", "YAZZIE",
)
STREETS: Final = (
    "MAIN ST", "OAK AVE", "MAPLE DR", "CEDAR LN", "PINE ST", "ELM ST",
    "WASHINGTON AVE", "LAKE RD", "HILL ST", "PARK AVE", "2ND ST", "3RD AVE",
    "SUNSET BLVD", "RIVER RD", "CHURCH ST", "HIGHLAND AVE", "MILL RD", "FOREST DR",
    "JEFFERSON ST", "LINCOLN AVE", "MADISON ST", "JACKSON BLVD", "WILLOW WAY",
    "SPRING ST", "CENTER ST", "RIDGE RD", "VALLEY VIEW DR", "MEADOW LN",
)


# (value, weight) tables: random.choices keeps the weights honest.
RACES: Final = (("W", 60), ("B", 15), ("H", 12), ("A", 7), ("I", 3), ("U", 3))
EYES: Final = (("BRO", 45), ("BLU", 26), ("HAZ", 10), ("GRN", 9), ("BLK", 6), ("GRY", 4))
HAIR: Final = (("BRO", 42), ("BLK", 30), ("BLN", 12), ("RED", 4), ("GRY", 8), ("WHI", 2),
                ("SDY", 2))
COLOURS: Final = (("WHI", 22), ("BLK", 20), ("GRY", 16), ("SIL", 14), ("RED", 9),
                   ("BLU", 9), ("BRO", 2), ("GRN", 2), ("TAN", 2), ("MAR", 2), ("GLD", 1),
                   ("YEL", 1))

# (VMA, VMO, VST, WMI, plate type): NCIC make, model and style codes.
MODELS: Final = (
    ("FORD", "F15", "PK", "1FT", "TK"), ("FORD", "FUS", "4D", "3FA", "PC"),
    ("FORD", "ESC", "UT", "1FM", "PC"), ("FORD", "EXP", "UT", "1FM", "PC"),
    ("FORD", "MUS", "2D", "1FA", "PC"), ("CHEV", "SIL", "PK", "1GC", "TK"),
    ("CHEV", "MAL", "4D", "1G1", "PC"), ("CHEV", "EQU", "UT", "2GN", "PC"),
    ("CHEV", "TAH", "UT", "1GN", "PC"), ("CHEV", "IMP", "4D", "2G1", "PC"),
    ("TOYT", "CAM", "4D", "4T1", "PC"), ("TOYT", "COR", "4D", "2T1", "PC"),
    ("TOYT", "RAV", "UT", "2T3", "PC"), ("TOYT", "TAC", "PK", "3TM", "TK"),
    ("TOYT", "SIE", "VN", "5TD", "PC"), ("HOND", "ACC", "4D", "1HG", "PC"),
    ("HOND", "CIV", "4D", "2HG", "PC"), ("HOND", "CRV", "UT", "5J6", "PC"),
    ("HOND", "ODY", "VN", "5FN", "PC"), ("NISS", "ALT", "4D", "1N4", "PC"),
    ("NISS", "ROG", "UT", "JN8", "PC"), ("NISS", "SEN", "4D", "3N1", "PC"),
    ("NISS", "FRO", "PK", "1N6", "TK"), ("DODG", "RAM", "PK", "3C6", "TK"),
    ("DODG", "CHA", "4D", "2C3", "PC"), ("DODG", "CAR", "VN", "2C4", "PC"),
    ("JEEP", "WRA", "UT", "1C4", "PC"), ("JEEP", "CHE", "UT", "1J4", "PC"),
    ("SUBA", "OUT", "SW", "4S4", "PC"), ("SUBA", "FOR", "UT", "JF2", "PC"),
    ("HYUN", "ELA", "4D", "KMH", "PC"), ("HYUN", "SON", "4D", "5NP", "PC"),
    ("KIA", "SOR", "UT", "5XY", "PC"), ("VOLK", "JET", "4D", "3VW", "PC"),
    ("VOLK", "PAS", "4D", "1VW", "PC"), ("HD", "FLH", "MC", "1HD", "MC"),
    ("HD", "XL", "MC", "1HD", "MC"),
)

# Plate layouts ("#" digit, "@" letter); each state draws one per plate type.
PLATE_FORMATS: Final[Mapping[str, tuple[str, ...]]] = {
    "PC": ("@@@####", "###@@@", "#@@@###", "@@@###", "@@#####", "###@###", "@###@@"),
    "TK": ("@#####", "#####@", "@@####", "###@@#"),
    "MC": ("@####", "####@", "@@###", "###@@"),
}

# (description, points) of a driving-record conviction.
VIOLATIONS: Final = (
    ("SPEEDING 1-10 MPH OVER LIMIT", 2), ("SPEEDING 11-15 MPH OVER LIMIT", 3),
    ("SPEEDING 16-20 MPH OVER LIMIT", 4), ("SPEEDING 21+ MPH OVER LIMIT", 6),
    ("FAILURE TO OBEY TRAFFIC SIGNAL", 3), ("FAILURE TO STOP AT STOP SIGN", 3),
    ("FAILURE TO YIELD RIGHT OF WAY", 3), ("IMPROPER LANE CHANGE", 2),
    ("FOLLOWING TOO CLOSELY", 3), ("NO PROOF OF INSURANCE", 0),
    ("DRIVING WHILE LICENSE SUSPENDED", 6), ("RECKLESS DRIVING", 8),
    ("DUI - ALCOHOL", 8), ("HANDHELD DEVICE WHILE DRIVING", 2),
    ("SEAT BELT VIOLATION", 0),
)
DUI: Final = "DUI - ALCOHOL"

# (NCIC offense code, literal, severity, weight); codes from FIELDS.md's list
# and NCIC's uniform offense codes.
OFFENSES: Final = (
    ("0999", "HOMICIDE", "FELONY", 1), ("1299", "ROBBERY", "FELONY", 4),
    ("1313", "SIMPLE ASSAULT", "MISDEMEANOR", 12), ("1399", "ASSAULT", "FELONY", 6),
    ("2299", "BURGLARY", "FELONY", 7), ("2399", "LARCENY", "MISDEMEANOR", 14),
    ("2404", "VEHICLE THEFT", "FELONY", 5), ("2699", "FRAUD", "FELONY", 6),
    ("3562", "MARIJUANA - POSSESS", "MISDEMEANOR", 10),
    ("3599", "DANGEROUS DRUGS", "FELONY", 8),
    ("4899", "OBSTRUCTING POLICE", "MISDEMEANOR", 6),
    ("5015", "FAILURE TO APPEAR", "MISDEMEANOR", 8),
    ("5299", "WEAPON OFFENSE", "FELONY", 4), ("5399", "PUBLIC PEACE", "MISDEMEANOR", 8),
    ("5404", "DRIVING UNDER INFLUENCE LIQUOR", "MISDEMEANOR", 12),
)
DISPOSITIONS: Final = (
    ("CONVICTED", 58), ("DISMISSED", 22), ("ACQUITTED", 4),
    ("DEFERRED ADJUDICATION", 8), ("NO DISPOSITION REPORTED", 8),
)
SMT: Final = (
    "TAT R ARM", "TAT L ARM", "TAT CHEST", "TAT NECK", "TAT BACK", "TAT R HND",
    "SC FHD", "SC L CHK", "SC R HND", "PRCD L EAR", "MOLE FACE", "BRTHMK NECK",
)
# NCIC fingerprint classification pieces: ridge counts and pattern codes.
FPC_PATTERNS: Final = ("AA", "TT", "PI", "PM", "PO", "CI", "CM", "CO", "DI", "DM", "DO")

VIN_CHARS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"  # no I, O, Q (ISO 3779)
VIN_YEAR: Final = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 1980..2009, then again from 2010
VIN_VALUE: Final[Mapping[str, int]] = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)), "P": 7, "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
VIN_WEIGHTS: Final = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
LETTERS: Final = "ABCDEFGHJKLMNPRSTUVWXYZ"  # no I, O, Q: they read as digits

# The data set is "as of" the end of 2024: dates are drawn before this and
# never from a clock, so the records do not change from one day to the next.
AS_OF: Final = dt.date(2024, 12, 31)


def vin_check_digit(vin: str) -> str:
    """The ISO 3779 / 49 CFR 565 check digit (position 9) of a 17-char VIN."""
    total = sum(VIN_VALUE[c] * w for c, w in zip(vin, VIN_WEIGHTS, strict=True))
    remainder = total % 11
    return "X" if remainder == 10 else str(remainder)
