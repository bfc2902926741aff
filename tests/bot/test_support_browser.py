"""Talk to a person at the bank, in two browsers: a member of Nakheel Bank's staff answers at the
agent console while the customer writes in Arabic in the chat page. The agent's card number is
masked at the bank (the console says so), and the customer's card number is deleted from the
chat with a warning. Screenshots of both sides are saved (``CHATBANK_SCREENSHOTS``)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bank_mock.keys import BANKS
from bank_mock.support import DESK
from tests.bot.system import OMAR, System
from tests.bot.test_conversations import link_bank
from tests.localchat.browser import page, requires_chromium, shots

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["page", "shots"]
pytestmark = [pytest.mark.browser, requires_chromium]

PAN = "4539578763621486"
SPACED = "4539 5787 6362 1486"


async def _say(chat: Page, text: str) -> None:
    await chat.fill("#text", text)
    await chat.press("#text", "Enter")


async def test_an_agent_answers_at_the_console_and_the_customer_replies_in_arabic(
    system: System, page: Page, shots: Path
) -> None:
    from playwright.async_api import expect

    system.env.clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday, desks open
    await link_bank(system, OMAR, "nakheel")
    chat = page
    await chat.goto(str(system.localchat.make_url("/")))
    await chat.select_option("#user", str(OMAR))
    bot = chat.locator(".bubble:not(.mine) .text")
    await _say(chat, "أريد التحدث مع موظف")
    await expect(bot.last).to_contain_text("Nakheel Bank")
    await expect(bot.last).to_contain_text("/balance")
    await _say(chat, "خُصم المبلغ من بطاقتي مرتين")
    await expect(bot.last).to_contain_text("🕘")  # nobody at the console yet: kept, and when

    # the bank's staff, in another tab: their own login, the queue, the conversation
    console = await page.context.new_page()
    bank_url = str(system.env.bank.make_url("/banks/nakheel/agent"))
    await console.goto(bank_url)
    await console.get_by_label("Staff username").fill("agent1")
    await console.get_by_label("Password").fill("agent-demo")
    await console.get_by_role("button", name="Log in").click()
    customer = system.env.bank_app[BANKS]["nakheel"].customers_by_username["demo1"]
    await console.get_by_role("link", name=customer.full_name).click()
    await expect(console.locator("aside")).to_contain_text(customer.email)  # the bank's profile
    await expect(console.locator("#log")).to_contain_text("خُصم المبلغ من بطاقتي مرتين")
    await console.get_by_role("button", name="Take this conversation").click()
    await expect(bot.last).to_contain_text("ليلى")  # joined
    # a canned answer fills the box; the agent adds a card number: masked before it leaves
    await console.locator("[data-canned]").first.click()
    await expect(console.locator("#text")).to_have_value(re.compile("thank you for contacting"))
    await console.fill("#text", f"Is it the card {PAN}?")
    await console.get_by_role("button", name="Send", exact=True).click()
    await expect(console.locator("#dlp-note")).to_be_visible()
    await expect(console.locator("#log")).to_contain_text("•••• 1486")
    await expect(console.locator("#log")).not_to_contain_text(PAN)
    await expect(bot.last).to_contain_text("•••• 1486")
    await expect(bot.last).to_contain_text("ممثل")  # labelled as the bank's representative
    assert PAN not in await chat.locator("#log").inner_text()

    # the customer answers in Arabic: it appears at the console (the page polls)
    await _say(chat, "نعم، هذه بطاقتي. شكرًا")
    await expect(console.locator("#log")).to_contain_text("نعم، هذه بطاقتي. شكرًا")
    # a full card number typed in the chat is deleted, with a warning; the bank never sees it
    await _say(chat, f"رقم بطاقتي {SPACED}")
    await expect(bot.last).to_contain_text("🛑")
    await expect(chat.locator("#log")).not_to_contain_text(SPACED)
    (conv,) = system.env.bank_app[DESK].conversations.values()
    assert not any(
        "1486" in m.text
        for m in system.env.bank_app[DESK].messages[conv.conversation_id]
        if m.role == "customer"
    )
    await console.reload()
    await expect(console.locator("#log")).to_contain_text("نعم، هذه بطاقتي. شكرًا")
    await console.screenshot(path=shots / "13-support-agent-console.png", full_page=True)
    await chat.screenshot(path=shots / "14-support-chat-arabic.png", full_page=True)

    # closing asks for a rating in the chat
    await console.get_by_role("button", name="Close and ask for a rating").click()
    await expect(bot.last).to_contain_text("ليلى")
    await chat.get_by_role("button", name="★★★★★", exact=True).click()
    await expect(bot.last).to_contain_text("★★★★★")
    await _rated(system)


async def _rated(system: System) -> None:
    """The rating reached the bank."""
    (conv,) = system.env.bank_app[DESK].conversations.values()
    async with asyncio.timeout(10):
        while conv.rating != 5:  # noqa: ASYNC110 - the bank's state, in this process
            await asyncio.sleep(0.05)
