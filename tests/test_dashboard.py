"""The live dashboard in a real headless Chromium (Debian's chromium): no reloads, SSE only."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from nlets_switch.tools.client import Client

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
            pg = await browser.new_page()
            pg.set_default_timeout(5000)
            yield pg
        finally:
            await browser.close()


async def test_dashboard_shows_sign_on_and_routing_live(monitored: MonitoredFactory,
                                                        page: Any) -> None:
    from playwright.async_api import expect

    sw, mon = await monitored()
    assert mon.http_address is not None
    h, p = mon.http_address
    loads: list[str] = []
    page.on("load", lambda _: loads.append("load"))
    await page.goto(f"http://{h}:{p}/")
    await expect(page.locator("#conn")).to_have_text("live")
    # New York's control terminal is the NY tile of the map (no longer a table row).
    ny_row = page.locator('#links [data-ori="NYNLETS00"]')
    await expect(ny_row).to_have_attribute("data-state", "offline")

    host, port = sw.addresses[0]
    ny = await Client.connect(host, port, "NYNLETS00")
    az = await Client.connect(host, port, "AZNLETS20")
    await expect(ny_row).to_have_attribute("data-state", "online")
    await expect(ny_row.locator("title")).to_have_text("NYNLETS00 online")

    assert (await az.send("AM.AZNLETS20.NY.TXT DASHBOARD SECRET")).ok
    assert "DASHBOARD SECRET" in await ny.receive(5)
    routed = page.locator('#events li[data-event="routed"][data-key="AM"]')
    await expect(routed).to_have_count(1)
    await expect(routed).to_contain_text("AZNLETS20 → NYNLETS00")
    await expect(page.locator('#events li[data-event="delivered"][data-key="AM"]')).to_have_count(1)
    # The per-key table and counters follow from the stats stream (every second).
    await expect(page.locator('#rates tr[data-key="AM"] td').nth(2)).to_have_text("1")
    await expect(page.locator("#delivered")).to_have_text("1")
    await expect(page.locator("#links-online")).to_have_text("2")

    # A rejected message makes an ER: the ER total moves.
    assert (await az.send("ZZ.AZNLETS20.NY.TXT NOT A KEY")).ok
    await expect(page.locator('#events li[data-event="rejected"]')).to_have_count(1)
    await expect(page.locator("#er-total")).to_have_text("1")

    await ny.close()
    await expect(ny_row).to_have_attribute("data-state", "offline")
    assert "SECRET" not in await page.content()
    assert loads == ["load"], "the page must update without reloading"
    await az.close()


async def test_dashboard_signs_in_once_with_a_token(monitored: MonitoredFactory,
                                                    page: Any) -> None:
    """With API tokens configured the page asks for one, then lives on a session cookie."""
    from playwright.async_api import expect

    token = "dashboard-token-0123456789"
    sw, mon = await monitored({"api": {"tokens": [{"name": "ops", "token": token}]}})
    assert mon.http_address is not None
    h, p = mon.http_address
    await page.goto(f"http://{h}:{p}/")
    await expect(page.locator("#signin")).to_be_visible()
    await expect(page.locator("#conn")).to_have_text("signed out")

    await page.fill("#signin-token", "not-the-token-0123456789")
    await page.click("#signin button")
    await expect(page.locator("#signin-error")).to_have_text("that token is not valid")

    await page.fill("#signin-token", token)
    await page.click("#signin button")
    await expect(page.locator("#conn")).to_have_text("live")
    await expect(page.locator("#signin")).to_be_hidden()
    cookies = await page.context.cookies()
    (cookie,) = [c for c in cookies if c["name"] == "nlets_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert token not in cookie["value"]

    # Live events flow on the session; a reload needs no token again.
    host, port = sw.addresses[0]
    ny = await Client.connect(host, port, "NYNLETS00")
    ny_row = page.locator('#links [data-ori="NYNLETS00"]')
    await expect(ny_row).to_have_attribute("data-state", "online")
    await page.reload()
    await expect(page.locator("#conn")).to_have_text("live")
    await expect(page.locator("#signin")).to_be_hidden()
    await ny.close()
