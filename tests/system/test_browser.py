"""The whole demo in a real browser: ``chatbank up``'s chat page, linking a bank at the bank's
own approval page, the balance, a fraud alert arriving live, "Not me: freeze card", and the
Arabic page laid out right-to-left. A screenshot is saved per step (``CHATBANK_SCREENSHOTS``
names the folder; otherwise the test's temporary folder)."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from bank_mock.settings import BankSettings
from bot.settings import BotSettings
from chatbank.demo import inject_fraud
from chatbank.run import run_up
from consent.settings import BrokerSettings
from localchat.settings import Settings as LocalchatSettings

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's Chromium is missing (make test installs it: apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Running:
    chat_url: str
    bank_url: str


@pytest.fixture
async def up(tmp_path: Path) -> AsyncIterator[Running]:
    bank_port, broker_port, chat_port, bot_port = (_free_port() for _ in range(4))
    stop = asyncio.Event()
    task = asyncio.create_task(
        run_up(
            tmp_path / "data",
            bank=BankSettings(port=bank_port, customers_per_bank=3),
            broker=BrokerSettings(port=broker_port),
            bot=BotSettings(port=bot_port, poll_timeout_s=1),
            chat=LocalchatSettings(port=chat_port),
            stop=stop,
        )
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            try:
                async with http.get(f"http://127.0.0.1:{bot_port}/healthz") as resp:
                    if resp.status == 200:
                        break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("chatbank up never became ready")
    yield Running(f"http://127.0.0.1:{chat_port}/", f"http://127.0.0.1:{bank_port}")
    stop.set()
    await asyncio.wait_for(task, 20)


# [command, x of its slash, x of the letter after it] for every /command shown in the chat
_SLASH_POSITIONS = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.querySelector("#log"), NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const m of node.textContent.matchAll(/\\/[a-z]+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index); range.setEnd(node, m.index + 1);
      const slash = range.getBoundingClientRect().x;
      range.setStart(node, m.index + 1); range.setEnd(node, m.index + 2);
      out.push([m[0], slash, range.getBoundingClientRect().x]);
    }
  }
  return out;
}"""


MINE = {f"{i:02d}" for i in (*range(1, 9), 10, 11, 12)}  # 09 is the bank page test's


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CHATBANK_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):  # only this test's own: other tests share the folder
        if old.name[:2] in MINE:
            old.unlink()
    return folder


async def test_the_demo_works_in_a_browser_from_link_to_frozen_card(
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

        bubbles = page.locator(".bubble:not(.mine)")
        await send("/start")
        await expect(bubbles.last).to_contain_text("Welcome to chatbank")
        await page.screenshot(path=shots / "01-welcome.png")

        await send("/link")
        await expect(bubbles.last).to_contain_text("Which bank")
        await page.get_by_role("button", name="Northwind Bank").click()
        await page.get_by_role("button", name="Next").click()
        await page.get_by_role("button", name="90 days").click()
        await expect(bubbles.last).to_contain_text("Before you approve")
        await page.screenshot(path=shots / "02-disclosure.png")
        await page.get_by_role("button", name="I agree, continue").click()

        async with context.expect_page() as opened:
            await page.get_by_role("link", name="Approve at Northwind Bank").click()
        bank = await opened.value
        await bank.fill("#username", "demo1")
        await bank.fill("#password", "pass-1")
        await bank.get_by_role("button", name="Log in").click()
        await expect(bank.get_by_role("button", name="Approve")).to_be_visible()
        await bank.screenshot(path=shots / "03-bank-approval.png")
        await bank.get_by_role("button", name="Approve").click()
        await bank.wait_for_load_state()
        await bank.screenshot(path=shots / "04-back-from-bank.png")
        await bank.close()

        await expect(bubbles.last).to_contain_text("is linked")
        await send("/balance")
        await expect(bubbles.last).to_contain_text("Your balances")
        await expect(bubbles.last).to_contain_text("£")
        await page.screenshot(path=shots / "05-balance.png")

        answer = await inject_fraud(up.bank_url, "northwind", "demo1")
        assert answer["alerts"]
        alert = page.locator(".bubble", has_text="Was this you?")
        await expect(alert).to_be_visible()  # pushed live: no reload
        await page.screenshot(path=shots / "06-fraud-alert.png")
        await alert.get_by_role("button", name="Not me: freeze card").click()
        frozen = page.locator(".bubble", has_text="card is frozen")
        await expect(frozen).to_be_visible()
        await expect(frozen).to_contain_text("Luxe Watches")  # the alert keeps its story
        await expect(frozen.get_by_role("button", name="Unfreeze card")).to_be_visible()
        await page.screenshot(path=shots / "07-card-frozen.png")

        omar = await page.locator("#user option", has_text="(ar)").get_attribute("value")
        assert omar is not None
        await page.select_option("#user", omar)
        await send("/start")
        await expect(bubbles.last).to_contain_text("مرحبًا بك في chatbank")
        direction = await page.evaluate(
            "getComputedStyle(document.querySelector('#log')).direction"
        )
        assert direction == "rtl"
        # in right-to-left text every /command must still read "/link", not "link/": the slash
        # is laid out left of the letter after it (the bot isolates commands, the person's own
        # bubble takes its direction from its text)
        slashes = await page.evaluate(_SLASH_POSITIONS)
        assert {text for text, _, _ in slashes} >= {"/start", "/link", "/privacy"}, slashes
        assert all(slash_x < letter_x for _, slash_x, letter_x in slashes), slashes
        await page.screenshot(path=shots / "08-arabic-rtl.png")

        # Omar links another customer through the chat API (his page shows it all live)
        await link_through_api(up, int(omar), "demo2")
        await send("/balance")
        await expect(bubbles.last).to_contain_text("£")
        await page.screenshot(path=shots / "10-arabic-balance.png")
        await send("/transactions")
        await expect(bubbles.last).to_contain_text("/2026")
        await page.screenshot(path=shots / "11-arabic-transactions.png")
        answer = await inject_fraud(up.bank_url, "northwind", "demo2", merchant="Gold Bazaar")
        assert answer["alerts"], answer
        arabic_alert = page.locator(".bubble", has_text="Gold Bazaar")
        await expect(arabic_alert).to_be_visible()
        await arabic_alert.get_by_role("button").last.click()  # "not me: freeze card"
        await expect(arabic_alert.get_by_role("button")).to_have_count(1)  # unfreeze
        await page.screenshot(path=shots / "12-arabic-alert-frozen.png")
        shown = await bubbles.count()
        await send("/unfreeze")
        await expect(bubbles).to_have_count(shown + 1)  # the offer, not the alert's own button
        offer = bubbles.last
        await expect(offer.get_by_role("button")).to_have_count(1)
        await offer.get_by_role("button").click()
        await expect(offer).to_contain_text("🔓")
        await expect(offer.get_by_role("button")).to_have_count(0)
        await browser.close()
    taken = await asyncio.to_thread(lambda: sorted(p.name for p in shots.glob("*.png")))
    assert {name[:2] for name in taken} >= MINE, taken


async def link_through_api(up: Running, user: int, customer: str) -> None:
    """/link → Northwind → Next → the shortest period → I agree, pressed through localchat's
    test API; then the bank's sandbox approves for ``customer`` and the broker's callback
    lands."""
    from yarl import URL

    from localchat.testing import ChatDriver

    async with ChatDriver(up.chat_url) as chat:

        def first(message: dict[str, object], prefix: str) -> str | None:
            markup = message.get("reply_markup")
            rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else []
            for row in rows:
                for b in row:
                    if str(b.get("callback_data", "")).startswith(prefix) or (
                        prefix == "url" and b.get("url")
                    ):
                        return str(b.get("url") or b["callback_data"])
            return None

        async def offered(after: int, prefix: str) -> dict[str, object]:
            """The newest bot message after ``after`` that has a ``prefix`` button."""

            def found(ms: list[dict[str, object]]) -> bool:
                return any(
                    m["from_bot"] and int(str(m["message_id"])) > after and first(m, prefix)
                    for m in ms
                )

            messages = await chat.wait_for(user, found)
            return next(
                m
                for m in reversed(messages)
                if m["from_bot"] and int(str(m["message_id"])) > after and first(m, prefix)
            )

        last = max([int(str(m["message_id"])) for m in await chat.messages(user)] or [0])
        await chat.send(user, "/link")
        steps = ("lk:bank:northwind", "lk:next", "lk:days:", "lk:ok", "url")
        picker = await offered(last, steps[0])
        for prefix, following in itertools.pairwise(steps):
            await chat.press(user, int(str(picker["message_id"])), str(first(picker, prefix)))
            picker = await offered(last, following)
        url = URL(str(first(picker, "url")))
    bank_id = url.path.split("/")[2]
    async with aiohttp.ClientSession() as http:
        approve = await http.post(
            f"{up.bank_url}/sandbox/banks/{bank_id}/consents/{url.query['consent_id']}/approve",
            json={
                "username": customer,
                "redirect_uri": url.query["redirect_uri"],
                "code_challenge": url.query["code_challenge"],
                "scopes": url.query["scope"].split(),
            },
        )
        code = (await approve.json())["code"]
        async with http.get(
            url.query["redirect_uri"], params={"state": url.query["state"], "code": code}
        ) as landing:
            assert landing.status == 200
