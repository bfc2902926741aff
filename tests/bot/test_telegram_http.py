"""PTB's Bot API calls over aiohttp (bot.telegram_http): the body as HTTPXRequest sends it (a
form, or multipart with files), PTB's errors for a timeout and an unreachable server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut
from telegram.ext import AIORateLimiter, Defaults, ExtBot

from bot.telegram_http import AiohttpRequest, send_text
from tests.consent.broker_env import free_port

TOKEN = "4242:telegram-http"
# sendMessage to these chats is refused as Telegram refuses it (429: once, then it goes through)
REFUSALS = {
    "403": (403, "Forbidden: bot was blocked by the user"),
    "400": (400, "Bad Request: chat not found"),
    "502": (502, "Bad Gateway"),
    "429": (429, "Too Many Requests: retry after 1"),
    "4291": (429, "Too Many Requests: retry after 1"),
}


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A Bot API stand-in noting what each call carried; ``/slow`` answers after 1 s."""
    seen: list[dict[str, Any]] = []
    retried: dict[str, int] = {}

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
        chat = str(fields.get("chat_id"))
        if name == "sendMessage" and chat in REFUSALS:
            status, description = REFUSALS[chat]
            refusal = {"ok": False, "error_code": status, "description": description}
            if status == 429:
                if retried.setdefault(chat, 0) >= 1:  # the second try goes through
                    chat = "5"
                else:
                    retried[chat] += 1
                    refusal["parameters"] = {"retry_after": 1}
                    return web.json_response(refusal, status=status)
            else:
                return web.json_response(refusal, status=status)
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


def _ext_bot(base: str) -> ExtBot[Any]:
    """A bot as the application builds it: HTML by default, rate limited, retrying a 429."""
    return ExtBot(
        TOKEN,
        base_url=f"{base}/bot",
        request=AiohttpRequest(),
        defaults=Defaults(parse_mode=ParseMode.HTML),
        rate_limiter=AIORateLimiter(max_retries=1),
    )


async def test_send_text_sends_what_send_message_sends(
    api: tuple[str, list[dict[str, Any]]],
) -> None:
    """The lean path for pushed messages (``send_text``) puts the same fields on the wire as
    PTB's ``send_message``: the bot's default parse mode, the keyboard as JSON, paid broadcast."""
    base, seen = api
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Freeze", callback_data="fz:1")]])
    async with _ext_bot(base) as bot:
        await bot.send_message(5, "<b>Was this you?</b> ü", reply_markup=keyboard)
        sent = await send_text(bot, 5, "<b>Was this you?</b> ü", keyboard)
        await bot.send_message(5, "plain", allow_paid_broadcast=True)
        await send_text(bot, 5, "plain", allow_paid_broadcast=True)
    assert sent["message_id"] == 7
    ptb, lean, ptb_paid, lean_paid = seen[-4:]
    for a, b in ((ptb, lean), (ptb_paid, lean_paid)):
        assert a["fields"] == b["fields"]
        assert a["type"] == b["type"] == "application/x-www-form-urlencoded"
    assert lean["fields"]["parse_mode"] == "HTML"
    assert "fz:1" in lean["fields"]["reply_markup"]
    assert lean_paid["fields"]["allow_paid_broadcast"] == "true"
    async with Bot(TOKEN, base_url=f"{base}/bot", request=AiohttpRequest()) as plain:
        await plain.send_message(5, "no defaults")
        await send_text(plain, 5, "no defaults")
    assert seen[-2]["fields"] == seen[-1]["fields"] == {"chat_id": "5", "text": "no defaults"}


async def test_send_text_raises_ptbs_errors(api: tuple[str, list[dict[str, Any]]]) -> None:
    """A blocked user, a chat that is gone and a bad gateway are PTB's errors, as from
    ``send_message`` (the broker's 410 and 503 are decided on them)."""
    base, _ = api
    async with _ext_bot(base) as bot:
        with pytest.raises(Forbidden, match="blocked"):
            await send_text(bot, 403, "x")
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await send_text(bot, 400, "x")
        with pytest.raises(NetworkError, match="Bad Gateway"):
            await send_text(bot, 502, "x")


async def test_send_text_waits_out_a_429_through_the_bots_rate_limiter(
    api: tuple[str, list[dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")  # PTB 22 warns of its int retry_after otherwise
    base, seen = api
    async with _ext_bot(base) as bot:
        sent = await send_text(bot, 429, "x")
    assert sent["message_id"] == 7
    assert [c["fields"].get("chat_id") for c in seen if c["method"] == "sendMessage"] == [
        "429",
        "429",
    ]
    async with Bot(TOKEN, base_url=f"{base}/bot", request=AiohttpRequest()) as plain:
        with pytest.raises(RetryAfter):  # no rate limiter: the 429 is the caller's
            await send_text(plain, 4291, "x")
