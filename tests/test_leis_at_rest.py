"""DHS LEIS person data at rest (issue 11, CJIS 5.10.1.2), against a real ``serve`` and real files.

``leis.sqlite`` held every name, alias, date of birth, identifier and
address in clear. Now each person is one AES-256-GCM record and searches go
through a keyed blind index: no file of the data directory (WAL included)
holds any of the data set's names, DOBs or identifiers, while GPQ, IAQ and
DIN answers are those documented in docs/leis.md, word for word; rotation
keeps search working; a wrong or missing keyring is one line, never a
traceback; a clear-text file of the old layout is migrated and left with
nothing of it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from nlets_switch.services import leis
from nlets_switch.services.leis import LeisData, LeisKeyError
from nlets_switch.store.keys import load_keyring, rotate_keyring
from nlets_switch.tools.client import Client
from nlets_switch.wire.message import parse_output
from tests.conftest_serve_process import serve_process

MARIA_RECORD = """DIN/D000000001
NAMES AND ALIASES
  NAM/GARCIA,MARIA
  AKA/LOPEZ,MARIA
DATES OF BIRTH
  DOB/19850312
SEX/F.POB/MM
KNOWN LOCATIONS
  1420 W MCDOWELL RD, PHOENIX, AZ  20080115-20160630
  3318 E BROADWAY BLVD, TUCSON, AZ  20160701-PRESENT
IDENTIFIERS
  ARN/204518736
  PPN/G04581234
PRIOR DHS CONTACTS
  20040822 CBP   ADMISSION    NOGALES, AZ PORT OF ENTRY
  20150310 USCIS APPLICATION  PHOENIX FIELD OFFICE, AZ
  20190214 ICE   ENCOUNTER    TUCSON, AZ
IMMIGRATION STATUS/LAWFUL PERMANENT RESIDENT
REMARKS/FIXED TEST RECORD. CONDITIONS REMOVED 2017."""

# Generated persons of seed 1 (docs/leis.md, with a limit of 5).
LOPEZ_MARIA = """DIN/D100000341.NAM/LOPEZ,MARIA SARAH.DOB/19870611.SEX/F
DIN/D100002230.NAM/LOPEZ,MARIA.DOB/20000615.SEX/F
DIN/D100003837.NAM/LOPEZ,MARIA.DOB/19780603.SEX/F
DIN/D100007831.NAM/LOPEZ,MARIA.DOB/19851202.SEX/F
DIN/D000000001.NAM/GARCIA,MARIA.DOB/19850312.SEX/F.AKA/LOPEZ,MARIA
LIMIT OF 5 REACHED, 12 FOUND, REFINE SEARCH"""

IAQ = ("IAQ.AZNLETS20.AX.*IA1.TXT\nPUR/C.ATN/DET SMITH.PHN/6025551212.NAM/GARCIA,MARIA."
       "DOB/031285.SEX/F.POB/MM.\nCUS/Y.OFF/0399")
IAR = """DHS LEIS IMMIGRATION ALIEN RESPONSE
ATN/DET SMITH.PHN/6025551212
SUBJECT NAM/GARCIA,MARIA.DOB/031285.SEX/F.POB/MM
RECORD FOUND DIN/D000000001
NAM/GARCIA,MARIA
AKA/LOPEZ,MARIA
DOB/19850312
SEX/F.POB/MM
ARN/204518736
STATUS/LAWFUL PERMANENT RESIDENT
LAST DHS CONTACT/20190214 ICE ENCOUNTER TUCSON, AZ
LAST KNOWN LOCATION/3318 E BROADWAY BLVD, TUCSON, AZ
REMARKS/FIXED TEST RECORD. CONDITIONS REMOVED 2017."""

#: (query, answer) of docs/leis.md: the fixed records and generated ones.
ANSWERS = [
    ("NAM/GARSIA,MARIA.DOB/19850312", "DIN/D000000001.NAM/GARCIA,MARIA.DOB/19850312.SEX/F"),
    ("NAM/LOPEZ,MARIA", LOPEZ_MARIA),
    ("ADR/500 SOUTH CONGRESS AVENUE",
     "DIN/D000000004.NAM/HERNANDEZ,JOSE LUIS.DOB/19900115.SEX/M\n"
     "DIN/D000000005.NAM/HERNANDEZ,ANA.DOB/19920920.SEX/F"),
    ("ARN/12345678", "DIN/D000000002.NAM/NGUYEN,VAN THANH.DOB/19720704.SEX/M"),
    ("SOC/900450987", "DIN/D000000005.NAM/HERNANDEZ,ANA.DOB/19920920.SEX/F"),
    ("NAM/ZZYZX,ROSA", "NO RECORD"),
    ("DIN/D000000001", MARIA_RECORD),
]

#: Runs of what a name, date, identifier or address is made of; in sealed
#: data (random bytes) runs of six are rare, and short.
_CLEAR_RUN = re.compile(rb"[A-Z0-9 ,'\-]{6,}")


def person_needles(seed: int = 1, persons: int = 10000) -> set[str]:
    """Every name, alias, DOB, identifier, address and DIN of the data set (6+ characters)."""
    out: set[str] = set()
    for batch in leis._batches(seed, persons, None, frozenset()):
        for row in batch:
            p = row.person
            out.update((p.din, p.name, *p.aliases, *p.dobs, *(i.value for i in p.identifiers),
                        *(loc.address for loc in p.locations)))
    return {n for n in out if len(n) >= 6}


def clear_in(files: list[Path], needles: set[str]) -> list[str]:
    """``file: needle`` for each needle found in clear in one of ``files``."""
    found = []
    for f in files:
        runs = "\n".join(m.group().decode() for m in _CLEAR_RUN.finditer(f.read_bytes()))
        found += [f"{f.name}: {n}" for n in sorted(needles) if n in runs]
    return found


async def test_serve_answers_as_documented_and_no_person_data_on_disk(tmp_path: Path) -> None:
    config = {"services": {"leis": {"delay_s": 0, "limit": 5}}}
    with serve_process(tmp_path, config) as served:
        az = await Client.connect("127.0.0.1", served.port, "AZNLETS20")
        for n, (query, answer) in enumerate(ANSWERS):
            assert (await az.send(f"GPQ.AZNLETS20.AX.*G{n}.TXT\n{query}")).ok
            gpr = parse_output(await az.receive(60))
            assert (gpr.key, gpr.control) == ("GPR", f"G{n}")
            assert gpr.text.strip() == answer, query
        assert (await az.send(IAQ)).ok
        texts = [parse_output(await az.receive(10)) for _ in range(2)]
        assert [m.key for m in texts] == ["AM", "IAR"]
        assert texts[1].text.strip() == IAR
        await az.close()

        data = served.data_dir
        assert (data / "leis.sqlite-wal").exists()
        needles = person_needles()
        assert {"GARCIA,MARIA", "19850312", "204518736", "D100004321"} <= needles
        assert len(needles) > 40000
        for when in ("running", "stopped"):
            files = [p for p in data.rglob("*") if p.is_file()]
            assert {"leis.sqlite", "journal.sqlite"} <= {p.name for p in files}
            assert clear_in(files, needles) == [], when
            if when == "running":
                served.proc.terminate()
                served.proc.wait(10)
        assert "Traceback" not in served.log_text()


def test_the_check_finds_a_clear_file(tmp_path: Path) -> None:
    # The needle search of the test above finds clear data where there is some.
    f = tmp_path / "clear.bin"
    f.write_bytes(b"\x00\x91GARCIA,MARIA\x0219850312\x07204518736\xff")
    assert clear_in([f], {"GARCIA,MARIA", "19850312", "204518736", "LOPEZ,MARIA"}) == [
        "clear.bin: 19850312", "clear.bin: 204518736", "clear.bin: GARCIA,MARIA"]


QUERIES = [{"NAM": "GARSIA,MARIA"}, {"NAM": "HERNANDEZ"}, {"ADR": "500 S CONGRESS AVE"},
           {"ARN": "012345678"}, {"DIN": "D100000150"}, {"NAM": "SMITH,J", "SEX": "M"}]


def kids(path: Path) -> dict[int, int]:
    db = sqlite3.connect(path)
    try:
        return dict(db.execute("SELECT kid, count(*) FROM person GROUP BY kid").fetchall())
    finally:
        db.close()


def test_rotation_keeps_search_working_without_rewriting_rows(tmp_path: Path) -> None:
    keys = tmp_path / "keys" / "text.keys"
    ring, _ = load_keyring(keys)
    path = tmp_path / "leis.sqlite"
    with LeisData.open(path, persons=300, keyring=ring) as d:
        before = [d.gpq_text(q) for q in QUERIES]
    assert kids(path) == {1: 305}
    rotated = rotate_keyring(keys)
    assert rotated.current == 2
    loaded = tmp_path / "agency.jsonl"
    loaded.write_text(json.dumps({"din": "T000000001", "name": "MUNOZ,PEDRO",
                                  "dobs": ["19790101"], "identifiers": {"ARN": "87654321"}}))
    with LeisData.open(path, persons=300, keyring=rotated,
                       progress=lambda *_: pytest.fail("rebuilt after rotation")) as d:
        assert [d.gpq_text(q) for q in QUERIES] == before
        assert d.load_file(loaded) == 1
        assert d.search({"NAM": "MUNOS,PEDRO"}).hits[0].din == "T000000001"
        assert d.search({"ARN": "A087654321"}).hits[0].din == "T000000001"
    # Old rows keep key 1; the new one is sealed under key 2, loaded in no clear.
    assert kids(path) == {1: 305, 2: 1}
    files = [p for p in tmp_path.iterdir() if p.name.startswith("leis.sqlite")]
    assert clear_in(files, {"MUNOZ,PEDRO", "19790101", "087654321", "T000000001"}) == []
    # A rebuild for another size after rotation: the loaded person stays, found.
    with LeisData.open(path, persons=100, keyring=rotated) as d:
        assert d.count() == 106
        assert d.search({"NAM": "MUNOZ,PEDRO"}).hits[0].din == "T000000001"
        assert d.gpq_text({"NAM": "GARSIA,MARIA"}).startswith("DIN/D000000001.NAM/GARCIA,")
    # The keyring before rotation lacks key 2: that row is refused, in one line.
    with LeisData.open(path, persons=100, keyring=ring) as d, \
            pytest.raises(LeisKeyError) as info:
        d.get("T000000001")
    assert "text key 2" in str(info.value) and "\n" not in str(info.value)


def test_a_record_moved_to_another_row_does_not_open(tmp_path: Path) -> None:
    path = tmp_path / "leis.sqlite"
    LeisData.open(path, persons=10).close()
    db = sqlite3.connect(path)
    (a,), (b,) = db.execute("SELECT record FROM person WHERE id IN (1, 2) ORDER BY id")
    db.execute("UPDATE person SET record = ? WHERE id = 1", (b,))
    db.commit()
    db.close()
    with LeisData.open(path, persons=10) as d:
        with pytest.raises(LeisKeyError, match="does not open"):
            d.get("D000000001")
        assert d.get("D000000002") is not None
    assert isinstance(a, bytes) and b"GARCIA" not in a


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nlets_switch", "leis", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_wrong_or_missing_keyring_is_one_line(tmp_path: Path) -> None:
    import os

    data = ["--data-dir", str(tmp_path / "data"), "--persons", "50"]
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "a")}
    ok = _cli(env, "search", "NAM/GARSIA,MARIA", *data)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("DIN/D000000001.NAM/GARCIA,MARIA.")
    assert "made the text keyring" in ok.stderr

    # Another keyring (the first lost, a new one made): refused, in one line.
    other = _cli({**env, "XDG_CONFIG_HOME": str(tmp_path / "b")}, "search",
                 "NAM/GARSIA,MARIA", *data)
    assert other.returncode == 2
    err = other.stderr.strip().split("\n")[-1]
    assert "sealed under another keyring" in err, other.stderr
    assert "Traceback" not in other.stderr
    # The file is untouched: the right keyring still opens it.
    assert _cli(env, "search", "DIN/D000000001", *data).stdout.startswith("DIN/D000000001\n")

    # A configured keyring that is missing: one line, nothing made.
    cfg = tmp_path / "switch.yaml"
    cfg.write_text(f"security:\n  text_key_file: {tmp_path / 'gone.keys'}\n")
    missing = _cli(env, "search", "NAM/GARSIA,MARIA", "--config", str(cfg), *data)
    assert missing.returncode == 2
    assert missing.stderr.count("\n") == 1 and "does not exist" in missing.stderr
    assert not (tmp_path / "gone.keys").exists()


async def test_serve_with_the_wrong_keyring_says_so_in_one_line(tmp_path: Path) -> None:
    # The data directory's LEIS data sealed under a keyring serve does not have.
    ring, _ = load_keyring(tmp_path / "elsewhere" / "text.keys")
    (tmp_path / "data").mkdir()
    LeisData.open(tmp_path / "data" / "leis.sqlite", persons=50, keyring=ring).close()
    config = {"services": {"leis": {"delay_s": 0, "persons": 50}}}
    with serve_process(tmp_path, config) as served:
        az = await Client.connect("127.0.0.1", served.port, "AZNLETS20")
        assert (await az.send("GPQ.AZNLETS20.AX.*G1.TXT\nNAM/GARSIA,MARIA")).ok
        sm = parse_output(await az.receive(30))
        assert sm.key == "SM" and ".01." in sm.text
        await az.close()
        log = served.log_text()
    lines = [json.loads(line) for line in log.splitlines() if "leis_unavailable" in line]
    assert len(lines) == 1
    assert "sealed under another keyring" in lines[0]["error"]
    assert "Traceback" not in log


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE person (din TEXT PRIMARY KEY, name TEXT NOT NULL, sex TEXT NOT NULL,
    pob TEXT NOT NULL, status TEXT NOT NULL, remarks TEXT NOT NULL, origin TEXT NOT NULL);
CREATE TABLE name (din TEXT NOT NULL, seq INTEGER NOT NULL, alias INTEGER NOT NULL,
    full TEXT NOT NULL, last TEXT NOT NULL, first TEXT NOT NULL, middle TEXT NOT NULL,
    last_mp TEXT NOT NULL, last_ny TEXT NOT NULL, first_mp TEXT NOT NULL,
    first_ny TEXT NOT NULL);
CREATE TABLE dob (din TEXT NOT NULL, seq INTEGER NOT NULL, dob TEXT NOT NULL);
CREATE TABLE ident (din TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL,
    value TEXT NOT NULL);
CREATE TABLE location (din TEXT NOT NULL, seq INTEGER NOT NULL, address TEXT NOT NULL,
    city TEXT NOT NULL, state TEXT NOT NULL, since TEXT NOT NULL, until TEXT NOT NULL,
    adr_norm TEXT NOT NULL);
CREATE TABLE contact (din TEXT NOT NULL, seq INTEGER NOT NULL, date TEXT NOT NULL,
    component TEXT NOT NULL, kind TEXT NOT NULL, place TEXT NOT NULL);
"""


def test_a_clear_text_file_of_the_old_layout_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "leis.sqlite"
    # Kept open, never checkpointed: the clear rows are in the WAL too, as when
    # a switch stopped with the old layout.
    old = db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.executescript(V1_SCHEMA)
    db.executemany("INSERT INTO meta VALUES (?, ?)",
                   [("schema", "1"), ("seed", "1"), ("persons", "50")])
    rows = [("D000000001", "GARCIA,MARIA", "F", "MM", "LAWFUL", "", "fixed"),
            ("T000000001", "QUIXOTEZ,PEDRO", "M", "MM", "PENDING", "AGENCY", "loaded")]
    db.executemany("INSERT INTO person VALUES (?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO name VALUES (?,?,?,?,?,?,?,?,?,?,?)", [
        ("D000000001", 0, 0, "GARCIA,MARIA", "GARCIA", "MARIA", "", "", "", "", ""),
        ("T000000001", 0, 0, "QUIXOTEZ,PEDRO", "QUIXOTEZ", "PEDRO", "", "", "", "", ""),
        ("T000000001", 1, 1, "QUIJOTES,PEDRO", "QUIJOTES", "PEDRO", "", "", "", "", "")])
    db.executemany("INSERT INTO dob VALUES (?,?,?)",
                   [("D000000001", 0, "19850312"), ("T000000001", 0, "19790101")])
    db.execute("INSERT INTO ident VALUES ('T000000001', 0, 'SOC', '900331234')")
    db.execute("INSERT INTO location VALUES ('T000000001', 0, '77 QUIXOTE LANE', 'MESA', "
               "'AZ', '20200101', '', '77 QUIXOTE LN MESA AZ')")
    db.execute("INSERT INTO contact VALUES ('T000000001', 0, '20210505', 'ICE', "
               "'ENCOUNTER', 'MESA, AZ')")
    assert b"QUIXOTEZ,PEDRO" in Path(f"{path}-wal").read_bytes()

    with LeisData.open(path, seed=1, persons=50) as d:
        assert d.count() == 50 + len(leis.FIXED_DINS) + 1
        pedro = d.get("T000000001")
        assert pedro is not None
        assert (pedro.name, pedro.aliases, pedro.dobs, pedro.sex) == (
            "QUIXOTEZ,PEDRO", ("QUIJOTES,PEDRO",), ("19790101",), "M")
        assert pedro.ids("SOC") == ("900331234",)
        assert pedro.locations[0].address == "77 QUIXOTE LANE"
        assert pedro.contacts[0].kind == "ENCOUNTER"
        assert [h.din for h in d.search({"NAM": "QUIJOTES,PEDRO"}).hits] == ["T000000001"]
        assert [h.din for h in d.search({"ADR": "77 QUIXOTE LANE"}).hits] == ["T000000001"]
        assert d.get("D000000001") == leis.fixed_persons()[0]
    needles = {"QUIXOTEZ", "QUIJOTES", "19790101", "900331234", "QUIXOTE LANE", "GARCIA,MARIA",
               "19850312"}
    for _ in ("old connection open", "closed"):
        files = [p for p in tmp_path.iterdir() if p.name.startswith("leis.sqlite")]
        assert path in files
        assert clear_in(files, needles) == []
        old.close()
    db = sqlite3.connect(path)
    try:
        assert dict(db.execute("SELECT key, value FROM meta"))["schema"] == "2"
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert tables == {"meta", "person", "term"}
        # The index holds 16-byte tags, never a value.
        assert {r[0] for r in db.execute("SELECT DISTINCT length(tag) FROM term")} == {16}
    finally:
        db.close()
