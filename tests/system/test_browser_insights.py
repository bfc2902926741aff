"""Spending insights in a real browser on ``chatbank up``'s chat page: the chart arrives as a
photo the page draws (a decoded PNG, not a broken image), with its caption under it, in English
and in Arabic (right to left). Screenshots 13 and 14 (``CHATBANK_SCREENSHOTS``) are the
README's."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.system.test_browser import CHROMIUM, Running, link_through_api, up

__all__ = ["up"]  # the fixture, imported for this module's test
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is missing (make test installs it: apt-get install chromium)",
    ),
]
MINE = ("13-insights.png", "14-arabic-insights.png")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CHATBANK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for name in MINE:  # only this test's own: other tests share the folder
        (folder / name).unlink(missing_ok=True)
    return folder


async def test_the_chart_is_shown_as_a_photo_with_its_numbers_in_english_and_arabic(
    up: Running, shots: Path
) -> None:
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        context = await browser.new_context(viewport={"width": 900, "height": 1000})
        page = await context.new_page()
        await page.goto(up.chat_url)

        async def send(text: str) -> None:
            await page.fill("#text", text)
            await page.press("#text", "Enter")

        async def chart_shown(caption: str) -> None:
            bubble = page.locator(".bubble", has_text=caption).last
            photo = bubble.locator("img.photo")
            await expect(photo).to_be_visible(timeout=20_000)
            await photo.evaluate("img => img.decode()")
            width = await photo.evaluate("img => img.naturalWidth")
            assert width == 800  # a drawn PNG, not a broken image
            await bubble.scroll_into_view_if_needed()

        for who, customer, text, caption, shot in (
            ("(en)", "demo1", "how did I spend last month", "Spending by category", MINE[0]),
            ("(ar)", "demo2", "كيف صرفت فلوسي الشهر الماضي", "الإنفاق حسب الفئة", MINE[1]),
        ):
            user = await page.locator("#user option", has_text=who).get_attribute("value")
            assert user is not None
            await page.select_option("#user", user)
            await link_through_api(up, int(user), customer)
            await send(text)
            await chart_shown(caption)
            await page.screenshot(path=shots / shot)
        direction = await page.evaluate(
            "getComputedStyle(document.querySelector('#log')).direction"
        )
        assert direction == "rtl"
        await browser.close()
    assert all((shots / name).exists() for name in MINE)
