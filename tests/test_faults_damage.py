"""A journal page damaged while ``serve`` runs (issue 15).

Before: a switch whose journal got a damaged page delivered until it met it,
then stopped delivering to that destination without a word, while new
messages for it still got ``A``. Now the failed read (or write) raises the
alert, and senders get ``N .05.`` instead of an ``A`` the switch cannot keep.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from nlets_switch.store.journal import Journal, write_batch
from nlets_switch.store.records import Batch, DeliveryRow, MessageRow
from tests.conftest import free_port
from tests.damage import damage, middle_leaf, text_of
from tests.faults_link import RawLink, until
from tests.test_durability import start_switch
from tests.test_faults_serve import BUSY, stop

N = 20_000


def make_journal(path: Path, n: int) -> None:
    """A journal of ``n`` messages held for NYNLETS00, received a minute ago (as
    tests.damage.make_journal, but not yet expired nor due for retention)."""
    t0 = time.time() - 60
    journal = Journal(path)
    conn = journal.open()
    b = Batch()
    for i in range(1, n + 1):
        b.messages.append(MessageRow(i, t0, "AZNLETS20", "AM", "AZNLETS20", "NY", f"C{i}",
                                     i, "accepted", None, None, 26, text_of(i)))
        b.deliveries.append(DeliveryRow(i, i, "NYNLETS00", "NYNLETS00", "NY", i, 2, "held",
                                        t0, t0 + 86_400, 1))
    b.counters = {"id:msg": n, "id:dlv": n, "in:AZNLETS20": n, "out:NYNLETS00": n}
    conn.execute("BEGIN")
    write_batch(conn, b)
    conn.execute("COMMIT")
    journal.close()


def damage_while_running(journal: Path) -> None:
    # The middle of the table: read back after the first part was delivered.
    for name in ("deliveries", "messages"):
        damage(journal, middle_leaf(journal, name), 0, 64)


async def test_a_page_damaged_while_running_raises_the_alert_and_stops_custody(
        tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    journal = data / "journal.sqlite"
    make_journal(journal, N)                 # N messages held for NYNLETS00
    port = free_port()
    proc = start_switch(data, port, "--log-format", "json")
    try:
        damage_while_running(journal)
        ny = await RawLink.connect(port, "NYNLETS00")
        # It delivers what it can read, then meets the damaged pages.
        await until(lambda: False, 5, 0.1)
        got = len(ny.received)
        assert 0 < got < N, got
        # The sender is not told A for what the switch may not be able to keep.
        az = await RawLink.connect(port, "AZNLETS20")
        seq = az.send("AM.AZNLETS20.NY.TXT AFTER THE DAMAGE")
        await az.wait_answers(10)
        assert az.answers[seq] == ("N", BUSY)
        await az.close()
        await ny.close()
    finally:
        err = stop(proc)
    events = [json.loads(x) for x in err.splitlines() if x.startswith("{")]
    faults = [e for e in events if e.get("event") == "journal_fault"]
    assert faults, err[-2000:]
    assert faults[0]["level"] == "error"
    assert faults[0]["op"] in ("read-back", "write")
    assert "Traceback" not in err
    assert proc.returncode == 0
