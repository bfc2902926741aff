"""The web chat page: static files, the user list and a Server-Sent Events stream of changes."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from localchat.store import Store

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
RTL_LANGUAGES = frozenset({"ar", "he", "fa", "ur"})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


def users_json(store: Store) -> list[dict[str, object]]:
    return [
        {
            "id": u.id,
            "first_name": u.first_name,
            "language_code": u.language_code,
            "dir": "rtl" if u.language_code in RTL_LANGUAGES else "ltr",
        }
        for u in store.users.values()
    ]


async def stream_changes(store: Store, request: web.Request) -> web.StreamResponse:
    """Send ``data: <version>`` each time anything changes, until the browser goes away."""
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    seen = -1
    try:
        while not store.closing:
            if store.version != seen:
                seen = store.version
                await response.write(f"data: {seen}\n\n".encode())
            if not await store.wait_until(store.changed_since(seen), 15.0):
                await response.write(b": keep-alive\n\n")
    except ConnectionResetError:  # the tab was closed: the stream simply ends, nothing to log
        log.debug("an event stream's browser went away")
    return response
