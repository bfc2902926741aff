"""Webhook mode: Telegram (here localchat) calls the bot, and the secret token is checked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.bot.system import ALICE, System, start_system, stop_system
from tests.bot.test_conversations import link_bank

SECRET = "telegram-secret-token-for-tests"


@pytest.fixture
async def hooked(tmp_path: Path, sqlite_url: str) -> AsyncIterator[System]:
    system = await start_system(tmp_path, sqlite_url, webhook_secret=SECRET)
    yield system
    await stop_system(system)


async def test_the_bot_answers_through_its_webhook(hooked: System) -> None:
    assert hooked.runtime.application is not None
    assert hooked.runtime.application.updater is None  # no polling at all
    await link_bank(hooked, ALICE)
    reply = await hooked.say(ALICE, "/balance", lambda t: "balances" in t.lower())
    assert "Northwind" in reply["text"]


@pytest.mark.parametrize("secret", [None, "wrong-secret"])
async def test_calls_without_the_secret_token_are_refused(
    hooked: System, secret: str | None
) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    update = {
        "update_id": 1,
        "message": {
            "message_id": 1,
            "date": 0,
            "text": "/start",
            "chat": {"id": ALICE, "type": "private"},
        },
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(hooked.runtime.telegram_webhook_url(), json=update, headers=headers) as resp,
    ):
        assert resp.status == 403
    assert await hooked.chat.messages(ALICE) == []


NOT_UPDATES = [
    b"not json",
    b"[]",
    b"[1, 2]",
    b"42",
    b'"update"',
    b"null",
    b"{}",
    b'{"update_id": "1"}',
]


async def test_any_json_that_is_not_an_update_is_a_400(hooked: System) -> None:
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    async with aiohttp.ClientSession() as http:
        for body in NOT_UPDATES:
            url = hooked.runtime.telegram_webhook_url()
            async with http.post(url, data=body, headers=headers) as resp:
                assert resp.status == 400, body
                assert (await resp.json())["error"] == "bad_update"
