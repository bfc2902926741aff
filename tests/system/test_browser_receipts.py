"""Real-time receipts in a real browser on ``chatbank up``: /link with receipts ticked, a card
payment booked at the bank (``chatbank demo pay``) arriving live as a receipt, a burst bundled,
a pending payment edited when it books, and Arabic receipts switched on with /receipts.
Screenshots are saved as ``receipts-*.png`` (``CHATBANK_SCREENSHOTS`` names the folder)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import pytest

from chatbank.demo import book_payments
from tests.system.test_browser import (
    _SLASH_POSITIONS,
    CHROMIUM,
    Running,
    link_through_api,
    up,
)

__all__ = ["up"]  # the fixture, shared with the demo's own browser test

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is missing"),
]


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CHATBANK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("receipts-*.png"):
        old.unlink()
    return folder


async def test_receipts_arrive_live_bundle_and_edit_in_a_browser(up: Running, shots: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = await browser.new_context(viewport={"width": 900, "height": 1000})
        page = await context.new_page()
        await page.goto(up.chat_url)

        async def send(text: str) -> None:
            await page.fill("#text", text)
            await page.press("#text", "Enter")

        bubbles = page.locator(".bubble:not(.mine)")
        receipts = page.locator(".bubble", has_text="🧾")  # (a burst may also raise an alert)
        await send("/link")
        await expect(bubbles.last).to_contain_text("Which bank")
        await page.get_by_role("button", name="Northwind Bank").click()
        await page.get_by_role("button", name="Real-time receipts").click()
        await expect(page.get_by_role("button", name="✅ 🧾 Real-time receipts")).to_be_visible()
        await page.get_by_role("button", name="Next").click()
        await page.get_by_role("button", name="90 days").click()
        await page.get_by_role("button", name="I agree, continue").click()
        async with context.expect_page() as opened:
            await page.get_by_role("link", name="Approve at Northwind Bank").click()
        bank = await opened.value
        await bank.fill("#username", "demo1")
        await bank.fill("#password", "pass-1")
        await bank.get_by_role("button", name="Log in").click()
        await bank.get_by_role("button", name="Approve").click()
        await bank.wait_for_load_state()
        await bank.close()
        await expect(bubbles.last).to_contain_text("is linked")

        answer = await book_payments(
            up.bank_url, "northwind", "demo1", merchant="Pret A Manger", amount="4.20"
        )
        assert answer["notified_apps"], answer
        receipt = receipts.filter(has_text="Pret A Manger")
        await expect(receipt).to_be_visible()  # pushed live: no reload
        await expect(receipt).to_contain_text("£4.20")
        await book_payments(up.bank_url, "northwind", "demo1", count=3)
        await expect(receipts.filter(has_text="3 payments at")).to_be_visible()
        pending = await book_payments(
            up.bank_url, "northwind", "demo1", merchant="Shell", amount="58.10", pending=True
        )
        shell = receipts.filter(has_text="£58.10")
        await expect(shell).to_contain_text("pending")
        await page.screenshot(path=shots / "receipts-1-live.png")
        tx = pending["payments"][0]["transaction_id"]
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{up.bank_url}/sandbox/banks/northwind/payments/{tx}/book") as resp,
        ):
            assert resp.status == 200
        await expect(shell).not_to_contain_text("pending")  # the same bubble, edited
        await page.screenshot(path=shots / "receipts-2-booked.png")

        omar = await page.locator("#user option", has_text="(ar)").get_attribute("value")
        assert omar is not None
        await page.select_option("#user", omar)
        await link_through_api(up, int(omar), "demo2")
        await send("/receipts")
        listing = page.locator(".bubble", has_text="/quiet")
        await expect(listing).to_be_visible()
        await listing.get_by_role("button").first.click()
        await expect(listing.get_by_role("button").first).to_contain_text("✅")
        await book_payments(up.bank_url, "northwind", "demo2", merchant="Carrefour", amount="35.50")
        await expect(receipts.filter(has_text="Carrefour")).to_be_visible()
        # right to left, every /command still reads "/quiet", its arguments in order after it
        slashes = await page.evaluate(_SLASH_POSITIONS)
        assert "/quiet" in {text for text, _, _ in slashes}, slashes
        assert all(slash_x < letter_x for _, slash_x, letter_x in slashes), slashes
        order = await listing.evaluate(
            """(el) => {
              const at = (word) => {
                const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
                for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                  const i = n.textContent.indexOf(word);
                  if (i >= 0) {
                    const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
                    return r.getBoundingClientRect().x;
                  }
                }
                return null;
              };
              return [at("/quiet"), at("22:00"), at("Europe")];
            }"""
        )
        assert order[0] < order[1] < order[2], order
        await page.screenshot(path=shots / "receipts-3-arabic.png")
        await browser.close()
    taken = await asyncio.to_thread(lambda: sorted(p.name for p in shots.glob("receipts-*.png")))
    assert len(taken) == 3, taken
