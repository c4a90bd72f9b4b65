"""One switch node on PostgreSQL passes the switch's behaviour: a subset of test_switch.py
run with the journal in a throwaway PostgreSQL (tests/conftest_postgres.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from nlets_switch.config import config_from_dict, demo_config, with_overrides
from nlets_switch.core.events import MemoryAudit
from nlets_switch.server.switch import Switch
from nlets_switch.store.postgres_journal import PostgresJournal
from tests.conftest import ClientFactory, SwitchFactory
from tests.conftest_services import FAST
from tests.test_services import ask

pytest_plugins = ["tests.conftest_postgres"]


@pytest.fixture
async def make_switch(tmp_path: Path, pg_url: str) -> AsyncIterator[SwitchFactory]:
    """conftest's make_switch, each switch on the test's own PostgreSQL database."""
    started: list[Switch] = []

    async def factory(raw: dict[str, Any] | None = None, data_dir: Path | None = None,
                      build: bool = False) -> Switch:
        cfg = config_from_dict(raw) if raw is not None else demo_config()
        cfg = with_overrides(cfg, ["127.0.0.1:0"], str(data_dir or tmp_path / "data"),
                             store=pg_url)
        if build:
            from nlets_switch.server.app import build_switch

            sw = await build_switch(cfg)
        else:
            sw = Switch(cfg, audit=MemoryAudit())
        assert isinstance(sw.journal, PostgresJournal)
        await sw.start()
        started.append(sw)
        return sw

    yield factory
    for sw in started:
        await sw.stop()


@pytest.fixture
async def monitored(tmp_path: Path, pg_url: str) -> AsyncIterator[Any]:
    """conftest_monitoring's monitored, the switch on the test's own PostgreSQL database."""
    from nlets_switch.ops.monitoring import attach_monitoring

    started: list[Any] = []

    async def factory(raw: dict[str, Any] | None = None, http: str = "127.0.0.1:0") -> Any:
        cfg = with_overrides(config_from_dict(raw or {}), ["127.0.0.1:0"],
                             str(tmp_path / "data"), store=pg_url)
        sw = Switch(cfg, audit=MemoryAudit())
        assert isinstance(sw.journal, PostgresJournal)
        await sw.start()
        mon = await attach_monitoring(sw, cfg, http=http)
        started.append((sw, mon))
        return sw, mon

    yield factory
    for sw, mon in started:
        await sw.stop()
        await mon.stop()


# The switch's behaviour, unchanged, on PostgreSQL: these run with the make_switch above.
from tests.test_http import test_message_text_only_for_a_token_that_may_see_it  # noqa: E402
from tests.test_log_wire import (  # noqa: E402
    test_nlq_lists_and_nfq_fetches_only_what_the_ori_sent_or_received,
)
from tests.test_switch import (  # noqa: E402
    test_am_from_az_to_ny_with_output_header,
    test_hold_expiry_gives_sm_04,
    test_malformed_messages_get_a_and_the_named_er,
    test_numbers_count_per_link,
    test_several_destinations,
    test_sm_02_then_delivery_when_ny_signs_on,
    test_sm_04_inquiry_to_a_state_not_signed_on,
    test_sm_goes_ahead_of_other_traffic,
    test_window_limits_outstanding_and_unacked_are_redelivered,
)

__all__ = [
    "test_am_from_az_to_ny_with_output_header",
    "test_hold_expiry_gives_sm_04",
    "test_malformed_messages_get_a_and_the_named_er",
    "test_message_text_only_for_a_token_that_may_see_it",
    "test_nlq_lists_and_nfq_fetches_only_what_the_ori_sent_or_received",
    "test_numbers_count_per_link",
    "test_several_destinations",
    "test_sm_02_then_delivery_when_ny_signs_on",
    "test_sm_04_inquiry_to_a_state_not_signed_on",
    "test_sm_goes_ahead_of_other_traffic",
    "test_window_limits_outstanding_and_unacked_are_redelivered",
]


async def test_help_files_are_kept_in_postgres(make_switch: SwitchFactory,
                                               connect: ClientFactory, pg_url: str) -> None:
    sw = await make_switch(raw={"services": FAST}, build=True)
    az = await connect(sw, "AZNLETS20")
    ny = await connect(sw, "NYNLETS00")
    got = await ask(az, "AM.AZNLETS20.NLNLEHELP.*H1.TXT\nSEND")
    assert "HELP FILE NLNLE" in got.text  # seeded into the database at start
    ok = await ask(ny, "AM.NYNLETS00.NYDRVUPDT.TXT\nNY DRIVER FILE: USE OLN/")
    assert "UPDATED" in ok.text
    got = await ask(az, "AM.AZNLETS20.NYDRVHELP.TXT\nSEND")
    assert got.text.endswith("NY DRIVER FILE: USE OLN/")
    with psycopg.connect(pg_url) as c:
        rows = c.execute("SELECT updated_by FROM help_files WHERE state = 'NY' "
                         "AND file = 'DRV'").fetchall()
    assert rows == [("NYNLETS00",)]
