"""The DHS LEIS data set behind AX: build, search, answer texts, load, CLI."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from nlets_switch.cli import main
from nlets_switch.errors import ErCode, MessageError
from nlets_switch.services import leis
from nlets_switch.services.leis import (
    LeisData,
    LeisLoadError,
    format_iar,
    format_record,
    format_summary,
)

MARIA = "D000000001"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LeisData]:
    """The full-size data set, built once for the module."""
    path = tmp_path_factory.mktemp("leis") / "leis.sqlite"
    with LeisData.open(path, seed=1, persons=10000) as s:
        yield s


def small(path: Path, seed: int = 1, persons: int = 300) -> LeisData:
    return LeisData.open(path / "leis.sqlite", seed=seed, persons=persons)


def dump(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in a stable order."""
    db = sqlite3.connect(path)
    try:
        tables = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {t: db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    finally:
        db.close()


def lines_ok(text: str) -> None:
    for line in text.split("\n"):
        assert len(line) <= 80, line
        assert all(" " <= c <= "~" for c in line), line


# -- the data set -------------------------------------------------------------


def test_full_size_data_set_has_at_least_10000_persons(store: LeisData) -> None:
    assert store.count() >= 10000


def test_same_seed_gives_identical_rows_and_another_seed_does_not(tmp_path: Path) -> None:
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        (tmp_path / name).mkdir()
        small(tmp_path / name, seed=seed).close()
    a, b, c = (dump(tmp_path / n / "leis.sqlite") for n in "abc")
    assert a == b
    assert a["person"] != c["person"]


def test_small_build_is_a_prefix_of_the_full_one(store: LeisData, tmp_path: Path) -> None:
    # The generator is sequential: persons=300 makes the first 300 of 10000.
    with small(tmp_path, seed=1, persons=300) as s:
        for din in ("D100000001", "D100000150", "D100000300"):
            assert s.get(din) == store.get(din)
        assert s.get("D100000301") is None


def test_build_reports_progress_and_is_reused(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    LeisData.open(tmp_path / "l.sqlite", persons=2500,
                   progress=lambda d, t: calls.append((d, t))).close()
    assert calls[0] == (0, 2500)
    assert calls[-1] == (2500, 2500)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    again: list[tuple[int, int]] = []
    with LeisData.open(tmp_path / "l.sqlite", persons=2500,
                        progress=lambda d, t: again.append((d, t))) as s:
        assert s.count() == 2500 + len(leis.FIXED_DINS)
    assert again == []


def test_fixed_records_exist_whatever_the_seed(tmp_path: Path) -> None:
    with small(tmp_path, seed=12345, persons=50) as s:
        for person in leis.fixed_persons():
            assert s.get(person.din) == person


# -- GPQ by name --------------------------------------------------------------


def test_exact_name_finds_maria_first(store: LeisData) -> None:
    result = store.search({"NAM": "GARCIA,MARIA"})
    assert result.hits[0].din == MARIA
    assert result.hits[0].how == "NAME"


def test_spelling_variant_finds_maria_first(store: LeisData) -> None:
    result = store.search({"NAM": "GARSIA,MARIA"})
    assert result.hits[0].din == MARIA
    assert result.hits[0].how == "PHONETIC"
    text = format_summary(result)
    assert text.split("\n")[0] == f"DIN/{MARIA}.NAM/GARCIA,MARIA.DOB/19850312.SEX/F"


def test_alias_finds_maria_and_the_summary_names_the_alias(store: LeisData) -> None:
    result = store.search({"NAM": "LOPEZ, MARIA"})
    hit = next(h for h in result.hits if h.din == MARIA)
    assert hit.matched == "LOPEZ,MARIA"
    assert hit.how == "ALIAS"
    # Exact primary names come before exact aliases.
    assert all(h.how == "NAME" for h in result.hits[:result.hits.index(hit)])
    assert f"DIN/{MARIA}.NAM/GARCIA,MARIA.DOB/19850312.SEX/F.AKA/LOPEZ,MARIA" in \
        format_summary(result).split("\n")


@pytest.mark.parametrize("dob", ["19850312", "031285"])
def test_dob_narrows_the_name_search(store: LeisData, dob: str) -> None:
    assert store.search({"NAM": "GARSIA,MARIA"}).total > 1
    result = store.search({"NAM": "GARSIA,MARIA", "DOB": dob})
    assert [h.din for h in result.hits] == [MARIA]
    other_day = store.search({"NAM": "GARCIA,MARIA", "DOB": "19850313"})
    assert MARIA not in [h.din for h in other_day.hits]


def test_phonetic_candidates_are_ranked_by_similarity(store: LeisData) -> None:
    hits = store.search({"NAM": "GARSIA,MARIA"}, limit=100).hits
    phonetic = [h for h in hits if h.how == "PHONETIC"]
    assert len(phonetic) > 3
    assert [h.score for h in phonetic] == sorted((h.score for h in phonetic), reverse=True)
    # Matches through an alias come after matches through the primary name.
    kinds = [h.how for h in hits]
    if "PHONETIC ALIAS" in kinds:
        assert "PHONETIC" not in kinds[kinds.index("PHONETIC ALIAS"):]


def test_last_name_only_reaches_the_limit_and_says_so(store: LeisData) -> None:
    result = store.search({"NAM": "GARCIA"}, limit=20)
    assert len(result.hits) == 20
    assert result.limit_reached and result.total > 20
    lines = format_summary(result, 20).split("\n")
    assert len(lines) == 21
    assert all(line.startswith("DIN/") for line in lines[:20])
    assert lines[-1] == f"LIMIT OF 20 REACHED, {result.total} FOUND, REFINE SEARCH"


def test_no_limit_line_below_the_limit(store: LeisData) -> None:
    result = store.search({"NAM": "GARCIA,MARIA", "DOB": "19850312"}, limit=20)
    assert not result.limit_reached
    assert "LIMIT" not in format_summary(result, 20)


def test_nothing_found_is_exactly_no_record(store: LeisData) -> None:
    for fields in ({"NAM": "QWXYZ,ZZZ"}, {"SOC": "000000000"}, {"ADR": "1 NOWHERE LN"},
                   {"DIN": "D999999999"}):
        result = store.search(fields)
        assert not result
        assert format_summary(result) == "NO RECORD"
    assert store.gpq_text({"DIN": "D999999999"}) == "NO RECORD"


# -- GPQ by identifier and address ------------------------------------------------


@pytest.mark.parametrize(("fields", "din"), [
    ({"SOC": "900-12-3456"}, "D000000002"),
    ({"ARN": "012345678"}, "D000000002"),
    ({"ARN": "A12345678"}, "D000000002"),   # 8 digits, A prefix
    ({"ARN": "204518736"}, MARIA),
    ({"PPN": "x7654321"}, "D000000003"),
    ({"PPN": "G04581234"}, MARIA),
])
def test_identifier_search(store: LeisData, fields: dict[str, str], din: str) -> None:
    assert [h.din for h in store.search(fields).hits] == [din]


@pytest.mark.parametrize("adr", [
    "500 S CONGRESS AVE", "500 South Congress Avenue", "500 S. CONGRESS AVE, AUSTIN, TX",
    "CONGRESS AVE AUSTIN",
])
def test_address_search_finds_both_residents(store: LeisData, adr: str) -> None:
    assert sorted(h.din for h in store.search({"ADR": adr}).hits) == ["D000000004", "D000000005"]


def test_address_search_finds_former_addresses_too(store: LeisData) -> None:
    assert [h.din for h in store.search({"ADR": "1420 WEST MCDOWELL ROAD"}).hits] == [MARIA]
    assert store.search({"ADR": "1420 W MCDOWELL"}).hits[0].din == MARIA
    # Whole words only: 142 is not 1420.
    assert MARIA not in [h.din for h in store.search({"ADR": "142 W MCDOWELL RD"}).hits]


def test_generated_persons_are_found_by_their_own_data(store: LeisData) -> None:
    person = store.get("D100004321")
    assert person is not None
    assert person.din in [h.din for h in store.search(
        {"NAM": person.name, "DOB": person.dobs[0]}).hits]
    loc = person.locations[0]
    assert person.din in [h.din for h in store.search(
        {"ADR": f"{loc.address} {loc.city}"}, limit=100).hits]
    for ident in person.identifiers:
        if ident.kind != "FBI":
            assert person.din in [h.din for h in store.search({ident.kind: ident.value}).hits]


@pytest.mark.parametrize(("fields", "code"), [
    ({}, ErCode.FIELDS_MISSING),
    ({"SEX": "F"}, ErCode.FIELDS_MISSING),
    ({"NAM": "GARCIA,MARIA", "DOB": "19851312"}, ErCode.DOB),
    ({"NAM": "GARCIA,MARIA", "DOB": "3121985"}, ErCode.DOB),
    ({"SOC": "12345"}, ErCode.FORMAT),
    ({"ARN": "1234567"}, ErCode.FORMAT),
])
def test_bad_queries_carry_their_er_code(store: LeisData, fields: dict[str, str],
                                         code: ErCode) -> None:
    with pytest.raises(MessageError) as info:
        store.search(fields)
    assert info.value.code == code


# -- GPQ with DIN: the full record ------------------------------------------------


def test_full_record_has_every_section(store: LeisData) -> None:
    text = store.gpq_text({"DIN": MARIA})
    person = store.get(MARIA)
    assert person is not None
    assert text == format_record(person)
    lines = text.split("\n")
    assert lines[0] == f"DIN/{MARIA}"
    for section in ("NAMES AND ALIASES", "DATES OF BIRTH", "KNOWN LOCATIONS", "IDENTIFIERS",
                    "PRIOR DHS CONTACTS"):
        assert section in lines
    assert "  NAM/GARCIA,MARIA" in lines
    assert "  AKA/LOPEZ,MARIA" in lines
    assert "  DOB/19850312" in lines
    assert "  1420 W MCDOWELL RD, PHOENIX, AZ  20080115-20160630" in lines
    assert "  3318 E BROADWAY BLVD, TUCSON, AZ  20160701-PRESENT" in lines
    assert "  ARN/204518736" in lines
    assert "  20040822 CBP   ADMISSION    NOGALES, AZ PORT OF ENTRY" in lines
    assert "  20190214 ICE   ENCOUNTER    TUCSON, AZ" in lines
    lines_ok(text)


def test_maria_is_the_documented_test_record(store: LeisData) -> None:
    person = store.get(MARIA)
    assert person is not None
    assert person.name == "GARCIA,MARIA" and "19850312" in person.dobs
    assert "LOPEZ,MARIA" in person.aliases
    assert len(person.locations) >= 2 and len(person.contacts) >= 2


def test_every_answer_fits_80_printable_columns(store: LeisData) -> None:
    for n in range(1, 10001, 97):
        person = store.get(f"D{100000000 + n:09d}")
        assert person is not None
        lines_ok(format_record(person))
        lines_ok(format_iar({"NAM": person.name, "DOB": person.dobs[0]}, person))
    lines_ok(format_summary(store.search({"NAM": "HERNANDEZ"}, limit=200), 200))
    long = leis.Person(din="T1", name="X" * 14 + "," + "Y" * 15, dobs=("20000101",),
                       aliases=("Z" * 14 + "," + "W" * 15,),
                       locations=(leis.Location("9" * 70, "C" * 30, "AZ"),),
                       remarks="R " * 100)
    lines_ok(format_record(long))
    hit = leis.Hit(din="T1", name=long.name, dob="20000101", sex="U", matched=long.aliases[0])
    lines_ok(format_summary(leis.SearchResult((hit,), 1, False)))


# -- IAQ / IAR --------------------------------------------------------------------


def test_iar_by_name_and_mmddyy_dob(store: LeisData) -> None:
    fields = {"PUR": "C", "ATN": "DET SMITH", "PHN": "6025551212", "NAM": "GARCIA,MARIA",
              "DOB": "031285", "SEX": "F", "POB": "MM", "CUS": "Y", "OFF": "0399"}
    text = store.iar_text(fields, today=dt.date(2026, 5, 1))
    lines = text.split("\n")
    assert "NO RECORD" not in lines
    assert f"RECORD FOUND DIN/{MARIA}" in lines
    assert "ARN/204518736" in lines
    assert "STATUS/LAWFUL PERMANENT RESIDENT" in lines
    assert "ATN/DET SMITH.PHN/6025551212" in lines
    lines_ok(text)


def test_iar_names_the_current_location_and_latest_contact(store: LeisData) -> None:
    lines = store.iar_text({"ARN": "098765432"}).split("\n")
    assert "LAST KNOWN LOCATION/500 S CONGRESS AVE, AUSTIN, TX" in lines
    assert "LAST DHS CONTACT/20130402 USCIS APPLICATION EL PASO FIELD OFFICE, TX" in lines


def test_iar_by_arn_wins_over_name(store: LeisData) -> None:
    person = store.find_for_iaq({"NAM": "DOE,JOHN", "DOB": "19700101", "ARN": "12345678"})
    assert person is not None and person.din == "D000000002"


def test_iar_no_record(store: LeisData) -> None:
    for fields in ({"NAM": "QWXYZ,ZZZ", "DOB": "19700101", "SEX": "M"},
                   {"NAM": "GARCIA,MARIA", "DOB": "19850312", "SEX": "M"}):
        person = store.find_for_iaq(fields)
        assert person is None
        assert "NO RECORD" in format_iar(fields, person).split("\n")


def test_two_digit_years() -> None:
    today = dt.date(2026, 5, 1)
    assert leis.normalize_dob("031285", today) == "19850312"
    assert leis.normalize_dob("010120", today) == "20200101"
    assert leis.normalize_dob("043026", today) == "20260430"
    assert leis.normalize_dob("050226", today) == "19260502"  # tomorrow is not a birthday
    assert leis.normalize_dob("010129") == "20290101"
    assert leis.normalize_dob("010130") == "19300101"
    assert leis.normalize_dob("19850312") == "19850312"


# -- loading an agency's own data -------------------------------------------------

GOOD = {
    "din": "T000000001", "name": "Muñoz,Pedro Jr", "aliases": ["MUNOS,PEDRO"],
    "dobs": ["19790101"], "sex": "M", "pob": "MM",
    "identifiers": {"ARN": "A087-654-321", "SOC": "900-33-1234", "PPN": ["N1234567"]},
    "locations": [{"address": "1 Test St", "city": "Mesa", "state": "AZ",
                   "since": "20200101"}],
    "contacts": [{"date": "20210505", "component": "ICE", "kind": "ENCOUNTER",
                  "place": "MESA, AZ"}],
    "status": "LAWFUL PERMANENT RESIDENT", "remarks": "AGENCY TEST RECORD",
}


def write(path: Path, rows: list[object | str]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n",
                    encoding="utf-8")
    return path


def test_load_good_file(tmp_path: Path) -> None:
    second = {"din": "T000000002", "name": "DOE,JANE", "dobs": ["19900101", "19900110"]}
    file = write(tmp_path / "agency.jsonl", ["# agency test data", GOOD, "", second])
    with small(tmp_path) as s:
        before = s.count()
        assert s.load_file(file) == 2
        assert s.count() == before + 2
        person = s.get("T000000001")
        assert person is not None
        assert person.name == "MUNOZ,PEDRO"
        assert person.ids("ARN") == ("087654321",)
        assert person.ids("SOC") == ("900331234",)
        assert [h.din for h in s.search({"NAM": "MUNOS,PEDRO", "DOB": "19790101"}).hits] \
            == ["T000000001"]
        assert [h.din for h in s.search({"ADR": "1 TEST STREET"}).hits] == ["T000000001"]
        jane = s.get("T000000002")
        assert jane is not None
        assert (jane.sex, jane.pob, jane.aliases, jane.locations) == ("U", "XX", (), ())
        assert "  NONE" in format_record(jane).split("\n")
        # Loading again replaces, it does not duplicate.
        assert s.load_file(file) == 2
        assert s.count() == before + 2


def test_bad_rows_are_all_reported_and_nothing_is_loaded(tmp_path: Path) -> None:
    rows: list[object | str] = [
        GOOD,                                                   # line 1: fine
        dict(GOOD, din="T2", dobs=["19791301"]),                # line 2: bad date
        "{not json",                                            # line 3
        dict(GOOD, din="T4", name="NOCOMMA"),                   # line 4
        dict(GOOD, din="T000000001"),                           # line 5: duplicate
        dict(GOOD, din=MARIA),                                  # line 6: reserved
        dict(GOOD, din="T7", identifiers={"SOC": "123", "XYZ": "1"}),  # line 7
        dict(GOOD, din="T8", contacts=[{"date": "20200101", "component": "FBI",
                                        "kind": "ARREST", "place": "X"}]),  # line 8
        dict(GOOD, din="T9", colour="RED"),                     # line 9
        [1, 2],                                                 # line 10
    ]
    file = write(tmp_path / "bad.jsonl", rows)
    with small(tmp_path) as s:
        before = s.count()
        with pytest.raises(LeisLoadError) as info:
            s.load_file(file)
        assert isinstance(info.value, ValueError)
        problems = info.value.problems
        assert [p.split(":")[0] for p in problems] == [
            "line 2", "line 3", "line 4", "line 5", "line 6", "line 7", "line 7",
            "line 8", "line 9", "line 10"]
        assert problems[0] == "line 2: dobs[0]: not a real date"
        assert problems[2].startswith("line 4: name: must be LAST,FIRST")
        assert problems[3] == "line 5: din: T000000001 already on line 1"
        assert problems[4] == "line 6: din: reserved for a built-in test record"
        assert "line 7: identifiers.XYZ: unknown field" in problems
        assert "line 7: identifiers.SOC[0]: must be 9 digits" in problems
        assert problems[7].startswith("line 8: contacts[0].component: must be one of ICE")
        assert problems[8] == "line 9: colour: unknown field"
        assert info.value.lines == (2, 3, 4, 5, 6, 7, 8, 9, 10)
        # Nothing half-loaded: not even the good first row.
        assert s.count() == before
        assert s.get("T000000001") is None


def test_loaded_persons_survive_a_rebuild_for_another_seed(tmp_path: Path) -> None:
    file = write(tmp_path / "agency.jsonl", [dict(GOOD, din="D100000005")])
    with small(tmp_path, seed=1, persons=100) as s:
        s.load_file(file)
    with small(tmp_path, seed=2, persons=100) as s:
        person = s.get("D100000005")
        assert person is not None and person.name == "MUNOZ,PEDRO"
        assert s.count() == 100 + len(leis.FIXED_DINS)
        assert s.get(MARIA) is not None


# -- the command line ---------------------------------------------------------------


def test_cli_load_and_search(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path / "agency.jsonl", [GOOD])
    data = ["--data-dir", str(tmp_path / "data"), "--persons", "200"]
    assert main(["leis", "load", str(file), *data]) == 0
    out = capsys.readouterr().out
    assert out.startswith("loaded 1 person(s)")
    assert (tmp_path / "data" / "leis.sqlite").exists()

    assert main(["leis", "search", "NAM/GARSIA,MARIA.DOB/19850312", *data]) == 0
    assert capsys.readouterr().out == f"DIN/{MARIA}.NAM/GARCIA,MARIA.DOB/19850312.SEX/F\n"
    assert main(["leis", "search", "GPQ.AZNLETS20.AX.TXT\nARN/087654321", *data]) == 0
    assert capsys.readouterr().out.startswith("DIN/T000000001.NAM/MUNOZ,PEDRO.")
    assert main(["leis", "search", f"DIN/{MARIA}", *data]) == 0
    assert "PRIOR DHS CONTACTS" in capsys.readouterr().out
    assert main(["leis", "search", "SOC/12", *data]) == 1
    assert ".22." in capsys.readouterr().err


def test_cli_bad_file_exits_1_and_loads_nothing(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    file = write(tmp_path / "bad.jsonl", [GOOD, dict(GOOD, din="T2", sex="X"), "[]"])
    data = ["--data-dir", str(tmp_path / "data"), "--persons", "200"]
    assert main(["leis", "load", str(file), *data]) == 1
    err = capsys.readouterr().err
    assert "2 bad row(s), nothing loaded" in err
    assert "line 2: sex: must be M, F or U" in err
    assert "line 3: row: must be a JSON object" in err
    assert main(["leis", "search", "DIN/T000000001", *data]) == 0
    assert capsys.readouterr().out == "NO RECORD\n"
    assert main(["leis", "load", str(tmp_path / "missing.jsonl"), *data]) == 1
