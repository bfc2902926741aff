"""The Bot API surface of localchat, spoken to over real HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from localchat.app import create_app
from localchat.settings import Settings

TOKEN = "42:abc"
WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
ALICE = 1001
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def client(aiohttp_client: MakeClient) -> Client:
    return await aiohttp_client(create_app(Settings(bot_token=TOKEN)))


async def call(client: Client, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    resp = await client.post(f"/bot{TOKEN}/{method}", data=form)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def test_get_me_describes_the_bot_from_the_token(client: Client) -> None:
    status, body = await call(client, "getMe")
    assert status == 200 and body["ok"] is True
    assert body["result"]["id"] == 42 and body["result"]["is_bot"] is True


async def test_an_unknown_token_is_unauthorized(client: Client) -> None:
    resp = await client.post("/bot1:wrong/getMe")
    assert resp.status == 401
    assert await resp.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}


async def test_an_unknown_method_is_not_found(client: Client) -> None:
    resp = await client.post(f"/bot{TOKEN}/flyToTheMoon")
    assert resp.status == 404
    assert await resp.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_a_command_sent_by_a_user_arrives_with_a_bot_command_entity(client: Client) -> None:
    await client.post("/api/send", json={"user_id": ALICE, "text": "/start now"})
    _, body = await call(client, "getUpdates", timeout=0)
    message = body["result"][0]["message"]
    assert message["text"] == "/start now"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    assert message["from"]["first_name"] == "Alice"


async def test_get_updates_long_polls_until_a_user_writes(client: Client) -> None:
    poll = asyncio.create_task(call(client, "getUpdates", timeout=5))
    await asyncio.sleep(0.05)
    assert not poll.done()
    await client.post("/api/send", json={"user_id": ALICE, "text": "hi"})
    _, body = await asyncio.wait_for(poll, 2)
    assert body["result"][0]["message"]["text"] == "hi"


async def test_an_offset_acknowledges_earlier_updates(client: Client) -> None:
    for text in ("one", "two"):
        await client.post("/api/send", json={"user_id": ALICE, "text": text})
    _, body = await call(client, "getUpdates", timeout=0)
    first = body["result"][0]["update_id"]
    _, body = await call(client, "getUpdates", offset=first + 1, timeout=0)
    assert [u["message"]["text"] for u in body["result"]] == ["two"]


async def test_editing_to_the_same_markup_is_not_modified(client: Client) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    _, sent = await call(client, "sendMessage", chat_id=ALICE, text="hi", reply_markup=markup)
    mid = sent["result"]["message_id"]
    status, body = await call(
        client, "editMessageReplyMarkup", chat_id=ALICE, message_id=mid, reply_markup=markup
    )
    assert status == 400
    assert body["description"] == "Bad Request: message is not modified"


async def test_get_updates_conflicts_while_a_webhook_is_set(client: Client) -> None:
    await call(client, "setWebhook", url="http://127.0.0.1:1/hook")
    status, body = await call(client, "getUpdates", timeout=0)
    assert (status, body) == (409, {"ok": False, "error_code": 409, "description": WEBHOOK})
    _, info = await call(client, "getWebhookInfo")
    assert info["result"]["url"] == "http://127.0.0.1:1/hook"


async def test_commands_set_are_returned_and_can_be_deleted(client: Client) -> None:
    commands = [{"command": "start", "description": "Begin"}]
    await call(client, "setMyCommands", commands=commands)
    assert (await call(client, "getMyCommands"))[1]["result"] == commands
    await call(client, "deleteMyCommands")
    assert (await call(client, "getMyCommands"))[1]["result"] == []


async def test_a_second_long_poll_terminates_the_open_one_with_409(client: Client) -> None:
    first = asyncio.create_task(call(client, "getUpdates", timeout=10))
    await asyncio.sleep(0.05)
    assert not first.done()
    second = asyncio.create_task(call(client, "getUpdates", timeout=10))
    status, body = await asyncio.wait_for(first, 2)
    assert (status, body) == (409, {"ok": False, "error_code": 409, "description": TERMINATED})
    assert not second.done()
    await client.post("/api/send", json={"user_id": ALICE, "text": "for the newer poll"})
    status, body = await asyncio.wait_for(second, 2)
    assert status == 200 and body["result"][0]["message"]["text"] == "for the newer poll"


async def test_setting_a_webhook_ends_an_open_long_poll_with_409(client: Client) -> None:
    poll = asyncio.create_task(call(client, "getUpdates", timeout=10))
    await asyncio.sleep(0.05)
    await call(client, "setWebhook", url="http://127.0.0.1:1/hook")
    status, body = await asyncio.wait_for(poll, 2)
    assert status == 409 and body["description"] == WEBHOOK


@pytest.mark.parametrize(
    ("params", "description"),
    [
        (
            {"text": "<div>hi</div>", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported start tag "div" at byte offset 0',
        ),
        (
            {"text": "<b>Total</b>: 5 &euro;", "parse_mode": "HTML"},
            'Bad Request: can\'t parse entities: Unsupported HTML entity "&euro;"'
            " at byte offset 16",
        ),
        ({"text": "x" * 4097}, "Bad Request: message is too long"),
        ({"text": ""}, "Bad Request: message text is empty"),
        (
            {
                "text": "pick",
                "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "é" * 33}]]},
            },
            "Bad Request: BUTTON_DATA_INVALID",
        ),
    ],
)
async def test_send_and_edit_refuse_what_telegram_refuses(
    client: Client, params: dict[str, Any], description: str
) -> None:
    status, body = await call(client, "sendMessage", chat_id=ALICE, **params)
    assert (status, body) == (400, {"ok": False, "error_code": 400, "description": description})
    _, sent = await call(client, "sendMessage", chat_id=ALICE, text="original")
    mid = sent["result"]["message_id"]
    status, body = await call(client, "editMessageText", chat_id=ALICE, message_id=mid, **params)
    assert (status, body["description"]) == (400, description)
    texts = [m["text"] for m in await (await client.get(f"/api/messages/{ALICE}")).json()]
    assert texts == ["original"]


async def test_html_within_the_limits_is_stored_as_sent(client: Client) -> None:
    text = '<b>Total</b>: 5 &lt; 6 &amp; <a href="https://example.org">more</a>'
    status, body = await call(client, "sendMessage", chat_id=ALICE, text=text, parse_mode="HTML")
    assert status == 200 and body["result"]["text"] == text


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [
        ("/api/send", b"not json", "bad request"),
        ("/api/send", b'{"text": "hi"}', "missing field 'user_id'"),
        ("/api/send", b'{"user_id": "alice", "text": "hi"}', "bad request"),
        ("/api/press", b'{"user_id": 1001, "data": "x"}', "missing field 'message_id'"),
        ("/api/flood", b"[]", "bad request"),
    ],
)
async def test_the_test_api_answers_bad_input_with_a_400_naming_it(
    client: Client, path: str, body: bytes, expected: str
) -> None:
    resp = await client.post(path, data=body, headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert expected in await resp.text()


async def test_the_test_api_refuses_a_non_numeric_user_or_cursor(client: Client) -> None:
    assert (await client.get("/api/messages/alice")).status == 400
    assert (await client.get("/api/changes?after=x&timeout=0")).status == 400
