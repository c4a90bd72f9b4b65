"""The operator console in the dashboard, in Debian's Chromium: the map, the charts, the
message browser, and the queue's actions, each audited.

Screenshots go to ``$NLETS_SCREENSHOTS`` (docs/images/ when making the docs:
``NLETS_SCREENSHOTS=docs/images pytest tests/test_dashboard_console.py``), else to
the test's temporary directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from nlets_switch.core.events import Audit
from nlets_switch.tools.client import Client
from tests.test_operator_api import OPERATOR, RULES, TOKENS

if TYPE_CHECKING:
    from tests.conftest_monitoring import MonitoredFactory

pytest_plugins = ["tests.conftest_monitoring"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM),
                                reason=f"{CHROMIUM} is missing (Debian package chromium)")


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # bypass_csp: the tests' own predicates are evaluated in the page; the
            # switch's CSP itself is tested in test_attack_monitoring.
            pg = await browser.new_page(viewport={"width": 1400, "height": 900},
                                        bypass_csp=True)
            pg.set_default_timeout(8000)
            yield pg
        finally:
            await browser.close()


def shots(tmp_path: Path) -> Path:
    out = Path(os.environ.get("NLETS_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    return out


async def test_a_day_at_the_console(monitored: MonitoredFactory, page: Any,
                                    tmp_path: Path) -> None:
    from playwright.async_api import expect

    out = shots(tmp_path)
    sw, mon = await monitored({"api": TOKENS, "intervention": RULES})
    audits: list[tuple[str, str, str]] = []
    sw.observers.append(lambda e: audits.append((e.subject, e.outcome, e.detail["action"]))
                        if isinstance(e, Audit) and e.type == "operator_action" else None)
    assert mon.http_address is not None
    h, p = mon.http_address
    host, port = sw.addresses[0]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"http://{h}:{p}/")
    # With tokens configured the page signs in first (a session cookie, issue 11);
    # the same token, kept in the tab, authorizes the console's actions.
    await page.fill("#signin-token", OPERATOR)
    await page.click("#signin button")
    await page.fill("#token", OPERATOR)
    await page.dispatch_event("#token", "change")
    await expect(page.locator("#conn")).to_have_text("live")

    # The map: New York's tile turns green when its control terminal signs on;
    # states the switch simulates are marked as such.
    ny = page.locator('#map g.tile[data-tile="NY"]')
    await expect(ny).to_have_attribute("data-state", "offline")
    await expect(page.locator('#map g.tile[data-tile="TX"]')).to_have_attribute(
        "data-simulated", "true")
    await expect(page.locator('#map g.tile[data-tile="NY"]')).to_have_attribute(
        "data-simulated", "false")
    nyc = await Client.connect(host, port, "NYNLETS00")
    az = await Client.connect(host, port, "AZNLETS20")
    agency = await Client.connect(host, port, "AZ0070500")
    await expect(ny).to_have_attribute("data-state", "online")
    await expect(page.locator('#map g.tile[data-tile="AZ"]')).to_have_attribute(
        "data-state", "online")
    await expect(page.locator('#other-links [data-ori="AZ0070500"]')).to_have_attribute(
        "data-state", "online")
    assert await page.evaluate(
        "getComputedStyle(document.querySelector('#map g.tile[data-tile=\"NY\"] rect')).fill"
    ) == "rgb(35, 134, 54)"  # green

    # Traffic moves the charts.
    for i in range(12):  # over about three seconds: three points or more on each chart
        assert (await az.send(f"DQ.AZNLETS20.NY.TXT OLN/A{i:07d}")).ok
        await nyc.receive(5)
        await asyncio.sleep(0.25)
    await expect(page.locator("#chart-rate")).not_to_have_attribute("data-max", "0")
    await page.wait_for_function(
        "Number(document.querySelector('#chart-rate').dataset.max) > 0")
    await page.wait_for_function(
        "Number(document.querySelector('#chart-latency').dataset.max) > 0")
    await page.screenshot(path=str(out / "console-overview.png"))

    # Four AMs to New York wait for review (rule am-to-ny).
    for word in ("ONE", "TWO", "THREE", "FOUR"):
        assert (await az.send(f"AM.AZNLETS20.NY.TXT MEETING {word}")).ok
    rows = page.locator("#queue tbody tr[data-id]")
    await expect(rows).to_have_count(4)
    await page.locator("#queue").scroll_into_view_if_needed()
    await page.screenshot(path=str(out / "console-queue.png"))

    await page.fill("#q-reason", "checked")
    await rows.nth(0).locator('button[data-action="release"]').click()
    await expect(page.locator("#q-result")).to_have_text("release done")
    assert "MEETING ONE" in await nyc.receive(5)
    await expect(rows).to_have_count(3)

    await page.fill("#q-text", "MEETING 2 MOVED TO 1000")
    await rows.nth(0).locator('button[data-action="edit"]').click()
    await expect(page.locator("#q-result")).to_contain_text("waits for review")
    # The queue now: THREE, FOUR, and the edited TWO (a new item, at the end).
    await expect(rows).to_have_count(3)
    await page.fill("#q-to", "AZ0070500")
    await rows.nth(0).locator('button[data-action="reroute"]').click()
    await expect(page.locator("#q-result")).to_have_text("reroute done")
    assert "MEETING THREE" in await agency.receive(5)
    await page.fill("#q-reason", "")
    await rows.nth(0).locator('button[data-action="purge"]').click()
    await expect(page.locator("#q-result")).to_have_text("a reason is required")
    await page.fill("#q-reason", "not for the wire")
    await rows.nth(0).locator('button[data-action="purge"]').click()
    await expect(page.locator("#q-result")).to_have_text("purge done")
    sm = await az.receive(5)
    assert ".04." in sm and "MEETING FOUR" in sm
    # What is left: the edited message, waiting for review again.
    await expect(rows).to_have_count(1)
    # Each action is audited and shows in the events list.
    ops = page.locator('#events li[data-event="operator"]')
    await expect(ops).to_have_count(4)
    await expect(ops.first).to_contain_text("jane purge")
    assert audits == [("jane", "success", "release"), ("jane", "success", "edit"),
                      ("jane", "success", "reroute"), ("jane", "success", "purge")]

    # The message browser: find the AMs, open the released one, see its life and text.
    await page.fill("#s-key", "AM")
    await page.click('#search button[type="submit"]')
    results = page.locator("#results tbody tr[data-msg-id]")
    await expect(results.first).to_be_visible()
    first_am = min([int(x) for x in await results.evaluate_all(
        "rs => rs.map(r => r.dataset.msgId)")])
    await page.locator(f'#results tr[data-msg-id="{first_am}"]').click()
    life = page.locator("#life li")
    await expect(life.first).to_contain_text("received AM from AZNLETS20")
    await expect(page.locator('#life li[data-step="review"]')).to_contain_text(
        "held for review to NY")
    await expect(page.locator('#life li[data-step="released"]')).to_have_count(1)
    await expect(page.locator('#life li[data-step="acked"]')).to_have_count(1)
    await expect(page.locator('#life li[data-step="sent"]')).to_have_count(1)
    await expect(page.locator("#message-text")).to_contain_text("MEETING ONE")
    await page.locator("#message").scroll_into_view_if_needed()
    await page.screenshot(path=str(out / "console-message.png"))
    assert errors == []
    for c in (az, nyc, agency):
        await c.close()


async def test_without_see_text_the_browser_withholds_text_and_refuses_actions(
        monitored: MonitoredFactory, page: Any) -> None:
    from playwright.async_api import expect

    from tests.test_operator_api import READER

    sw, mon = await monitored({"api": TOKENS, "intervention": RULES})
    assert mon.http_address is not None
    h, p = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT PRIVATE WORDS")).ok
    await sw.journal.barrier()
    # With tokens configured the page signs in first; its session cookie then
    # authorizes the history the charts are drawn from (issue 11).
    await page.goto(f"http://{h}:{p}/")
    await page.fill("#signin-token", READER)
    await page.click("#signin button")
    await expect(page.locator("#conn")).to_have_text("live")
    for _ in range(100):  # the stats snapshots after the message: it is in the history
        if any(v > 0 for v in await page.evaluate(
                "fetch('/dashboard/history.json').then(r => r.json())"
                ".then(h => h.keys.AM || [])")):
            break
        await asyncio.sleep(0.1)
    await page.reload()
    # The charts show the time before the page was opened (the switch keeps the hour).
    await page.wait_for_function(
        "Number(document.querySelector('#chart-rate').dataset.max) > 0")
    await page.fill("#token", READER)
    await page.dispatch_event("#token", "change")
    rows = page.locator("#queue tbody tr[data-id]")
    await expect(rows).to_have_count(1)
    await rows.first.locator("td.clickable").click()
    await expect(page.locator("#message-text")).to_contain_text("text withheld")
    await rows.first.locator('button[data-action="release"]').click()
    await expect(page.locator("#q-result")).to_have_text("release needs a token with operate")
    assert "PRIVATE" not in await page.content()
    await az.close()


async def test_a_held_queue_is_released_from_the_dashboard(
        monitored: MonitoredFactory, page: Any) -> None:
    from playwright.async_api import expect

    sw, mon = await monitored({"api": TOKENS, "intervention": {"rules": [
        {"name": "watch-word", "text": "CONTRABAND"}]}})
    audits: list[tuple[str, str, str]] = []
    sw.observers.append(lambda e: audits.append((e.subject, e.outcome, e.detail["action"]))
                        if isinstance(e, Audit) and e.type == "operator_action" else None)
    assert mon.http_address is not None
    h, p = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    assert (await az.send("AM.AZNLETS20.NY.TXT PLAIN")).ok             # owed: NY is away
    assert ".02." in await az.receive(5)
    for word in ("LIST", "AGAIN"):                                     # held for review
        assert (await az.send(f"AM.AZNLETS20.NY.TXT CONTRABAND {word}")).ok
    await sw.journal.barrier()
    await page.goto(f"http://{h}:{p}/")
    await page.fill("#signin-token", OPERATOR)
    await page.click("#signin button")
    await page.fill("#token", OPERATOR)
    await page.dispatch_event("#token", "change")
    await expect(page.locator("#conn")).to_have_text("live")
    row = page.locator('#held tr[data-dest="NYNLETS00"]')
    await expect(row.locator("td").nth(1)).to_have_text("1")  # owed
    await expect(row.locator("td").nth(2)).to_have_text("2")  # held for review

    # One by one: the destination's deliveries, each with its actions.
    await row.locator("span.clickable").click()
    items = page.locator("#held-list tbody tr[data-id]")
    await expect(items).to_have_count(3)
    assert await items.evaluate_all("rs => rs.map(r => r.dataset.state)") == [
        "held", "review", "review"]
    await items.nth(0).locator('button[data-action="release"]').click()
    await expect(page.locator("#q-result")).to_have_text(
        "nothing is held for review; 1 delivery wait for NYNLETS00 to sign on and go then")
    await page.fill("#q-reason", "duplicate")
    await items.nth(2).locator('button[data-action="purge"]').click()
    await expect(page.locator("#q-result")).to_have_text("purge done")
    assert "CONTRABAND AGAIN" in await az.receive(5)  # SM .04. quoting it
    await expect(items).to_have_count(2)

    # The whole queue: what review held goes; NY is away, so it is owed to it.
    await page.fill("#q-reason", "cleared")
    await row.locator('button[data-action="release"]').click()
    await expect(page.locator("#q-result")).to_have_text(
        "release done: 0 sent now, 1 owed until it signs on")
    await expect(row.locator("td").nth(1)).to_have_text("2")
    await expect(row.locator("td").nth(2)).to_have_text("0")
    assert await items.evaluate_all("rs => rs.map(r => r.dataset.state)") == ["held", "held"]
    await expect(page.locator('#events li[data-event="operator"]').first).to_contain_text(
        "jane release")
    ny = await Client.connect(host, port, "NYNLETS00")
    got = [await ny.receive(5), await ny.receive(5)]
    assert "PLAIN" in got[0] and "CONTRABAND LIST" in got[1]
    assert await ny.drain(0.3) == []  # the purged one never comes
    assert audits == [("jane", "failure", "release"), ("jane", "success", "purge"),
                      ("jane", "success", "release")]
    await az.close()
    await ny.close()


async def test_remove_status_and_broadcasts_from_the_dashboard(
        monitored: MonitoredFactory, page: Any, tmp_path: Path) -> None:
    from playwright.async_api import expect

    out = shots(tmp_path)
    sw, mon = await monitored({"api": TOKENS})
    audits: list[tuple[str, str, str]] = []
    sw.observers.append(lambda e: audits.append((e.subject, e.outcome, e.detail["action"]))
                        if isinstance(e, Audit) and e.type == "operator_action" else None)
    assert mon.http_address is not None
    h, p = mon.http_address
    host, port = sw.addresses[0]
    az = await Client.connect(host, port, "AZNLETS20")
    ny = await Client.connect(host, port, "NYNLETS00")
    await page.goto(f"http://{h}:{p}/")
    await page.fill("#signin-token", OPERATOR)
    await page.click("#signin button")
    await page.fill("#token", OPERATOR)
    await page.dispatch_event("#token", "change")
    await expect(page.locator("#conn")).to_have_text("live")
    await expect(page.locator("#removed tbody")).to_contain_text("no ORI is on remove status")

    await page.fill("#c-reason", "line work")
    await page.fill("#c-ori", "NYNLETS00")
    await page.fill("#c-keys", "am")
    await page.click("#c-remove")
    await expect(page.locator("#c-result")).to_have_text("remove_status done: NYNLETS00")
    row = page.locator('#removed tr[data-ori="NYNLETS00"]')
    await expect(row).to_contain_text("AM")
    await expect(row).to_contain_text("jane")
    assert (await az.send("AM.AZNLETS20.NY.TXT ARE YOU THERE")).ok
    sm = await az.receive(5)
    assert ".04." in sm and "DESTINATION: NY" in sm
    await page.fill("#c-until", "0300")
    await page.click("#c-out")
    await expect(page.locator("#c-result")).to_have_text("broadcast sent to 2 terminal(s)")
    for c in (az, ny):
        assert "NLETS TEMPORARILY OUT OF SERVICE UNTIL 0300 UTC" in await c.receive(5)
    await page.locator("#controls").scroll_into_view_if_needed()
    await page.screenshot(path=str(out / "console-controls.png"))
    await row.locator('button[data-action="lift"]').click()
    await expect(page.locator("#c-result")).to_have_text("lift_remove_status done: NYNLETS00")
    await expect(page.locator('#removed tr[data-ori="NYNLETS00"]')).to_have_count(0)
    await page.click("#c-in")
    for c in (az, ny):
        assert "NLETS IN SERVICE" in await c.receive(5)
    await page.fill("#c-until", "25")
    await page.click("#c-out")
    await expect(page.locator("#c-result")).to_have_text(
        "out-of-service needs until as HHMM (0000-2359)")
    assert audits == [("jane", "success", "remove_status"), ("jane", "success", "broadcast"),
                      ("jane", "success", "lift_remove_status"),
                      ("jane", "success", "broadcast")]
    await az.close()
    await ny.close()
