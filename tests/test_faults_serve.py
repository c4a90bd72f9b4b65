"""Faults under a real ``serve`` process (issue 15): SIGTERM and kill -9 under load.

* SIGTERM while senders keep many messages in flight: every ``M`` sent gets
  ``A`` or ``N .05.``, no connection is reset, the log has no traceback.
* kill -9 while a destination acknowledges deliveries as fast as they come:
  after the restart it gets again at most a window's worth of them.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import subprocess
from pathlib import Path

from tests.conftest import free_port
from tests.faults_link import RawLink, until
from tests.test_durability import start_switch

BUSY = b".05. SWITCH NOT ACCEPTING MESSAGES, RESEND LATER"
WINDOW = 32
CONFIG = (f"limits:\n  rate_per_ori: 1000000\n  rate_burst: 1000000\n  window: {WINDOW}\n"
          "  max_inflight: 100000\n")


def config(tmp_path: Path) -> str:
    path = tmp_path / "faults.yaml"
    path.write_text(CONFIG)
    return str(path)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    proc.wait(timeout)
    return proc.stderr.read().decode() if proc.stderr else ""


async def _sigterm_under_load(port: int, proc: subprocess.Popen[bytes],
                              windows: dict[str, int], n: int) -> dict[str, RawLink]:
    ny = await RawLink.connect(port, "NYNLETS00")  # takes deliveries and acknowledges them
    senders = {ori: await RawLink.connect(port, ori) for ori in windows}
    texts = {ori: [f"AM.{ori}.NY.*C{i}.TXT\nUNDER LOAD {ori} {i:05d}" for i in range(n)]
             for ori in windows}
    sending = [asyncio.create_task(link.send_all(texts[ori], windows[ori]))
               for ori, link in senders.items()]
    # SIGTERM once the switch is busy: some taken into custody, many in flight.
    assert await until(lambda: sum(len(s.answers) for s in senders.values()) >= 300, 30)
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(asyncio.gather(*sending), 60)
    for link in senders.values():
        await link.wait_answers(20)
        await link.wait_end(20)
    await ny.wait_end(10)
    await ny.close()
    return senders


async def test_sigterm_under_load_answers_every_message_and_resets_nothing(
        tmp_path: Path) -> None:
    port = free_port()
    proc = start_switch(tmp_path / "data", port, "--config", config(tmp_path))
    try:
        senders = await _sigterm_under_load(port, proc,
                                            {"AZNLETS20": 32, "AZ0070500": 256}, 3000)
    finally:
        err = stop(proc)
    assert proc.returncode == 0
    for ori, link in senders.items():
        assert not link.reset, ori
        unanswered = [s for s in link.sent if s not in link.answers]
        assert unanswered == [], (ori, len(unanswered), len(link.sent))
        kinds = collections.Counter(
            "A" if a == ("A", b"") else "N .05." if a == ("N", BUSY) else repr(a)
            for a in link.answers.values())
        assert set(kinds) <= {"A", "N .05."}, (ori, kinds)
        assert kinds["N .05."] > 0, (ori, kinds)   # the stop came in the middle
        assert link.sign_offs == 1                  # D: the switch signs off
        assert link.eof
    assert "Traceback" not in err
    assert "CancelledError" not in err
    assert "stopped" in err


async def test_sigterm_with_an_idle_link_logs_no_traceback(tmp_path: Path) -> None:
    port = free_port()
    proc = start_switch(tmp_path / "data", port)
    try:
        link = await RawLink.connect(port, "AZNLETS20")
        await asyncio.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        await link.wait_end(15)
        assert link.eof and not link.reset
        await link.close()
    finally:
        err = stop(proc)
    assert proc.returncode == 0
    assert "Traceback" not in err and "CancelledError" not in err


async def test_kill_9_under_load_resends_at_most_a_window(tmp_path: Path) -> None:
    data = tmp_path / "data"
    port = free_port()
    cfg = config(tmp_path)
    n = 6000
    texts = [f"AM.AZNLETS20.NY.*C{i}.TXT\nDELIVERED ONCE {i:05d}" for i in range(n)]
    proc = start_switch(data, port, "--config", cfg)
    try:
        ny = await RawLink.connect(port, "NYNLETS00")
        az = await RawLink.connect(port, "AZNLETS20")
        sending = asyncio.create_task(az.send_all(texts, 64))
        assert await until(lambda: len(ny.received) >= 1500, 30, 0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        await asyncio.wait_for(sending, 10)
        await ny.wait_end(5)
    finally:
        stop(proc)
    first = list(ny.received)
    acked = {seq for seq, a in az.answers.items() if a[0] == "A"}
    await ny.close()
    await az.close()

    proc = start_switch(data, port, "--config", cfg)
    try:
        ny2 = await RawLink.connect(port, "NYNLETS00")
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        seen = 0
        while loop.time() - quiet_since < 1.5:
            await asyncio.sleep(0.1)
            if len(ny2.received) != seen:
                seen, quiet_since = len(ny2.received), loop.time()
        await ny2.close()
    finally:
        stop(proc)

    def index(body: bytes) -> int:
        return int(body.rsplit(b" ", 1)[1])

    before = collections.Counter(index(b) for b in first)
    after = collections.Counter(index(b) for b in ny2.received)
    assert max(before.values()) == 1                # no duplicates while it ran
    again = sorted(i for i in after if i in before)
    assert len(again) <= WINDOW, (len(again), again[:5], again[-5:])
    # Nothing acknowledged to the sender is lost: each came before or after.
    sent_index = {seq: i for i, seq in enumerate(az.sent)}
    lost = [sent_index[s] for s in acked if sent_index[s] not in before | after]
    assert lost == []
