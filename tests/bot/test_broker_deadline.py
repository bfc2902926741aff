"""The bot tells the broker how long it will wait, a little less than its own timeout."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.broker import DEADLINE_HEADER, BrokerClient, BrokerError

Serve = Callable[[web.Application], Awaitable[TestServer]]


async def test_every_request_carries_a_deadline_shorter_than_the_bots_timeout(
    aiohttp_server: Serve,
) -> None:
    seen: list[str] = []

    async def balances(request: web.Request) -> web.Response:
        seen.append(request.headers.get(DEADLINE_HEADER, ""))
        return web.json_response(
            {
                "balances": [{"bank_name": "Northwind Bank", "status": "last_known"}],
                "unavailable": [
                    {"bank_id": "wisla", "bank_name": "Bank Wisła", "reason": "bank_timeout"}
                ],
            }
        )

    app = web.Application()
    app.router.add_get("/v1/subjects/{subject}/balances", balances)
    server = await aiohttp_server(app)
    client = BrokerClient(str(server.make_url("")), "c.s", timeout_s=4.0)
    try:
        answer = await client.balance_answer("sub_1")
        short = BrokerClient(str(server.make_url("")), "c.s", timeout_s=0.4)
        try:
            await short.balance_answer("sub_1")
        finally:
            await short.close()
    finally:
        await client.close()
    assert seen == ["3700", "300"]  # 0.3 s (at most a quarter of the timeout) to spare
    assert answer.balances[0].status == "last_known"
    assert answer.unavailable[0].reason == "bank_timeout"


async def test_the_calls_of_one_update_share_one_budget(aiohttp_server: Serve) -> None:
    """A handler that makes several broker calls still answers within the bot's timeout: each
    call gets what is left of the update's budget, and none starts once it is spent."""
    seen: list[int] = []

    async def accounts(request: web.Request) -> web.Response:
        seen.append(int(request.headers[DEADLINE_HEADER]))
        await asyncio.sleep(0.6)
        return web.json_response({"accounts": [], "unavailable": []})

    app = web.Application()
    app.router.add_get("/v1/subjects/{subject}/accounts", accounts)
    server = await aiohttp_server(app)
    client = BrokerClient(str(server.make_url("")), "c.s", timeout_s=1.0)
    try:
        client.begin()
        started = time.monotonic()
        assert (await client.account_answer("sub_1")).accounts == []
        with pytest.raises(BrokerError) as second:
            await client.account_answer("sub_1")  # 0.4 s left: not enough for this bank
        with pytest.raises(BrokerError) as third:
            await client.account_answer("sub_1")  # nothing left: not even started
        took = time.monotonic() - started
    finally:
        await client.close()
    assert second.value.code == third.value.code == "broker_timeout"
    assert len(seen) == 2  # the third call never reached the broker
    assert 740 <= seen[0] <= 750 and 250 <= seen[1] < 400  # what is left, less a margin
    assert took < 1.1  # the whole update stayed inside its budget


async def test_half_the_budget_leaves_room_for_the_call_after(aiohttp_server: Serve) -> None:
    seen: list[int] = []

    async def accounts(request: web.Request) -> web.Response:
        seen.append(int(request.headers[DEADLINE_HEADER]))
        return web.json_response({"accounts": [], "unavailable": []})

    app = web.Application()
    app.router.add_get("/v1/subjects/{subject}/accounts", accounts)
    server = await aiohttp_server(app)
    client = BrokerClient(str(server.make_url("")), "c.s", timeout_s=4.0)
    try:
        client.begin()
        await client.account_answer("sub_1", share=0.5)
    finally:
        await client.close()
    assert 1650 <= seen[0] <= 1700  # half of 4 s, less the margin
