"""The operator console on the PostgreSQL store (``serve --store postgresql://...``): the
intervention queue, held queues, remove status and the message log's refusals, against a
throwaway PostgreSQL (tests/conftest_postgres.py). The API and CLI tests of the embedded
store run here unchanged, with the switch's journal in PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from nlets_switch.core.console import REVIEW
from nlets_switch.store.postgres import open_pg_store
from nlets_switch.store.postgres_console import PgConsole
from nlets_switch.store.postgres_schema import SCHEMA_VERSION, schema_version
from tests.conftest import ClientFactory, SwitchFactory

pytest_plugins = ["tests.conftest_postgres"]

# The console's behaviour, unchanged, on PostgreSQL: these run with the fixtures of
# tests/test_postgres_switch.py (the switch on the test's own PostgreSQL database).
from tests.test_operator_api import (  # noqa: E402,F401
    test_a_held_message_is_released_after_review,
    test_a_held_queue_is_released_per_delivery_and_per_destination,
    test_an_edit_is_kept_beside_the_original_and_delivered,
    test_an_operate_action_with_a_read_token_is_refused_and_audited,
    test_held_queue_purge_reroute_and_resend,
    test_remove_status_answers_sm_04_until_lifted_and_survives_a_restart,
    test_reroute_and_purge_from_the_queue,
)
from tests.test_operator_cli import (  # noqa: E402,F401
    test_held_queue_and_resend_commands,
    test_queue_commands_list_show_release_edit_reroute_purge,
    test_release_of_a_held_queue_per_destination_and_per_delivery,
)
from tests.test_postgres_switch import make_switch, monitored  # noqa: E402,F401


def test_the_console_queries_on_postgresql(pg_url: str) -> None:
    with open_pg_store(pg_url) as store:
        assert schema_version(store.conn) == SCHEMA_VERSION
        c = PgConsole(store)
        store.conn.execute(
            "INSERT INTO messages (id, received_at, link, key, origin, destinations, control, "
            "input_no, status, reason, reply_to, body_start, text) VALUES "
            "(1, 100.0, 'AZNLETS20', 'AM', 'AZNLETS20', 'NY', NULL, 1, 'accepted', NULL, "
            "NULL, 20, 'AM.AZNLETS20.NY.TXT\nHELLO\n'), "
            "(2, 101.0, 'AZNLETS20', 'AM', 'AZNLETS20', 'NY', NULL, 1, 'edited', "
            "'edited by jane', 1, 20, 'AM.AZNLETS20.NY.TXT\nHELLO!\n')")
        store.conn.execute(
            "INSERT INTO deliveries (id, msg_id, link, receiver, addressed, output_no, "
            "priority, state, created_at, expires_at, held) VALUES "
            "(7, 1, 'NYNLETS00', 'NYNLETS00', 'NY', 1, 1, 'review', 100.0, 9e9, 0), "
            "(8, 1, 'AZ0070500', 'AZ0070500', 'AZ0070500', 1, 1, 'held', 100.0, 9e9, 1)")
        [it] = c.items(link="NY", states=(REVIEW,))
        assert (it.id, it.msg_id, it.key, it.sender_link, it.body) == (
            7, 1, "AM", "AZNLETS20", "HELLO")
        assert [i.id for i in c.items(ids=[7, 8])] == [7, 8]
        assert [i.id for i in c.items(msg_id=1, states=("held",))] == [8]
        assert c.held_by_destination() == {"NYNLETS00": 1}
        assert c.edits(1) == [{"msg_id": 2, "at": 101.0, "reason": "edited by jane"}]
        c.save_removed("NYNLETS00", ["DQ", "AM"], 5.0, "jane", "storm")
        c.save_removed("NYNLETS00", None, 6.0, "jane", "all day")
        assert c.load_removed() == {"NYNLETS00": None}
        assert c.list_removed() == [{"ori": "NYNLETS00", "keys": None, "since": 6.0,
                                     "operator": "jane", "reason": "all day"}]
        c.delete_removed("NYNLETS00")
        assert c.load_removed() == {}


def test_a_read_only_tool_reads_an_older_database_as_nothing_removed(pg_url: str) -> None:
    with open_pg_store(pg_url) as store:
        store.conn.execute("DROP TABLE remove_status")
    with open_pg_store(pg_url, readonly=True) as store:
        assert PgConsole(store).load_removed() == {}
        assert PgConsole(store).list_removed() == []


async def test_a_refused_help_file_update_is_logged_refused_on_postgresql(
        make_switch: SwitchFactory,  # noqa: F811 (the fixture imported above)
        connect: ClientFactory, pg_url: str) -> None:
    sw = await make_switch(build=True)
    ny = await connect(sw, "NYNLETS00")
    assert (await ny.send("AM.NYNLETS00.AZNLEUPDT.TXT\nNEW HELP TEXT")).ok
    assert (await ny.receive(5)).startswith("ER.")
    await sw.journal.barrier()
    await asyncio.sleep(0.05)
    await sw.journal.barrier()

    def log(*args: str) -> str:
        return subprocess.run([sys.executable, "-m", "nlets_switch", "log", *args, "--store",
                               pg_url], capture_output=True, text=True, timeout=30,
                              check=True).stdout

    search, show = await asyncio.to_thread(lambda: (log("search", "--key", "AM"),
                                                    log("show", "1")))
    assert "refused: .02. MESSAGE TYPE NOT ALLOWED TO DESTINATION" in search
    assert "  status     refused: .02." in show and "caused     ER 2" in show
