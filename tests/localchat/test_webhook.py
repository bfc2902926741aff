"""While a webhook is set, localchat POSTs updates to it with the secret header."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from telegram import Update
from telegram.ext import ContextTypes, MessageHandler, filters

from localchat.app import create_app
from localchat.keys import STORE
from localchat.settings import Settings
from localchat.testing import ChatDriver
from tests.localchat.ptb import Webhook, free_port, running_bot

TOKEN = "42:abc"
MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]
MakeServer = Callable[..., Awaitable[TestServer]]


async def test_a_user_message_is_posted_to_the_webhook_with_the_secret_token(
    aiohttp_client: MakeClient, aiohttp_server: MakeServer
) -> None:
    received: asyncio.Queue[tuple[str | None, dict[str, Any]]] = asyncio.Queue()

    async def hook(request: web.Request) -> web.Response:
        secret = request.headers.get("X-Telegram-Bot-Api-Secret-Token")
        await received.put((secret, await request.json()))
        return web.Response()

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_server = await aiohttp_server(receiver, host="127.0.0.1")
    client = await aiohttp_client(create_app(Settings(bot_token=TOKEN)))
    form = {"url": str(hook_server.make_url("/hook")), "secret_token": "s3cret"}
    resp = await client.post(f"/bot{TOKEN}/setWebhook", data=form)
    assert (await resp.json())["result"] is True

    await client.post("/api/send", json={"user_id": 1002, "text": "مرحبا"})
    secret, update = await asyncio.wait_for(received.get(), 5)
    assert secret == "s3cret"
    assert update["message"]["text"] == "مرحبا"

    resp = await client.post(f"/bot{TOKEN}/getWebhookInfo")
    info = await resp.json()
    assert info["result"]["url"] == form["url"]
    resp = await client.post(f"/bot{TOKEN}/deleteWebhook", data={"drop_pending_updates": "true"})
    assert json.loads(await resp.text())["ok"] is True


async def _webhook_info(client: TestClient[Any, Any]) -> dict[str, Any]:
    info: dict[str, Any] = (await (await client.post(f"/bot{TOKEN}/getWebhookInfo")).json())[
        "result"
    ]
    return info


async def _first_error(client: TestClient[Any, Any]) -> dict[str, Any]:
    """getWebhookInfo as soon as it reports a failed delivery (within 5 s)."""
    for _ in range(250):
        info = await _webhook_info(client)
        if info.get("last_error_message"):
            return info
        await asyncio.sleep(0.02)
    raise AssertionError(f"no delivery failure reported: {info}")


async def test_a_failed_delivery_is_kept_reported_and_retried_in_order(
    aiohttp_client: MakeClient, aiohttp_server: MakeServer
) -> None:
    received: asyncio.Queue[str] = asyncio.Queue()
    answers = [500]

    async def hook(request: web.Request) -> web.Response:
        status = answers.pop() if answers else 200
        if status == 200:
            await received.put((await request.json())["message"]["text"])
        return web.Response(status=status)

    receiver = web.Application()
    receiver.router.add_post("/hook", hook)
    hook_server = await aiohttp_server(receiver, host="127.0.0.1")
    settings = Settings(bot_token=TOKEN, webhook_retry_s=1.0)
    client = await aiohttp_client(create_app(settings))
    await client.post(f"/bot{TOKEN}/setWebhook", data={"url": str(hook_server.make_url("/hook"))})

    for text in ("first", "second"):
        await client.post("/api/send", json={"user_id": 1001, "text": text})
    info = await _first_error(client)
    assert info["pending_update_count"] == 2
    assert (
        info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    )
    assert received.empty()
    got = [await asyncio.wait_for(received.get(), 5) for _ in range(2)]
    assert got == ["first", "second"]
    assert (await _webhook_info(client))["pending_update_count"] == 0


async def test_an_unreachable_webhook_keeps_the_update_until_it_is_deleted(
    aiohttp_client: MakeClient,
) -> None:
    client = await aiohttp_client(create_app(Settings(bot_token=TOKEN, webhook_retry_s=0.05)))
    url = f"http://127.0.0.1:{free_port()}/nobody-listens"
    await client.post(f"/bot{TOKEN}/setWebhook", data={"url": url})
    await client.post("/api/send", json={"user_id": 1001, "text": "anyone?"})
    info = await _first_error(client)
    assert info["last_error_message"] == "Connection refused"
    assert info["pending_update_count"] == 1
    await client.post(f"/bot{TOKEN}/deleteWebhook")
    resp = await client.post(f"/bot{TOKEN}/getUpdates", data={"timeout": "0"})
    assert [u["message"]["text"] for u in (await resp.json())["result"]] == ["anyone?"]


async def _echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    assert update.effective_message is not None and update.effective_message.text
    await update.effective_message.reply_text(f"echo: {update.effective_message.text}")


async def test_ptb_in_webhook_mode_gets_updates_with_the_secret_and_answers(
    aiohttp_server: MakeServer,
) -> None:
    server = await aiohttp_server(create_app(Settings(bot_token=TOKEN)), host="127.0.0.1")
    base = str(server.make_url(""))
    hook = Webhook(port=free_port(), secret="right-secret")
    async with (
        running_bot(base, TOKEN, [MessageHandler(filters.TEXT, _echo)], webhook=hook),
        ChatDriver(base) as chat,
    ):
        store = server.app[STORE]
        assert (store.webhook_url, store.webhook_secret) == (hook.url, "right-secret")
        await chat.send(1002, "مرحبا")
        messages = await chat.wait_for(1002, lambda ms: any(m["from_bot"] for m in ms))
        assert [m["text"] for m in messages if m["from_bot"]] == ["echo: مرحبا"]


async def test_ptb_refuses_a_delivery_with_the_wrong_secret_and_localchat_retries_it(
    aiohttp_server: MakeServer, aiohttp_client: MakeClient
) -> None:
    app = create_app(Settings(bot_token=TOKEN, webhook_retry_s=5.0))  # setWebhook cuts it short
    server = await aiohttp_server(app, host="127.0.0.1")
    client = await aiohttp_client(server)
    base = str(server.make_url(""))
    hook = Webhook(port=free_port(), secret="right-secret")
    async with (
        running_bot(base, TOKEN, [MessageHandler(filters.TEXT, _echo)], webhook=hook),
        ChatDriver(base) as chat,
    ):
        form = {"url": hook.url, "secret_token": "wrong-secret"}
        await client.post(f"/bot{TOKEN}/setWebhook", data=form)
        await chat.send(1001, "let me in")
        info = await _first_error(client)
        assert info["last_error_message"] == "Wrong response from the webhook: 403 Forbidden"
        assert info["pending_update_count"] == 1
        assert not [m for m in await chat.messages(1001) if m["from_bot"]]

        form["secret_token"] = "right-secret"
        await client.post(f"/bot{TOKEN}/setWebhook", data=form)
        messages = await chat.wait_for(1001, lambda ms: any(m["from_bot"] for m in ms))
        assert [m["text"] for m in messages if m["from_bot"]] == ["echo: let me in"]
        assert (await _webhook_info(client))["pending_update_count"] == 0
