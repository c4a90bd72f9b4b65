"""Simulated Canada (CPIC), INTERPOL and Mexico: their test records and answers.

Pure, like :mod:`nlets_switch.services.statedata`: the text after ``TXT`` of
the answer to one inquiry. Each counterpart holds a few fixed test records
(docs/simulated-states.md lists them); anything else answers the title line
and ``NO RECORD`` (PROTOCOL part 6). Every hit carries the line
:data:`~nlets_switch.services.statedata_text.SIMULATED`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from nlets_switch.services.statedata_records import NO_RECORD, TEST_FBI
from nlets_switch.services.statedata_text import SIMULATED
from nlets_switch.wire.domain import parse_dob, parse_name

_TITLES: Final[Mapping[tuple[str, str], str]] = {
    ("CN", "DQ"): "CPIC RESPONSE - DRIVER LICENCE (ONTARIO MTO)",
    ("CN", "RQ"): "CPIC RESPONSE - VEHICLE REGISTRATION (ONTARIO MTO)",
    ("CN", "IQ"): "CPIC RESPONSE - PERSONS FILE / CRIMINAL RECORD",
    ("IP", "IQ"): "INTERPOL WASHINGTON - NOTICES AND DIFFUSIONS",
    ("IP", "RQ"): "INTERPOL WASHINGTON - STOLEN MOTOR VEHICLES",
    ("MX", "RQ"): "MEXICO - REGISTRO PUBLICO VEHICULAR",
    ("MX", "DQ"): "MEXICO - LICENCIA DE CONDUCIR",
}

#: The fixed test records' search values (the same person and plate as the states').
TEST_PERSON: Final = ("SMITH", "JOHN", "19500101")
TEST_PLATE: Final = "123456"
TEST_VIN: Final = "1FTEW1EP5KFA00001"
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")

_RECORDS: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("CN", "DQ"): (
        "NAME: SMITH, JOHN   DOB: 1950/01/01   SEX: M",
        "LICENCE: S1234-56789-50101   CLASS: G   STATUS: VALID   EXPIRY: 2029/01/01",
        "ADDRESS: 100 QUEEN ST W, TORONTO ON M5H 2N2",
    ),
    ("CN", "RQ"): (
        "PLATE: 123456   PROV: ON   TYPE: PASSENGER   EXPIRY: 2027/06/30",
        "VIN: 1FTEW1EP5KFA00001   2019 FORD F150 PICKUP BLUE",
        "OWNER: SMITH, JOHN, 100 QUEEN ST W, TORONTO ON M5H 2N2",
        "CPIC STOLEN VEHICLE CHECK: NOT STOLEN",
    ),
    ("CN", "IQ"): (
        "NAME: SMITH, JOHN   DOB: 1950/01/01   SEX: M",
        "FPS: 123456A   CRIMINAL RECORD: YES - CONTACT RCMP CCRTIS FOR DETAILS",
        "CPIC PERSONS FILE: NO OUTSTANDING ENTRIES",
    ),
    ("IP", "IQ"): (
        "NAME: SMITH, JOHN   DOB: 01/01/1950   SEX: M",
        f"FBI: {TEST_FBI}   NOTICES: NONE   DIFFUSIONS: NONE",
        "CONTACT INTERPOL WASHINGTON (USNCB) BEFORE ANY ACTION",
    ),
    ("IP", "RQ"): (
        "VIN: 1FTEW1EP5KFA00001   2019 FORD F150",
        "SMV DATABASE: NOT REPORTED STOLEN BY ANY MEMBER COUNTRY",
    ),
    ("MX", "RQ"): (
        "PLACA: 123456   ESTADO: SONORA   TIPO: PARTICULAR",
        "NIV (VIN): 1FTEW1EP5KFA00001   2019 FORD F150",
        "PROPIETARIO: SMITH, JOHN   ESTATUS: VIGENTE, SIN REPORTE DE ROBO",
    ),
    ("MX", "DQ"): (
        "NOMBRE: SMITH, JOHN   FECHA DE NACIMIENTO: 01/01/1950",
        "LICENCIA: SON-0101500   TIPO: A   ESTATUS: VIGENTE",
    ),
}


def _is_test_person(f: Mapping[str, str]) -> bool:
    name = parse_name(f.get("NAM", "").strip().upper())
    dob = parse_dob(f.get("DOB", "").strip()) if f.get("DOB") else None
    if dob is None:
        return False
    return ((name.last, name.first, dob.strftime("%Y%m%d")) == TEST_PERSON
            and f.get("SEX", "M").strip().upper() in ("M", "U", ""))


def _is_test_vehicle(f: Mapping[str, str]) -> bool:
    lic = _NOT_ALNUM.sub("", f.get("LIC", "").upper())
    vin = _NOT_ALNUM.sub("", f.get("VIN", "").upper())
    return lic == TEST_PLATE or vin == TEST_VIN


def answers(code: str, key: str) -> bool:
    """Whether counterpart ``code`` (``CN``, ``IP``, ``MX``) answers ``key``."""
    return (code, key) in _TITLES


def foreign_answer(code: str, key: str, fields: Mapping[str, str]) -> str:
    """The answer text of counterpart ``code`` to inquiry ``key`` (ValueError if it
    does not answer that key)."""
    title = _TITLES.get((code, key))
    if title is None:
        raise ValueError(f"{code} does not answer {key!r}")
    f = {k.upper(): v for k, v in fields.items()}
    hit = _is_test_vehicle(f) if key == "RQ" else (
        _is_test_person(f) or (key == "DQ" and f.get("OLN", "").strip() == "D11111111"))
    if not hit:
        return f"{title}\n{NO_RECORD}"
    return "\n".join((title, SIMULATED, *_RECORDS[(code, key)]))
