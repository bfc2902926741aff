"""A real python-telegram-bot Application, unchanged, talks to localchat over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
)

from localchat.app import create_app
from localchat.settings import Settings
from localchat.testing import ChatDriver, Message

TOKEN = "4242:end-to-end"
ALICE = 1001
MakeServer = Callable[..., Awaitable[TestServer]]


async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None
    keyboard = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Balances", callback_data="balances")],
            [InlineKeyboardButton("Help", url="https://example.org/help")],
        ]
    )
    await update.effective_message.reply_text(
        "<b>Welcome</b>", parse_mode="HTML", reply_markup=keyboard
    )


async def pressed(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    query = update.callback_query
    assert query is not None
    await query.answer("Loading")
    await query.edit_message_text(f"You chose {query.data}")


@pytest.fixture
async def server(aiohttp_server: MakeServer) -> TestServer:
    return await aiohttp_server(create_app(Settings(bot_token=TOKEN)), host="127.0.0.1")


@pytest.fixture
async def bot_app(server: TestServer) -> AsyncIterator[Application[Any, Any, Any, Any, Any, Any]]:
    base = str(server.make_url("")).rstrip("/")
    app = (
        ApplicationBuilder()
        .token(TOKEN)
        .base_url(f"{base}/bot")
        .base_file_url(f"{base}/file/bot")
        .build()
    )
    app.add_handler(CommandHandler("start", start))
    app.add_handler(CallbackQueryHandler(pressed))
    await app.initialize()
    await app.start()
    assert app.updater is not None
    await app.updater.start_polling(poll_interval=0.0, timeout=1)
    yield app
    await app.updater.stop()
    await app.stop()
    await app.shutdown()


def _bot_messages(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m["from_bot"]]


async def test_start_shows_a_keyboard_and_pressing_it_edits_the_message_in_place(
    server: TestServer, bot_app: Application[Any, Any, Any, Any, Any, Any]
) -> None:
    async with ChatDriver(str(server.make_url(""))) as chat:
        await chat.send(ALICE, "/start")
        messages = await chat.wait_for(ALICE, lambda ms: bool(_bot_messages(ms)), timeout=10)
        welcome = _bot_messages(messages)[0]
        assert welcome["text"] == "<b>Welcome</b>" and welcome["parse_mode"] == "HTML"
        rows = welcome["reply_markup"]["inline_keyboard"]
        assert rows[0][0]["callback_data"] == "balances"
        assert rows[1][0]["url"] == "https://example.org/help"

        query_id = await chat.press(ALICE, welcome["message_id"], "balances")
        messages = await chat.wait_for(
            ALICE, lambda ms: any(m["edit_count"] == 1 for m in ms), timeout=10
        )
        edited = _bot_messages(messages)[0]
        assert edited["text"] == "You chose balances"
        assert edited["message_id"] == welcome["message_id"]
        answers = await chat.callback_answers()
        assert answers == [{"callback_query_id": query_id, "text": "Loading", "show_alert": False}]
