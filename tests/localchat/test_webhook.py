"""While a webhook is set, localchat POSTs updates to it with the secret header."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from localchat.app import create_app
from localchat.settings import Settings

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
