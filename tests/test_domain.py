"""The Nlets domain rules, written once (nlets_switch/wire/domain.py): ORI, NAM, DOB, states."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nlets_switch.wire import domain
from nlets_switch.wire.domain import (
    LESC_ORI,
    SWITCH_ORI,
    US_STATES,
    Name,
    is_dob,
    is_name,
    is_no_record,
    is_ori,
    parse_dob,
    parse_name,
    postal_code,
)

# -- ORIs ----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ok"), [
    ("AZNLETS20", True),
    ("ID0010100", True),
    (SWITCH_ORI, True),
    (LESC_ORI, True),
    ("AZ0070500", True),
    ("aznlets20", False),     # upper case only
    ("AZNLETS2", False),      # 8 characters
    ("AZNLETS200", False),    # 10 characters
    ("A1NLETS20", False),     # the state code is 2 letters
    ("AZNLETS2-", False),
    ("AZNLETS20\n", False),   # no trailing line break
    ("", False),
])
def test_ori(text: str, ok: bool) -> None:
    assert is_ori(text) is ok


def test_fixed_oris_and_simulated_control_terminals() -> None:
    assert SWITCH_ORI == "NL0000000"  # PROTOCOL part 4
    assert LESC_ORI == "VTICE0900"  # PROTOCOL part 5
    assert domain.simulated_ct_ori("TX") == "TXNLETS00"
    assert all(is_ori(domain.simulated_ct_ori(s)) for s in US_STATES)


def test_the_rest_of_the_code_uses_these_oris() -> None:
    from nlets_switch import config
    from nlets_switch.server import pki
    from nlets_switch.wire import message

    assert message.SWITCH_ORI is SWITCH_ORI and message.is_ori is is_ori
    assert config.LESC_ORI is LESC_ORI and config.US_STATES is US_STATES
    assert pki.SWITCH_ORI is SWITCH_ORI


# -- state codes -----------------------------------------------------------------


def test_us_states_are_ncic_codes() -> None:
    assert len(US_STATES) == len(set(US_STATES)) == 51
    assert "DC" in US_STATES
    assert "NB" in US_STATES and "NE" not in US_STATES  # FIELDS.md: Nebraska is NB
    assert postal_code("NB") == "NE"
    assert postal_code("AZ") == "AZ"


# -- names (NAM) -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "ok"), [
    ("SMITH,JOHN", True),
    ("SMITH, JOHN", True),            # the blank after the comma is optional
    ("SMITH,JOHN ALLAN JR", True),
    ("O'BRIEN,PAT", True),
    ("SMITH-JONES,MARY ANN", True),
    ("VAN DYKE,DICK", True),
    ("SMITH,J", True),
    ("SMITH", False),                 # no first name
    ("SMITH,", False),
    (",JOHN", False),
    ("SMITH,  JOHN", False),          # one blank at most after the comma
    ("SMITH ,JOHN", False),           # a part ends with a letter
    ("SMITH,JOHN ", False),
    ("SMITH-,JOHN", False),
    ("smith,john", False),            # upper case
    ("SMITH,JOHN,JR", False),         # one comma
    ("SMITH2,JOHN", False),
    ("DR. SMITH,JOHN", False),        # no titles, no periods
])
def test_is_name(text: str, ok: bool) -> None:
    assert is_name(text) is ok


@pytest.mark.parametrize(("text", "name"), [
    ("SMITH,JOHN", Name("SMITH", "JOHN")),
    ("SMITH, JOHN", Name("SMITH", "JOHN")),
    ("smith,john", Name("SMITH", "JOHN")),
    ("NGUYEN,VAN THANH", Name("NGUYEN", "VAN", "THANH")),
    ("SMITH,JOHN ALLAN LEE", Name("SMITH", "JOHN", "ALLAN LEE")),
    ("SMITH,JOHN JR", Name("SMITH", "JOHN", "", "JR")),
    ("SMITH,JOHN Q III", Name("SMITH", "JOHN", "Q", "III")),
    ("SMITH,JOHN JR.", Name("SMITH", "JOHN", "", "JR")),  # periods are no part of a name
    ("SMITH,JR", Name("SMITH", "JR")),                    # the first name is never a suffix
    ("  VAN   DYKE ,  DICK  ", Name("VAN DYKE", "DICK")),
    ("O'BRIEN,PAT", Name("O'BRIEN", "PAT")),
    ("GARCIA", Name("GARCIA", "")),                       # no comma: a last name alone
    ("", Name("", "")),
])
def test_parse_name(text: str, name: Name) -> None:
    assert parse_name(text) == name


def test_name_display_and_apostrophes() -> None:
    assert Name("NGUYEN", "VAN", "THANH", "JR").display == "NGUYEN,VAN THANH"
    assert Name("GARCIA", "").display == "GARCIA"
    assert parse_name("O'BRIEN,D'ARCY").without_apostrophes() == Name("OBRIEN", "DARCY")


_PART = st.from_regex(r"[A-Z](?:[A-Z'-]{0,6}[A-Z])?", fullmatch=True)
# A first or middle name that reads as a suffix (V, II) is one: not the writer's to say.
_GIVEN = _PART.filter(lambda w: w not in domain.NAME_SUFFIXES)


@given(last=st.lists(_PART, min_size=1, max_size=2), first=_GIVEN,
       middle=st.lists(_GIVEN, max_size=2), suffix=st.sampled_from(["", "JR", "III"]),
       blank=st.booleans())
def test_name_round_trip(last: list[str], first: str, middle: list[str], suffix: str,
                         blank: bool) -> None:
    """What a name is written as, parse_name splits back into its parts."""
    first_words = [first, *middle, *([suffix] if suffix else [])]
    text = " ".join(last) + ("," + (" " if blank else "")) + " ".join(first_words)
    assert is_name(text)
    parsed = parse_name(text)
    assert parsed == Name(" ".join(last), first, " ".join(middle), suffix)
    assert parsed.last == " ".join(last)
    assert parsed.first == first
    assert parsed.display == ",".join((" ".join(last), " ".join([first, *middle])))
    assert is_name(parsed.display)


# -- dates of birth (DOB) ------------------------------------------------------------

TODAY = dt.date(2026, 5, 1)


@pytest.mark.parametrize(("text", "today", "date"), [
    ("19850312", None, dt.date(1985, 3, 12)),
    ("20240229", None, dt.date(2024, 2, 29)),
    ("20230229", None, None),           # not a real date
    ("19501301", None, None),
    ("031285", TODAY, dt.date(1985, 3, 12)),
    ("010120", TODAY, dt.date(2020, 1, 1)),
    ("043026", TODAY, dt.date(2026, 4, 30)),
    ("050226", TODAY, dt.date(1926, 5, 2)),   # tomorrow is not a birthday
    ("010150", TODAY, dt.date(1950, 1, 1)),
    ("022900", TODAY, dt.date(2000, 2, 29)),  # 2000 is a leap year, 1900 is not
    ("010129", None, dt.date(2029, 1, 1)),    # below the pivot: 20YY
    ("010130", None, dt.date(1930, 1, 1)),    # from the pivot on: 19YY
    ("022900", None, dt.date(2000, 2, 29)),
    ("023100", None, None),
    (" 19850312 ", None, dt.date(1985, 3, 12)),
    ("1985031", None, None),
    ("1985-03-12", None, None),
    ("", None, None),
])
def test_parse_dob(text: str, today: dt.date | None, date: dt.date | None) -> None:
    assert parse_dob(text, today) == date


@pytest.mark.parametrize(("text", "ok"), [
    ("19500101", True), ("010150", True), ("022900", True), ("19500230", False),
    ("1950011", False), ("023100", False), (" 010150", False), ("0101AB", False),
])
def test_is_dob(text: str, ok: bool) -> None:
    assert is_dob(text) is ok


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31)))
def test_dob_round_trip(day: dt.date) -> None:
    assert parse_dob(day.strftime("%Y%m%d")) == day
    # MMDDYY loses the century; given a today on or after the day, it comes
    # back when the day is within the last hundred years.
    today = day + dt.timedelta(days=365 * 40)
    assert parse_dob(day.strftime("%m%d%y"), today) == day
    assert is_dob(day.strftime("%m%d%y"))


# -- no-record answers -----------------------------------------------------------------


@pytest.mark.parametrize(("text", "no_record"), [
    ("TX DMV RESPONSE\nNO RECORD", True),
    ("NOT ON FILE.", True),
    ("  NO RECORD  \r\nMORE", True),
    ("NO RECORD FOUND FOR SMITH", False),
    ("DIN/D000000001.NAM/GARCIA,MARIA", False),
])
def test_is_no_record(text: str, no_record: bool) -> None:
    assert is_no_record(text) is no_record
    assert domain.NO_RECORD == "NO RECORD"


def test_domain_module_is_pure() -> None:
    """Only the standard library: no YAML, no asyncio, no sqlite3, no logging."""
    code = ("import sys; import nlets_switch.wire.domain; "
            "bad = {'yaml', 'asyncio', 'sqlite3', 'structlog', 'logging', 'ssl', 'socket'}; "
            "print(sorted(bad & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
