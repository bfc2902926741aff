"""PTB's Bot API calls over aiohttp (bot.telegram_http): the body as HTTPXRequest sends it (a
form, or multipart with files), PTB's errors for a timeout and an unreachable server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot
from telegram.error import BadRequest, NetworkError, TimedOut

from bot.telegram_http import AiohttpRequest
from tests.consent.broker_env import free_port

TOKEN = "4242:telegram-http"


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A Bot API stand-in noting what each call carried; ``/slow`` answers after 1 s."""
    seen: list[dict[str, Any]] = []

    async def method(request: web.Request) -> web.Response:
        name = request.match_info["method"]
        form = await request.post()
        fields: dict[str, Any] = {}
        for key, value in form.items():
            if isinstance(value, web.FileField):
                fields[key] = (value.filename, value.file.read())
            else:
                fields[key] = value
        seen.append(
            {"method": name, "type": request.content_type, "fields": fields, **request.headers}
        )
        if name == "getMe":
            me = {"id": 4242, "is_bot": True, "first_name": "B", "username": "b_bot"}
            return web.json_response({"ok": True, "result": me})
        if name == "sendPhoto":
            refusal = {"ok": False, "error_code": 400, "description": "Bad Request: no photo"}
            return web.json_response(refusal, status=400)
        message = {"message_id": 7, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "hi"}
        return web.json_response({"ok": True, "result": message})

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({"ok": True, "result": True})

    app = web.Application()
    app.router.add_post("/slow/bot{token}/{method}", slow)
    app.router.add_post("/bot{token}/{method}", method)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_a_message_goes_as_a_form_and_its_answer_is_parsed(
    api: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = api
    async with Bot(TOKEN, base_url=f"{base}/bot", request=AiohttpRequest()) as bot:
        sent = await bot.send_message(5, "hi", allow_paid_broadcast=True)
    assert sent.message_id == 7 and sent.text == "hi"
    call = seen[-1]
    assert call["method"] == "sendMessage"
    assert call["type"] == "application/x-www-form-urlencoded"
    assert call["fields"] == {"chat_id": "5", "text": "hi", "allow_paid_broadcast": "true"}
    assert "python-telegram-bot" in call["User-Agent"]


async def test_a_file_goes_as_multipart_and_a_refusal_is_ptbs_error(
    api: tuple[str, list[dict[str, Any]]],
) -> None:
    base, seen = api
    async with Bot(TOKEN, base_url=f"{base}/bot", request=AiohttpRequest()) as bot:
        with pytest.raises(BadRequest, match="No photo"):
            await bot.send_photo(5, b"\x89PNG\r\n\x1a\n-bytes", caption="c", filename="c.png")
    call = seen[-1]
    assert call["method"] == "sendPhoto" and call["type"] == "multipart/form-data"
    assert call["fields"]["caption"] == "c" and call["fields"]["chat_id"] == "5"
    assert call["fields"]["photo"] == ("c.png", b"\x89PNG\r\n\x1a\n-bytes")


async def test_a_slow_answer_is_timed_out_and_no_server_is_a_network_error(
    api: tuple[str, list[dict[str, Any]]],
) -> None:
    base, _ = api
    request = AiohttpRequest(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(f"{base}/slow/bot{TOKEN}/getMe")
        with pytest.raises(NetworkError):
            await request.post(f"http://127.0.0.1:{free_port()}/bot{TOKEN}/getMe")
    finally:
        await request.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        await request.do_request(f"{base}/bot{TOKEN}/getMe", "POST")
