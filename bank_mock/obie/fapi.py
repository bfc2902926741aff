"""FAPI headers on every Open Banking response: the interaction id is echoed or minted."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SAFE = re.compile(r"^[A-Za-z0-9\-_.:]{1,100}$")


@web.middleware
async def fapi_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Set ``x-fapi-interaction-id`` on responses under ``/open-banking/``."""
    response = await handler(request)
    if "/open-banking/" in request.path:
        given = request.headers.get("x-fapi-interaction-id", "")
        response.headers["x-fapi-interaction-id"] = (
            given if _SAFE.match(given) else str(uuid.uuid4())
        )
    return response
