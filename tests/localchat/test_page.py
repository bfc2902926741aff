"""The web chat page and its live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from localchat.app import create_app
from localchat.settings import Settings

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


@pytest.fixture
async def client(aiohttp_client: MakeClient) -> Client:
    return await aiohttp_client(create_app(Settings()))


async def test_the_page_and_its_scripts_are_served_from_the_package(client: Client) -> None:
    page = await (await client.get("/")).text()
    assert 'id="composer"' in page and "/static/chat.js" in page
    assert "EventSource" in await (await client.get("/static/chat.js")).text()
    assert "https://" not in page


async def test_the_arabic_speaking_user_is_shown_right_to_left(client: Client) -> None:
    users = await (await client.get("/api/users")).json()
    directions = {u["first_name"]: u["dir"] for u in users}
    assert directions == {"Alice": "ltr", "Omar": "rtl", "Zofia": "ltr"}


async def test_the_event_stream_announces_each_change(client: Client) -> None:
    resp = await client.get("/api/events")
    assert resp.headers["Content-Type"].startswith("text/event-stream")
    assert await asyncio.wait_for(resp.content.readline(), 2) == b"data: 0\n"
    await resp.content.readline()
    await client.post("/api/send", json={"user_id": 1003, "text": "Cześć"})
    assert await asyncio.wait_for(resp.content.readline(), 2) == b"data: 1\n"
    resp.close()
