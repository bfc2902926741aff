"""The bot tells the broker how long it will wait, a little less than its own timeout."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.test_utils import TestServer

from bot.broker import DEADLINE_HEADER, BrokerClient

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
