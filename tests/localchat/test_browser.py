"""The chat page in headless Chromium against a tiny real PTB bot: typing, the bot's bubble, an
inline button editing in place, a pushed message arriving live, right-to-left Arabic, and bot
HTML that never becomes anything but Telegram's own tags."""

from __future__ import annotations

import asyncio
import html
import itertools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import BadRequest
from telegram.ext import CallbackQueryHandler, ContextTypes, MessageHandler, filters

from localchat.app import create_app
from localchat.keys import STORE
from localchat.settings import Settings
from tests.localchat.browser import requires_chromium
from tests.localchat.ptb import running_bot

if TYPE_CHECKING:
    from playwright.async_api import Page

pytestmark = [pytest.mark.browser, requires_chromium]

TOKEN = "4242:browser"
ALICE, OMAR = 1001, 1002
MakeServer = Callable[..., Awaitable[TestServer]]
HOSTILE = (
    '<img src=x onerror="window.pwned=1"><b onclick="window.pwned=2">bold</b>'
    '<a href="javascript:window.pwned=3">js</a><a href="https://example.org/x">ok</a>'
    "<script>window.pwned=4</script><div><i>kept</i></div>"
)


async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    message = update.effective_message
    assert message is not None and message.text is not None
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Edit me", callback_data="edit")]])
    await message.reply_text(
        f"echo: <b>{html.escape(message.text)}</b>", parse_mode="HTML", reply_markup=keyboard
    )


async def edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer()
    await query.edit_message_text("edited: <i>done</i>", parse_mode="HTML")


async def _send(page: Page, text: str) -> None:
    await page.fill("#text", text)
    await page.press("#text", "Enter")


async def test_the_page_chats_edits_in_place_updates_live_and_sanitizes_bot_html(
    page: Page, shots: Path, aiohttp_server: MakeServer
) -> None:
    from playwright.async_api import expect

    server = await aiohttp_server(create_app(Settings(bot_token=TOKEN)), host="127.0.0.1")
    base = str(server.make_url(""))
    handlers = [MessageHandler(filters.TEXT, echo), CallbackQueryHandler(edit)]
    async with running_bot(base, TOKEN, handlers) as bot_app:
        await page.goto(base)
        await page.select_option("#user", str(ALICE))
        await page.evaluate("window.sameDocument = true")

        typed = "hi <img src=x onerror=window.pwned=1>"
        await _send(page, typed)
        await expect(page.locator(".bubble.mine .text").last).to_have_text(typed)
        bot_bubbles = page.locator(".bubble:not(.mine)")
        await expect(bot_bubbles).to_have_count(1)
        await expect(bot_bubbles.first.locator(".text")).to_have_text(f"echo: {typed}")
        await expect(bot_bubbles.first.locator(".text b")).to_have_text(typed)
        assert await page.locator("#log img").count() == 0
        await page.screenshot(path=shots / "localchat-1-echo.png")

        bubble_id = await bot_bubbles.first.get_attribute("id")
        await bot_bubbles.first.get_by_role("button", name="Edit me").click()
        edited = page.locator(f"#{bubble_id}")
        await expect(edited.locator(".text")).to_have_text("edited: done")
        await expect(edited.locator(".text i")).to_have_text("done")
        await expect(edited.locator(".edited")).to_be_visible()
        await expect(bot_bubbles).to_have_count(1)
        await page.screenshot(path=shots / "localchat-2-edited.png")

        await bot_app.bot.send_message(ALICE, "pushed <b>live</b>", parse_mode="HTML")
        await expect(bot_bubbles.last.locator(".text")).to_have_text("pushed live")
        with pytest.raises(BadRequest, match=r'(?i)unsupported start tag "img" at byte offset 0'):
            await bot_app.bot.send_message(ALICE, HOSTILE, parse_mode="HTML")

        # markup that slipped past the server (here: written into the store directly) is
        # still only text and Telegram's tags on the page
        store = server.app[STORE]
        store.add_message(ALICE, HOSTILE, from_bot=True).parse_mode = "HTML"
        await store.touch()
        hostile = bot_bubbles.last.locator(".text")
        await expect(hostile).to_have_text("boldjsokkept")
        inner = await hostile.inner_html()
        for banned in ("<img", "<script", "<div", "onerror", "onclick", "javascript:"):
            assert banned not in inner, inner
        assert await hostile.locator("a").count() == 1
        link = hostile.locator("a")
        assert await link.get_attribute("href") == "https://example.org/x"
        assert await link.get_attribute("rel") == "noopener noreferrer"
        assert await link.get_attribute("target") == "_blank"
        cleaned = await page.evaluate(
            """html => { const box = document.createElement("div");
                box.appendChild(window.localchatSanitize(html)); return box.innerHTML; }""",
            '<span class="tg-spoiler">s</span><a href="tg://user?id=1">u</a><svg onload=x()>',
        )
        assert cleaned == '<span class="tg-spoiler">s</span><a href="tg://user?id=1" ' + (
            'rel="noopener noreferrer" target="_blank">u</a>'
        )
        assert await page.evaluate("window.pwned") is None
        assert await page.evaluate("window.sameDocument") is True  # all of it without a reload
        await page.screenshot(path=shots / "localchat-3-pushed-and-sanitized.png")

        await page.select_option("#user", str(OMAR))
        await _send(page, "مرحبا")
        await expect(bot_bubbles.last.locator(".text")).to_have_text("echo: مرحبا")
        log = page.locator("#log")
        assert await log.get_attribute("dir") == "rtl"
        assert await log.evaluate("el => getComputedStyle(el).direction") == "rtl"
        # a command typed on the Arabic page reads "/start", not "start/": the person's own
        # bubble takes its direction from its text, the page stays right-to-left
        await _send(page, "/start")
        mine = page.locator(".bubble.mine .text").last
        await expect(mine).to_have_text("/start")
        # to_have_css retries: the page re-renders the log on every change, so an element
        # handle taken a moment earlier may already be detached
        await expect(mine).to_have_css("direction", "ltr")
        arabic = page.locator(".bubble.mine .text", has_text="مرحبا").last
        await expect(arabic).to_have_css("direction", "rtl")
        await page.screenshot(path=shots / "localchat-4-arabic-rtl.png")
    _check_shots(shots)


def _check_shots(shots: Path) -> None:
    names = {p.name for p in shots.glob("localchat-*.png")}
    expected = ("1-echo", "2-edited", "3-pushed-and-sanitized", "4-arabic-rtl")
    assert {f"localchat-{n}.png" for n in expected} <= names, names


# For every left-to-right token (a date, time, amount, account ending, /command, Latin name) in
# the bot's bubbles: the x of each of its characters as Chromium drew them, per text node. Bidi
# controls are skipped (they draw nothing) but may sit inside a token, as Babel puts them.
DRAWN_TOKENS = r"""() => {
  const token = new RegExp("[/0-9A-Za-z£$€+\\-−]" +
    "(?:[0-9A-Za-z£$€/:.,+\\-−\u200e\u200f\u061c\u2066-\u2069]*[0-9A-Za-z£$€])?", "g");
  const control = /[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]/;
  const out = [];
  for (const bubble of document.querySelectorAll(".bubble:not(.mine) .text")) {
    const walker = document.createTreeWalker(bubble, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(token)) {
        const chars = [];
        for (let i = 0; i < m[0].length; i++) {
          if (control.test(m[0][i])) continue;
          const range = document.createRange();
          range.setStart(node, m.index + i);
          range.setEnd(node, m.index + i + 1);
          const rect = range.getClientRects()[0];
          if (rect) chars.push([m[0][i], rect.x, rect.y]);
        }
        out.push([m[0].replace(new RegExp(control, "g"), ""), chars]);
      }
    }
  }
  return out;
}"""


def misdrawn(tokens: list[tuple[str, list[tuple[str, float, float]]]]) -> list[str]:
    """Tokens whose characters are not drawn left to right in the order they are written (on
    one line), shown as drawn."""
    wrong = []
    for text, chars in tokens:
        for (_, x1, y1), (_, x2, y2) in itertools.pairwise(chars):
            if abs(y1 - y2) < 3 and x2 <= x1:
                drawn = "".join(c for c, _, _ in sorted(chars, key=lambda c: (round(c[2]), c[1])))
                wrong.append(f"{text!r} drawn as {drawn!r}")
                break
    return wrong


async def test_arabic_bubbles_draw_dates_times_amounts_endings_and_commands_in_order(
    page: Page, shots: Path, tmp_path: Path, sqlite_url: str
) -> None:
    """Omar (Arabic) links a bank, reads balances and transactions, gets a fraud alert and
    reads the access log; then every left-to-right token on his page is checked where it is
    drawn, character by character."""
    from playwright.async_api import expect

    from tests.bot.system import start_system, stop_system
    from tests.bot.test_alerts_and_privacy import inject_fraud
    from tests.bot.test_conversations import link_bank

    system = await start_system(tmp_path, sqlite_url)
    try:
        await link_bank(system, OMAR)
        await system.say(OMAR, "/balance", lambda t: "£" in t)
        await system.say(OMAR, "/transactions", lambda t: "/20" in t)
        before = {m["message_id"] for m in await system.chat.messages(OMAR)}
        await inject_fraud(system)
        alert = await system.expect(OMAR, lambda t: "Luxe Watches" in t, before)
        privacy = await system.say(OMAR, "/privacy", lambda t: "pv:log" not in t)
        await system.press(OMAR, privacy, "pv:log", lambda t: "🔗" in t)
        assert "/unfreeze" not in alert["text"]
        await page.goto(str(system.localchat.make_url("")))
        await page.select_option("#user", str(OMAR))
        bubbles = page.locator(".bubble:not(.mine)")
        await expect(bubbles.last).to_contain_text("🔗")
        tokens = await page.evaluate(DRAWN_TOKENS)
        await page.screenshot(path=shots / "localchat-5-arabic-drawn-order.png", full_page=True)
    finally:
        await stop_system(system)
    texts = [text for text, _ in tokens]
    kinds = {
        "date": r"^\d{1,2}/\d{1,2}/\d{4}$",
        "time": r"^\d{1,2}:\d{2}$",
        "amount": r"^[−+-]?[\d,]+\.\d{2}$",
        "ending": r"^\d{4}$",
        "command": r"^/[a-z]+$",
    }
    for kind, pattern in kinds.items():
        assert any(re.match(pattern, t) for t in texts), (kind, texts)
    assert len([t for t in texts if re.match(kinds["date"], t)]) >= 5, texts
    assert misdrawn(tokens) == []


async def test_the_page_hints_on_first_visit_shows_times_files_and_waits_on_pressed_buttons(
    page: Page, shots: Path, aiohttp_server: MakeServer
) -> None:
    """No bot here: the test plays the bot through the Bot API, so every step is controlled."""
    from playwright.async_api import expect

    server = await aiohttp_server(create_app(Settings(bot_token=TOKEN)), host="127.0.0.1")
    base = str(server.make_url("")).rstrip("/")
    zofia = 1003
    async with aiohttp.ClientSession() as http:

        async def bot(method: str, **params: object) -> dict[str, object]:
            async with http.post(f"{base}/bot{TOKEN}/{method}", json=params) as resp:
                body: dict[str, object] = await resp.json()
                assert body["ok"], body
                return body

        await page.goto(base)
        await page.select_option("#user", str(zofia))
        hint = page.locator("#hint")
        await expect(hint).to_contain_text("Przywitaj się")  # in the person's language
        await page.screenshot(path=shots / "localchat-6-first-visit-hint.png")
        await hint.get_by_role("button", name="/start").click()
        await expect(page.locator(".bubble.mine .text")).to_have_text("/start")
        await expect(hint).to_have_count(0)

        keyboard = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
        sent = await bot("sendMessage", chat_id=zofia, text="Pick", reply_markup=keyboard)
        result = sent["result"]
        assert isinstance(result, dict)
        bubble = page.locator(f"#m{result['message_id']}")
        await expect(bubble.locator("time")).to_have_text(re.compile(r"^\d{1,2}:\d{2}"))
        go = bubble.get_by_role("button", name="Go")
        await go.click()
        await expect(go).to_be_disabled()  # waiting for the bot, as Telegram shows a spinner
        updates = server.app[STORE].updates
        async with asyncio.timeout(5):
            while not (updates and "callback_query" in updates[-1]):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        await expect(go).to_be_disabled()  # still waiting: the bot has not answered yet
        query = updates[-1]["callback_query"]
        await bot("answerCallbackQuery", callback_query_id=query["id"], text="Zrobione")
        await expect(go).to_be_enabled()
        await expect(page.locator(".toast")).to_have_text("Zrobione")
        await bot("editMessageText", chat_id=zofia, message_id=result["message_id"], text="Done")
        await expect(bubble.locator(".text")).to_have_text("Done")
        await expect(bubble.get_by_role("button")).to_have_count(0)  # the ended flow's buttons
        await expect(bubble.locator(".edited")).to_be_visible()

        form = aiohttp.FormData()
        form.add_field("chat_id", str(zofia))
        form.add_field("caption", "Twoje dane")
        form.add_field(
            "document", b'{"a": 1}', filename="export.json", content_type="application/json"
        )
        async with http.post(f"{base}/bot{TOKEN}/sendDocument", data=form) as resp:
            assert resp.status == 200
        link = page.locator(".bubble .document")
        await expect(link).to_contain_text("export.json")
        href = await link.get_attribute("href")
        assert href is not None and await link.get_attribute("download") == "export.json"
        async with http.get(base + href) as resp:
            assert await resp.read() == b'{"a": 1}'
        await page.screenshot(path=shots / "localchat-7-times-and-file.png")
