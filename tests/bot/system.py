"""The whole system on 127.0.0.1 for the bot's end-to-end tests: a real mock bank, a real
broker, localchat as the Bot API, and the real bot Application polling it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestServer
from yarl import URL

from bot.runtime import BotRuntime
from bot.settings import BotSettings
from localchat.app import create_app as create_localchat
from localchat.settings import Settings as LocalchatSettings
from localchat.testing import ChatDriver, Message
from tests.consent.broker_env import ADMIN, Env, free_port, start, stop

TOKEN = "4242:bot-end-to-end"
ALICE, OMAR, ZOFIA = 1001, 1002, 1003  # en, ar, pl in localchat's demo users


class Recorder(logging.Handler):
    """Keeps every formatted log line, for the privacy scan."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class System:
    env: Env
    chat: ChatDriver
    runtime: BotRuntime
    localchat: TestServer
    bot_db: Path
    received: list[tuple[str, bytes]] = field(default_factory=list)

    def bot_messages(self, messages: list[Message]) -> list[Message]:
        return [m for m in messages if m["from_bot"]]

    async def say(
        self, user: int, text: str, expect: Callable[[str], bool], wait_s: float = 10
    ) -> Message:
        """Send ``text`` as ``user`` and return the first new bot message whose text matches."""
        before = {m["message_id"] for m in await self.chat.messages(user)}
        await self.chat.send(user, text)
        return await self.expect(user, expect, before, wait_s)

    async def expect(
        self,
        user: int,
        match: Callable[[str], bool],
        before: set[int] | None = None,
        wait_s: float = 10,
    ) -> Message:
        seen = before or set()

        def found(ms: list[Message]) -> bool:
            return any(
                m["from_bot"] and m["message_id"] not in seen and match(m["text"]) for m in ms
            )

        messages = await self.chat.wait_for(user, found, timeout=wait_s)
        return next(
            m
            for m in messages
            if m["from_bot"] and m["message_id"] not in seen and match(m["text"])
        )

    async def press(
        self, user: int, message: Message, data: str, expect: Callable[[str], bool]
    ) -> Message:
        """Press a button and wait until some bot message (edited or new) matches."""
        before_texts = {(m["message_id"], m["text"]) for m in await self.chat.messages(user)}
        await self.chat.press(user, message["message_id"], data)

        def found(ms: list[Message]) -> bool:
            return any(
                m["from_bot"]
                and (m["message_id"], m["text"]) not in before_texts
                and expect(m["text"])
                for m in ms
            )

        messages = await self.chat.wait_for(user, found, timeout=10)
        return next(
            m
            for m in messages
            if m["from_bot"]
            and (m["message_id"], m["text"]) not in before_texts
            and expect(m["text"])
        )

    async def approve_at_bank(self, url: str, username: str = "demo1") -> None:
        """Do what the customer does on the bank's page: log in and approve (sandbox)."""
        parsed = URL(url)
        bank_id = parsed.path.split("/")[2]
        approve = await self.env.bank.post(
            f"/sandbox/banks/{bank_id}/consents/{parsed.query['consent_id']}/approve",
            json={
                "username": username,
                "redirect_uri": parsed.query["redirect_uri"],
                "code_challenge": parsed.query["code_challenge"],
                "scopes": parsed.query["scope"].split(),
            },
        )
        assert approve.status == 200, await approve.text()
        code = (await approve.json())["code"]
        landing = await self.env.broker.get(
            f"/callback/{bank_id}", params={"state": parsed.query["state"], "code": code}
        )
        assert landing.status == 200, await landing.text()


def buttons(message: Message) -> list[dict[str, Any]]:
    markup = message.get("reply_markup") or {}
    return [b for row in markup.get("inline_keyboard", []) for b in row]


def button(message: Message, prefix: str) -> str:
    for b in buttons(message):
        if str(b.get("callback_data", "")).startswith(prefix):
            return str(b["callback_data"])
    raise AssertionError(f"no button {prefix!r} in {buttons(message)!r}")


def url_button(message: Message) -> str:
    for b in buttons(message):
        if b.get("url"):
            return str(b["url"])
    raise AssertionError(f"no URL button in {buttons(message)!r}")


async def start_system(
    tmp_path: Path,
    database_url: str,
    bot_database_url: str | None = None,
    *,
    webhook_secret: str | None = None,
    public_urls: dict[str, str] | None = None,
    link_timeout_s: float = 900.0,
) -> System:
    """Everything up; with ``webhook_secret`` the bot runs in webhook mode (Telegram calls it);
    ``public_urls`` ({"bank", "broker", "bot"}; "{port}" in the bot's is its port) are the
    addresses people and Telegram see."""
    public = public_urls or {}
    env = await start(
        tmp_path,
        database_url,
        bank_public_url=public.get("bank", ""),
        broker_public_url=public.get("broker", ""),
    )
    localchat = TestServer(create_localchat(LocalchatSettings(bot_token=TOKEN)), host="127.0.0.1")
    await localchat.start_server()
    bot_port = free_port()
    bot_url = public.get("bot", "http://127.0.0.1:{port}").format(port=bot_port)
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "chatbank-bot", "webhook_url": f"{bot_url}/broker/events"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    registered = await resp.json()
    env.credential = registered["credential"]
    bot_db = tmp_path / "bot.db"
    received: list[tuple[str, bytes]] = []

    def observe(path: str, body: bytes) -> None:
        received.append((path, body))

    settings = BotSettings(
        token=TOKEN,
        api_base_url=str(localchat.make_url("/bot")),
        broker_url=str(env.broker.make_url("")).rstrip("/"),
        broker_credential=registered["credential"],
        broker_webhook_secret=registered["webhook_secret"],
        database_url=bot_database_url or f"sqlite+aiosqlite:///{bot_db}",
        port=bot_port,
        poll_timeout_s=1,
        mode="webhook" if webhook_secret else "polling",
        telegram_secret_token=webhook_secret or "",
        public_url=public.get("bot", "").format(port=bot_port),
        link_timeout_s=link_timeout_s,
    )
    runtime = BotRuntime(settings, clock=env.clock, observe=observe)
    await runtime.start()
    chat = ChatDriver(str(localchat.make_url("")))
    return System(env, chat, runtime, localchat, bot_db, received)


async def stop_system(system: System) -> None:
    await system.chat.close()
    await system.runtime.stop()
    await system.localchat.close()
    await stop(system.env)
    await asyncio.sleep(0)
