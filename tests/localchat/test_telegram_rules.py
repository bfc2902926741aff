"""Where a bot can get Telegram wrong, localchat answers as Telegram does: empty keyboards,
URL buttons, file uploads, allowed_updates, and group chats with several users (test API)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from localchat.app import create_app
from localchat.settings import Settings

TOKEN = "42:abc"
ALICE, OMAR = 1001, 1002
GROUP = -100500
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def client(aiohttp_client: MakeClient) -> Client:
    return await aiohttp_client(create_app(Settings(bot_token=TOKEN)))


async def call(client: Client, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"/bot{TOKEN}/{method}", json=params)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


@pytest.mark.parametrize("markup", [{}, {"inline_keyboard": []}, {"inline_keyboard": [[]]}])
async def test_an_empty_keyboard_is_no_keyboard_as_telegram_shows_it(
    client: Client, markup: dict[str, Any]
) -> None:
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="hi", reply_markup=markup)
    assert status == 200 and "reply_markup" not in body["result"]
    mid = body["result"]["message_id"]
    status, body = await call(
        client, "editMessageText", chat_id=ALICE, message_id=mid, text="ho", reply_markup=markup
    )
    assert status == 200 and "reply_markup" not in body["result"]


async def test_an_edit_without_a_keyboard_removes_the_buttons(client: Client) -> None:
    keyboard = {"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]}
    _, sent = await call(client, "sendMessage", chat_id=ALICE, text="hi", reply_markup=keyboard)
    mid = sent["result"]["message_id"]
    _, edited = await call(client, "editMessageText", chat_id=ALICE, message_id=mid, text="done")
    assert "reply_markup" not in edited["result"]
    pressed = await client.post(
        "/api/press", json={"user_id": ALICE, "message_id": mid, "data": "a"}
    )
    assert pressed.status == 400  # the old button is gone, as in Telegram's clients


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://bank.example/approve?x=1", True),
        ("http://127.0.0.1:8001/banks/x/authorize", True),
        ("tg://resolve?domain=chatbank_bot", True),
        ("javascript:alert(1)", False),
        ("ftp://bank.example/", False),
        ("https://", False),
        ("bank.example/approve", False),
        ("https://bank.example/a b", False),
    ],
)
async def test_url_buttons_are_checked_with_telegrams_words(
    client: Client, url: str, ok: bool
) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Open", "url": url}]]}
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="x", reply_markup=keyboard)
    if ok:
        assert status == 200
    else:
        assert status == 400
        assert body["description"] == (
            f"Bad Request: inline keyboard button URL '{url}' is invalid: Wrong HTTP URL"
        )


@pytest.mark.parametrize(
    ("markup", "description"),
    [
        ("[]", "Bad Request: object expected as reply markup"),
        ({"inline_keyboard": [[{"text": "plain"}]]}, "Text buttons are unallowed"),
        ({"inline_keyboard": [[{"text": "", "callback_data": "x"}]]}, "Text is empty"),
        ({"inline_keyboard": [{"text": "x", "callback_data": "x"}]}, "Array of Arrays"),
    ],
)
async def test_malformed_keyboards_are_refused(
    client: Client, markup: Any, description: str
) -> None:
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="x", reply_markup=markup)
    assert status == 400 and description in body["description"]


async def test_a_text_over_4096_characters_is_refused(client: Client) -> None:
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="x" * 4097)
    assert (status, body["description"]) == (400, "Bad Request: message is too long")
    status, _ = await call(client, "sendMessage", chat_id=ALICE, text="é" * 4096)
    assert status == 200


async def upload(
    client: Client, method: str, field: str, name: str, data: bytes, kind: str, **extra: str
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ALICE))
    for key, value in extra.items():
        form.add_field(key, value)
    form.add_field(field, data, filename=name, content_type=kind)
    resp = await client.post(f"/bot{TOKEN}/{method}", data=form)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def test_a_document_is_uploaded_shown_and_downloadable(client: Client) -> None:
    data = json.dumps({"a": 1}).encode()
    status, body = await upload(
        client,
        "sendDocument",
        "document",
        "export.json",
        data,
        "application/json",
        caption="<b>Your data</b>",
        parse_mode="HTML",
    )
    assert status == 200, body
    document = body["result"]["document"]
    assert (document["file_name"], document["mime_type"]) == ("export.json", "application/json")
    assert body["result"]["caption"] == "<b>Your data</b>" and "text" not in body["result"]
    download = await client.get(f"/api/files/{document['file_id']}")
    assert await download.read() == data
    assert "attachment" in download.headers["Content-Disposition"]
    _, got = await call(client, "getFile", file_id=document["file_id"])
    fetched = await client.get(f"/file/bot{TOKEN}/{got['result']['file_path']}")
    assert await fetched.read() == data
    assert (await client.get(f"/file/bot1:wrong/{got['result']['file_path']}")).status == 404
    shown = (await (await client.get(f"/api/messages/{ALICE}")).json())[-1]
    assert shown["document"]["file_name"] == "export.json"
    status, body = await call(
        client, "editMessageText", chat_id=ALICE, message_id=body["result"]["message_id"], text="x"
    )
    assert (status, body["description"]) == (
        400,
        "Bad Request: there is no text in the message to edit",
    )


async def test_a_photo_must_be_an_image_and_is_shown_inline(client: Client) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 16
    status, body = await upload(client, "sendPhoto", "photo", "chart.png", png, "image/png")
    assert status == 200 and body["result"]["photo"][0]["file_size"] == len(png)
    file_id = body["result"]["photo"][0]["file_id"]
    shown = await client.get(f"/api/files/{file_id}")
    assert shown.headers["Content-Disposition"].startswith("inline")
    status, body = await upload(client, "sendPhoto", "photo", "x.txt", b"text", "text/plain")
    assert (status, body["description"]) == (400, "Bad Request: IMAGE_PROCESS_FAILED")
    status, body = await upload(client, "sendDocument", "document", "e.json", b"", "text/plain")
    assert status == 400


async def test_allowed_updates_are_honoured_by_get_updates_and_kept(client: Client) -> None:
    await call(client, "getUpdates", timeout=0, allowed_updates=["callback_query"])
    await client.post("/api/send", json={"user_id": ALICE, "text": "ignored"})
    _, body = await call(client, "getUpdates", timeout=0)  # the setting persists
    assert body["result"] == []
    await call(client, "getUpdates", timeout=0, allowed_updates=[])  # back to the default
    await client.post("/api/send", json={"user_id": ALICE, "text": "seen"})
    _, body = await call(client, "getUpdates", timeout=0)
    assert [u["message"]["text"] for u in body["result"]] == ["seen"]


async def test_allowed_updates_are_honoured_by_set_webhook(client: Client) -> None:
    await call(
        client, "setWebhook", url="http://127.0.0.1:9/hook", allowed_updates=["callback_query"]
    )
    _, info = await call(client, "getWebhookInfo")
    assert info["result"]["allowed_updates"] == ["callback_query"]
    await client.post("/api/send", json={"user_id": ALICE, "text": "ignored"})
    _, info = await call(client, "getWebhookInfo")
    assert info["result"]["pending_update_count"] == 0


async def test_several_users_write_and_press_in_one_group(client: Client) -> None:
    assert (await client.post("/api/groups", json={"chat_id": 5})).status == 400
    await client.post("/api/groups", json={"chat_id": GROUP, "title": "family"})
    await client.post("/api/send", json={"user_id": ALICE, "chat_id": GROUP, "text": "/balance"})
    await client.post("/api/send", json={"user_id": OMAR, "chat_id": GROUP, "text": "hi"})
    keyboard = {"inline_keyboard": [[{"text": "a", "callback_data": "a"}]]}
    _, sent = await call(client, "sendMessage", chat_id=GROUP, text="x", reply_markup=keyboard)
    await client.post(
        "/api/press",
        json={
            "user_id": OMAR,
            "chat_id": GROUP,
            "message_id": sent["result"]["message_id"],
            "data": "a",
        },
    )
    _, body = await call(client, "getUpdates", timeout=0)
    first, second, press = body["result"]
    assert first["message"]["chat"] == {"id": GROUP, "type": "group", "title": "family"}
    assert first["message"]["from"]["id"] == ALICE and second["message"]["from"]["id"] == OMAR
    assert press["callback_query"]["from"]["id"] == OMAR
    assert press["callback_query"]["message"]["chat"]["id"] == GROUP
    senders = [m["sender_id"] for m in await (await client.get(f"/api/messages/{GROUP}")).json()]
    assert senders == [ALICE, OMAR, None]
    unknown = await client.post("/api/send", json={"user_id": ALICE, "chat_id": -1, "text": "x"})
    assert unknown.status == 404


async def test_a_user_who_blocked_the_bot_refuses_messages_and_files_until_unblocked(
    client: Client,
) -> None:
    blocked = await client.post("/api/block", json={"user_id": ALICE, "blocked": True})
    assert blocked.status == 200
    refused = (403, "Forbidden: bot was blocked by the user")
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="hi")
    assert (status, body["description"]) == refused
    status, body = await upload(client, "sendDocument", "document", "e.json", b"{}", "text/plain")
    assert (status, body["description"]) == refused
    status, _ = await call(client, "sendMessage", chat_id=OMAR, text="hi")  # others still get it
    assert status == 200
    await client.post("/api/block", json={"user_id": ALICE, "blocked": False})
    status, _ = await call(client, "sendMessage", chat_id=ALICE, text="hi")
    assert status == 200
