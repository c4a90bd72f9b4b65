"""The simulated states' data set and answer texts (PROTOCOL part 6)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nlets_switch.services.statedata import (
    INQUIRY_KEYS,
    NO_RECORD,
    STATES,
    TEST_FBI,
    TEST_OLN,
    TEST_VIN,
    StateData,
    fixed_sid,
    response_key,
    vin_check_digit,
)
from nlets_switch.wire import schema

SMITH = {"NAM": "SMITH,JOHN", "DOB": "19500101", "SEX": "M"}
PLATE = {"LIC": "123456", "LIY": "2027", "LIT": "PC"}


def is_no_record(text: str) -> bool:
    """PROTOCOL part 6: a line that reads NO RECORD makes a no-record answer."""
    return NO_RECORD in text.splitlines()


def assert_miss(text: str, state: str = "TX") -> None:
    lines = text.splitlines()
    assert len(lines) == 2, text
    assert lines[0].startswith(f"{state} ")
    assert lines[1] == NO_RECORD
    assert schema.is_no_record(text)  # what the NL fan-out uses to drop it


def assert_hit(text: str, *wanted: str) -> None:
    assert not is_no_record(text), text
    assert not schema.is_no_record(text), text
    for item in wanted:
        assert item in text, (item, text)


def assert_wire_safe(text: str) -> None:
    for line in text.split("\n"):
        assert len(line) <= 80, line
        assert all(0x20 <= ord(c) <= 0x7E for c in line), repr(line)


# --------------------------------------------------------------------------
# Keys and states
# --------------------------------------------------------------------------


def test_states_are_the_50_states_and_dc_in_ncic_codes() -> None:
    assert len(STATES) == len(set(STATES)) == 51
    assert "DC" in STATES
    assert "NB" in STATES and "NE" not in STATES  # FIELDS.md: Nebraska is NB
    assert all(len(s) == 2 and s.isalpha() and s.isupper() for s in STATES)


@pytest.mark.parametrize(("inquiry", "response"), [
    ("DQ", "DR"), ("KQ", "KR"), ("RQ", "RR"), ("IQ", "IR"), ("FQ", "FR"), ("AQ", "AR"),
])
def test_response_key(inquiry: str, response: str) -> None:
    assert response_key(inquiry) == response
    assert inquiry in INQUIRY_KEYS


def test_keys_a_simulated_state_does_not_answer_are_refused() -> None:
    with pytest.raises(ValueError):
        response_key("YQ")
    with pytest.raises(ValueError):
        StateData.for_state("TX").answer("AM", {"TXT": "HELLO"})


@pytest.mark.parametrize("code", ["NE", "PR", "XX", "", "TEXAS"])
def test_only_state_codes_have_data(code: str) -> None:
    with pytest.raises(ValueError):
        StateData.for_state(code)


# --------------------------------------------------------------------------
# The documented test records, in every state
# --------------------------------------------------------------------------


@pytest.mark.parametrize("state", STATES)
def test_guide_test_records_hit_in_every_state(state: str) -> None:
    data = StateData.for_state(state)
    sid = fixed_sid(state)

    dr = data.answer("DQ", SMITH)
    assert_hit(dr, "SMITH,JOHN", "01/01/1950", TEST_OLN, f"STATE: {state}")
    assert dr.splitlines()[0] == f"{state} DMV RESPONSE - DRIVER LICENSE"
    assert data.answer("DQ", {"OLN": TEST_OLN}) == dr

    kr = data.answer("KQ", {"OLN": TEST_OLN})
    assert_hit(kr, "SMITH,JOHN", "DRIVING HISTORY", "SPEEDING 11-15 MPH OVER LIMIT")
    assert data.answer("KQ", SMITH) == kr

    rr = data.answer("RQ", PLATE)
    assert_hit(rr, "PLATE: 123456", "TYPE: PC", "YEAR: 2027", TEST_VIN, "SMITH,JOHN",
               "MAKE: FORD")
    assert data.answer("RQ", {"VIN": TEST_VIN}) == rr

    ir = data.answer("IQ", SMITH)
    assert_hit(ir, "SMITH,JOHN", f"SID: {sid}", f"FBI: {TEST_FBI}", "CYCLE 001",
               "LARCENY", "CONVICTED")
    for ident in ({"SID": sid}, {"FBI": TEST_FBI}):
        fr = data.answer("FQ", ident)
        assert_hit(fr, "SMITH,JOHN", f"SID: {sid}", "CYCLE 002")
        assert fr.splitlines()[0].endswith("FULL RECORD")

    ar = data.answer("AQ", {"SID": sid})
    assert_hit(ar, "SMITH,JOHN", sid, "FINGERPRINT CLASS", "PHOTO ON FILE")
    for text in (dr, kr, rr, ir, ar):
        assert_wire_safe(text)


def test_mmddyy_dob_finds_smith() -> None:
    data = StateData.for_state("AZ")
    for key in ("DQ", "KQ", "IQ"):
        assert_hit(data.answer(key, {**SMITH, "DOB": "010150"}), "SMITH,JOHN")


def test_name_spelling_variants_a_user_may_type() -> None:
    data = StateData.for_state("AZ")
    for nam in ("SMITH, JOHN", "smith,john", "SMITH,JOHN JR", "SMITH,JOHN Q"):
        assert_hit(data.answer("DQ", {**SMITH, "NAM": nam}), TEST_OLN)
    # SEX U (unknown) and no SEX at all do not narrow the search.
    assert_hit(data.answer("DQ", {**SMITH, "SEX": "U"}), TEST_OLN)
    assert_hit(data.answer("DQ", {"NAM": "SMITH,JOHN", "DOB": "19500101"}), TEST_OLN)


@pytest.mark.parametrize("key", ["DQ", "KQ", "RQ", "IQ", "FQ", "AQ"])
def test_every_schema_sample_gets_an_answer(key: str) -> None:
    """The samples in schemas/ are what integrators copy: each one is answered."""
    spec = schema.load_schemas().get(key)
    assert spec is not None and spec.samples
    for sample in spec.samples:
        fields = dict(spec.validate(sample.split("TXT", 1)[1].lstrip("\r\n")))
        text = StateData.for_state("TX").answer(key, fields)
        assert_wire_safe(text)
        if "SMITH,JOHN" in sample or "SOC/123456789" in sample:
            assert_hit(text, "SMITH,JOHN")


def test_image_requests_are_answered_not_ignored() -> None:
    data = StateData.for_state("AZ")
    text = data.answer("AQ", {"SID": fixed_sid("AZ"), "IMQ": "Y"})
    assert text.splitlines()[-1] == "IMAGE: NOT AVAILABLE FROM A SIMULATED STATE"
    assert "IMAGE" not in data.answer("DQ", {**SMITH, "IMQ": "N"})


def test_two_digit_plate_year_and_lowercase_plate() -> None:
    data = StateData.for_state("AZ")
    assert_hit(data.answer("RQ", {"LIC": "123456", "LIY": "27", "LIT": "pc"}), TEST_VIN)


def test_nebraska_mails_to_ne_but_reports_ncic_nb() -> None:
    dr = StateData.for_state("NB").answer("DQ", SMITH)
    assert "LINCOLN, NE 68508" in dr
    assert "STATE: NB" in dr


def test_free_text_aq_finds_identifiers_and_names() -> None:
    data = StateData.for_state("OH")
    for text in (f"PLS SEND PHOTO AND SMT FOR FBI/{TEST_FBI} THANKS",
                 "REQUEST SUPPLEMENTAL INFO ON SMITH, JOHN DOB 01011950",
                 f"SID {fixed_sid('OH')}"):
        assert_hit(data.answer("AQ", {"TXT": text}), "SMITH,JOHN", fixed_sid("OH"))
    assert_miss(data.answer("AQ", {"TXT": "NOTHING TO SEE HERE"}), "OH")


# --------------------------------------------------------------------------
# No record
# --------------------------------------------------------------------------


@pytest.mark.parametrize(("key", "fields"), [
    ("DQ", {"OLN": "D11111112"}),
    ("DQ", {**SMITH, "DOB": "19500102"}),
    ("DQ", {**SMITH, "SEX": "F"}),
    ("DQ", {**SMITH, "DOB": "19501301"}),  # not a date
    ("DQ", {"NAM": "SMITH,JOHN"}),  # a name search needs the DOB
    ("KQ", {"NAM": "NOBODY,NEVER", "DOB": "19800101", "SEX": "M"}),
    ("RQ", {**PLATE, "LIY": "2026"}),
    ("RQ", {**PLATE, "LIT": "TK"}),
    ("RQ", {"LIC": "123456", "LIT": "PC"}),  # Nlets' own incomplete example
    ("RQ", {"VIN": "1FTEW1EP5KFA00002"}),
    ("IQ", {"SOC": "000000000"}),
    ("IQ", {"MNU": "AR-000000000"}),
    ("FQ", {"SID": "TX99999999"}),
    ("FQ", {"FBI": "999999ZZ9"}),
    ("FQ", {"SID": fixed_sid("AZ")}),  # another state's SID is not on file here
    ("AQ", {"SID": "TX00000000"}),
    ("DQ", {}),
])
def test_misses_answer_no_record(key: str, fields: dict[str, str]) -> None:
    assert_miss(StateData.for_state("TX").answer(key, fields))


# --------------------------------------------------------------------------
# Determinism
# --------------------------------------------------------------------------


def digest(data: StateData) -> str:
    """A hash of every answer a state can give for its own records."""
    h = hashlib.sha256()
    for text in answers_for_own_records(data):
        h.update(text.encode())
    return h.hexdigest()


def answers_for_own_records(data: StateData) -> Iterator[str]:
    for d in data.drivers:
        yield data.answer("KQ", {"OLN": d.oln})
    for v in data.vehicles:
        yield data.answer("RQ", {"VIN": v.vin})
    for h in data.histories:
        yield data.answer("FQ", {"SID": h.sid})
        yield data.answer("AQ", {"SID": h.sid})


def test_same_seed_same_data_and_answers() -> None:
    cached = StateData.for_state("TX")
    assert StateData.for_state("tx") is cached
    fresh = StateData("TX", 1)
    assert fresh is not cached
    assert fresh.drivers == cached.drivers
    assert fresh.vehicles == cached.vehicles
    assert fresh.histories == cached.histories
    assert digest(fresh) == digest(cached)


def test_other_seed_other_data_same_test_records() -> None:
    one, two = StateData.for_state("CA", 1), StateData.for_state("CA", 2)
    assert one.drivers[1:] != two.drivers[1:]
    assert one.vehicles[1:] != two.vehicles[1:]
    assert one.histories[1:] != two.histories[1:]
    for key, fields in (("KQ", SMITH), ("RQ", PLATE), ("FQ", {"SID": fixed_sid("CA")}),
                        ("AQ", {"FBI": TEST_FBI})):
        assert one.answer(key, fields) == two.answer(key, fields)


def test_states_differ_from_each_other() -> None:
    tx, ca = StateData.for_state("TX"), StateData.for_state("CA")
    assert [d.person.name for d in tx.drivers[1:20]] != [d.person.name for d in ca.drivers[1:20]]


def test_same_data_in_another_process_with_another_hash_seed() -> None:
    # Set iteration order changes with the hash seed; the data must not.
    code = ("import hashlib\n"
            "from nlets_switch.services.statedata import StateData\n"
            "d = StateData('WY', 7)\n"
            "h = hashlib.sha256()\n"
            "for r in d.drivers: h.update(d.answer('KQ', {'OLN': r.oln}).encode())\n"
            "for r in d.vehicles: h.update(d.answer('RQ', {'VIN': r.vin}).encode())\n"
            "for r in d.histories: h.update(d.answer('FQ', {'SID': r.sid}).encode())\n"
            "print(h.hexdigest())\n")
    results = set()
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        results.add(out.stdout.strip())
    here = StateData("WY", 7)
    h = hashlib.sha256()
    for d in here.drivers:
        h.update(here.answer("KQ", {"OLN": d.oln}).encode())
    for v in here.vehicles:
        h.update(here.answer("RQ", {"VIN": v.vin}).encode())
    for r in here.histories:
        h.update(here.answer("FQ", {"SID": r.sid}).encode())
    assert results == {h.hexdigest()}


# --------------------------------------------------------------------------
# Generated records
# --------------------------------------------------------------------------


@pytest.mark.parametrize("state", ["AZ", "NB", "DC", "WA", "NJ"])
def test_generated_records_are_found_by_their_own_keys(state: str) -> None:
    data = StateData.for_state(state)
    assert len(data.drivers) == 201 and len(data.vehicles) == 201
    assert len(data.histories) == 101
    for d in data.drivers:
        p = d.person
        by_oln = data.answer("DQ", {"OLN": d.oln})
        assert_hit(by_oln, f"NAME: {p.name}", f"OLN: {d.oln}")
        by_name = data.answer("DQ", {"NAM": p.name, "DOB": p.dob_ccyymmdd, "SEX": p.sex})
        assert by_name == by_oln  # exactly one record answers
        short = p.dob.strftime("%m%d%y")
        assert data.answer("KQ", {"NAM": f"{p.last}, {p.first}", "DOB": short,
                                  "SEX": p.sex}) == data.answer("KQ", {"OLN": d.oln})
    for v in data.vehicles:
        by_plate = data.answer("RQ", {"LIC": v.lic, "LIY": v.liy, "LIT": v.lit})
        assert_hit(by_plate, f"PLATE: {v.lic}", f"VIN: {v.vin}", f"OWNER: {v.owner.name}")
        assert data.answer("RQ", {"VIN": v.vin}) == by_plate
    for h in data.histories:
        p = h.person
        full = data.answer("FQ", {"SID": h.sid})
        assert_hit(full, f"NAME: {p.name}", f"SID: {h.sid}", f"FBI: {h.fbi}", "END OF RECORD")
        assert data.answer("FQ", {"FBI": h.fbi}) == full
        ir = data.answer("IQ", {"NAM": p.name, "DOB": p.dob_ccyymmdd, "SEX": p.sex})
        assert_hit(ir, f"SID: {h.sid}")
        assert data.answer("IQ", {"SOC": p.soc}) == ir
        if h.mnu:
            assert data.answer("IQ", {"MNU": h.mnu}) == ir
        assert_hit(data.answer("AQ", {"FBI": h.fbi}), f"SID: {h.sid}", "FINGERPRINT CLASS")


def test_records_look_like_the_real_thing() -> None:
    data = StateData.for_state("MO")
    for v in data.vehicles[1:]:
        assert len(v.vin) == 17 and not set(v.vin) & set("IOQ")
        assert v.vin[8] == vin_check_digit(v.vin), v.vin
        assert len(v.lic) <= 10 and v.lic.isalnum()
        assert v.liy == str(v.expires.year)
        assert v.owner in [d.person for d in data.drivers]  # owners hold a licence here
    for d in data.drivers:
        assert len(d.person.name) <= 30
        assert d.issued <= d.expires
        assert (d.status == "VALID") == all(s.ends for s in d.suspensions)
    for h in data.histories:
        assert len(h.sid) <= 10 and h.sid.startswith("MO")
        assert len(h.fbi) <= 9 and len(h.fpc) == 20 and len(h.person.soc) == 9
        assert h.cycles and all(c.arrest_date > h.person.dob for c in h.cycles)


def test_every_answer_line_is_printable_ascii_within_80_columns() -> None:
    for state in STATES:
        data = StateData.for_state(state)
        for text in answers_for_own_records(data):
            assert_wire_safe(text)
        for d in data.drivers[:20]:
            assert_wire_safe(data.answer("DQ", {"OLN": d.oln}))
        for h in data.histories[:20]:
            assert_wire_safe(data.answer("IQ", {"SOC": h.person.soc}))


def test_today_marks_expired_licences_and_registrations() -> None:
    data = StateData.for_state("AZ")
    assert "STATUS: VALID" in data.answer("DQ", SMITH, today=dt.date(2031, 12, 31))
    assert "STATUS: EXPIRED" in data.answer("DQ", SMITH, today=dt.date(2032, 1, 2))
    assert "STATUS: VALID" in data.answer("RQ", PLATE, today=dt.date(2027, 6, 30))
    assert "STATUS: EXPIRED" in data.answer("RQ", PLATE, today=dt.date(2027, 7, 1))
    # Without a date nothing is judged expired: the data never reads a clock.
    assert "STATUS: VALID" in data.answer("RQ", PLATE)


# --------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------

TAGS = ["NAM", "DOB", "SEX", "RAC", "OLN", "LIC", "LIY", "LIT", "VIN", "SOC", "MNU", "SID",
        "FBI", "PUR", "ATN", "RSN", "REM", "TXT"]
values = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["SMITH,JOHN", "19500101", "010150", "M", "123456", "2027", "PC", "NX",
                     TEST_OLN, TEST_VIN, TEST_FBI, "AZ12345678", "PP-123456789", "99"]),
)


@settings(max_examples=300, deadline=None)
@given(key=st.sampled_from(sorted(INQUIRY_KEYS)), state=st.sampled_from(["AZ", "NB", "WY"]),
       fields=st.dictionaries(st.sampled_from(TAGS), values, max_size=6))
def test_answer_never_raises(key: str, state: str, fields: dict[str, str]) -> None:
    text = StateData.for_state(state).answer(key, fields)
    assert_wire_safe(text)
    assert text.startswith(f"{state} ")


# -- SOQ/SOR and DNQ/DNR (issue 13) ----------------------------------------------


@pytest.mark.parametrize("fields", [
    {"NAM": "SMITH,JOHN", "DOB": "19500101"},
    {"NAM": "SMITH,JOHN", "DOB": "010150", "SEX": "M"},
    {"SOC": "123456789"},
    {"FBI": "123456AA1"},
    {"SID": "TX12345678"},
])
def test_soq_finds_the_test_registrant(fields: dict[str, str]) -> None:
    text = StateData.for_state("TX").answer("SOQ", fields)
    lines = text.splitlines()
    assert lines[0] == "TX SEX OFFENDER REGISTRY" and "NO RECORD" not in lines
    assert "NAME: SMITH,JOHN" in lines
    assert "REGISTERING AGENCY: TXSOR0000 TX SEX OFFENDER REGISTRY" in lines


def test_soq_misses_people_who_are_not_registered() -> None:
    data = StateData.for_state("TX")
    registered = {id(h) for h in data.registrants}
    not_registered = next(h for h in data.histories if id(h) not in registered)
    p = not_registered.person
    text = data.answer("SOQ", {"NAM": f"{p.last},{p.first}", "DOB": p.dob_ccyymmdd})
    assert text.splitlines() == ["TX SEX OFFENDER REGISTRY", "NO RECORD"]
    # Their rap sheet is still there: only the registry misses them.
    assert "NO RECORD" not in data.answer("IQ", {"SOC": p.soc}).splitlines()
    # A SID of another state is not on this state's registry.
    assert "NO RECORD" in data.answer("SOQ", {"SID": "AZ12345678"}).splitlines()


def test_registry_is_the_same_for_the_same_seed_and_has_generated_registrants() -> None:
    a, b = StateData("NB", 7), StateData("NB", 7)
    assert [h.sid for h in a.registrants] == [h.sid for h in b.registrants]
    assert len(a.registrants) > 5 and a.registrants[0].fbi == TEST_FBI
    h = a.registrants[3]
    text = a.answer("SOQ", {"NAM": f"{h.person.last},{h.person.first}",
                            "DOB": h.person.dob_ccyymmdd})
    assert f"SID: {h.sid}" in text


def test_dnq_lists_drivers_by_name_without_a_dob() -> None:
    data = StateData.for_state("AZ")
    text = data.answer("DNQ", {"NAM": "SMITH,JOHN"})
    assert text.splitlines()[:3] == [
        "AZ DMV RESPONSE - DRIVER LICENSE NAME SEARCH",
        "*** SIMULATED STATE - SYNTHETIC TEST DATA ***",
        "NAM/SMITH,JOHN.DOB/19500101.SEX/M.OLN/D11111111   100 MAIN ST, PHOENIX, AZ 85003",
    ]
    assert data.answer("DNQ", {"NAM": "SMITH,JOHN", "DOB": "19600101"}).endswith("NO RECORD")
    assert response_key("DNQ") == "DNR" and response_key("SOQ") == "SOR"
