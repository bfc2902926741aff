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


@pytest.fixture
async def forward_proxy() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP forward proxy stand-in: notes the absolute URL each request asked it for and
    answers as the Bot API would (the API host itself does not exist)."""
    asked: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        asked.append(str(request.url))
        message = {"message_id": 8, "date": 0, "chat": {"id": 5, "type": "private"}, "text": "p"}
        return web.json_response({"ok": True, "result": message})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", asked
    await runner.cleanup()


@pytest.mark.parametrize("name", ["HTTP_PROXY", "http_proxy"])
async def test_the_proxy_from_the_environment_carries_every_call(
    forward_proxy: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """A bot behind a proxy (``HTTPS_PROXY`` for api.telegram.org, ``HTTP_PROXY`` here) reaches
    the Bot API through it on every call, as it did with PTB's httpx transport."""
    proxy, asked = forward_proxy
    for var in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv(name, proxy)
    request = AiohttpRequest()
    bot = Bot(TOKEN, base_url="http://api.telegram.invalid/bot", request=request)
    await request.initialize()
    try:
        for text in ("one", "two"):
            sent = await bot.send_message(5, text)
            assert sent.message_id == 8
    finally:
        await request.shutdown()
    assert asked == [f"http://api.telegram.invalid/bot{TOKEN}/sendMessage"] * 2


async def test_a_host_in_no_proxy_is_reached_directly(
    forward_proxy: tuple[str, list[str]],
    api: tuple[str, list[dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, asked = forward_proxy
    base, seen = api
    monkeypatch.setenv("HTTP_PROXY", proxy)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    request = AiohttpRequest()
    bot = Bot(TOKEN, base_url=f"{base}/bot", request=request)
    await request.initialize()
    try:
        await bot.send_message(5, "direct")
    finally:
        await request.shutdown()
    assert asked == []
    assert [s["fields"]["text"] for s in seen] == ["direct"]
