"""The operators' view of the outbox under /admin (admin token): dead letters."""

from __future__ import annotations

import hmac

from aiohttp import web

from consent.api.keys import BROKER
from consent.outbox import deadletter
from consent.service.errors import BrokerError

routes = web.RouteTableDef()


@routes.get("/admin/v1/outbox/dead-letters")
async def dead_letters(request: web.Request) -> web.Response:
    """Messages the relay gave up on, newest first (``?limit=``, at most 500)."""
    broker = request.app[BROKER]
    expected = f"Bearer {broker.settings.admin_token.get_secret_value()}"
    if not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), expected.encode()
    ):
        raise BrokerError(401, "unauthenticated", "admin token required")
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 500)
    except ValueError as e:
        raise BrokerError(400, "invalid_request", "limit must be a number") from e
    letters = await deadletter.listing(broker.sessions, limit)
    return web.json_response({"dead_letters": [d.to_json() for d in letters]})
