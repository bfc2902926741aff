"""The crash tests' hold switch (``POST /api/hold-sends``): held sendMessage calls wait, unrecorded,
and are answered with an error on release; it is off unless turned on, and bad input is a 400."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient

from localchat.app import create_app
from localchat.keys import STORE
from localchat.settings import Settings

TOKEN = "42:abc"
ALICE = 1001
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


async def send(client: Client, text: str) -> tuple[int, dict[str, Any]]:
    form = {"chat_id": str(ALICE), "text": text}
    resp = await client.post(f"/bot{TOKEN}/sendMessage", data=form)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


async def held(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/held")
    body: dict[str, Any] = await resp.json()
    return body


async def until_held(client: Client, count: int) -> None:
    for _ in range(500):  # polled over HTTP, as a test in another process would
        if (await held(client))["held"] >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"fewer than {count} sends held")


async def test_held_sends_wait_unrecorded_and_fail_on_release(aiohttp_client: MakeClient) -> None:
    app = create_app(Settings(bot_token=TOKEN))
    client = await aiohttp_client(app)
    store = app[STORE]
    assert await held(client) == {"on": False, "held": 0}
    assert (await send(client, "before"))[0] == 200  # off by default: sends go through

    resp = await client.post("/api/hold-sends", json={"on": True})
    assert await resp.json() == {"on": True, "held": 0}
    calls = [asyncio.create_task(send(client, f"held {i}")) for i in range(3)]
    await until_held(client, 3)
    assert not any(c.done() for c in calls)
    assert [m.text for m in store.messages[ALICE]] == ["before"]
    version = store.version

    resp = await client.post("/api/hold-sends", data=json.dumps({"on": False}))
    assert await resp.json() == {"on": False, "held": 3}
    answers = await asyncio.gather(*calls)
    assert {status for status, _ in answers} == {502}
    assert all(
        body == {"ok": False, "error_code": 502, "description": "Bad Gateway"}
        for _, body in answers
    )
    assert [m.text for m in store.messages[ALICE]] == ["before"]  # none of them recorded
    assert store.version == version
    assert await held(client) == {"on": False, "held": 0}
    assert (await send(client, "after"))[0] == 200


async def test_the_hold_switch_refuses_bad_input(aiohttp_client: MakeClient) -> None:
    client = await aiohttp_client(create_app(Settings(bot_token=TOKEN)))
    for body in ({}, {"on": "yes"}, {"on": 1}):
        resp = await client.post("/api/hold-sends", json=body)
        assert resp.status == 400, body
    assert await held(client) == {"on": False, "held": 0}


async def test_shutting_down_releases_held_sends(aiohttp_client: MakeClient) -> None:
    app = create_app(Settings(bot_token=TOKEN))
    client = await aiohttp_client(app)
    await client.post("/api/hold-sends", json={"on": True})
    call = asyncio.create_task(send(client, "held"))
    await until_held(client, 1)
    await app[STORE].close()
    status, _ = await asyncio.wait_for(call, 5)
    assert status == 502
