"""The test API under /api: what the chat page and test drivers do as the human side of a chat
(send text, press buttons, block the bot, read the chat, wait for changes) and the flood switch."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from localchat.keys import STORE
from localchat.page import stream_changes, users_json
from localchat.store import JSON, Store


async def api_send(request: web.Request) -> web.Response:
    store = request.app[STORE]
    body = await request.json()
    user_id, text = int(body["user_id"]), str(body["text"])
    if user_id not in store.users:
        raise web.HTTPNotFound(text="unknown user")
    msg = store.add_message(user_id, text, from_bot=False)
    if text.startswith("/"):
        length = len(text.split()[0])
        msg.entities = [{"type": "bot_command", "offset": 0, "length": length}]
    store.add_update({"message": store.message_json(msg)})
    await store.touch()
    return web.json_response(store.message_json(msg))


async def api_press(request: web.Request) -> web.Response:
    store = request.app[STORE]
    body = await request.json()
    user_id, data = int(body["user_id"]), str(body["data"])
    msg = store.find(user_id, int(body["message_id"]))
    if msg is None:
        raise web.HTTPNotFound(text="unknown message")
    buttons = [b for row in (msg.reply_markup or {}).get("inline_keyboard", []) for b in row]
    if not any(b.get("callback_data") == data for b in buttons):
        raise web.HTTPBadRequest(text="no such button")
    query_id = str(store.next_callback_id)
    store.next_callback_id += 1
    query = {
        "id": query_id,
        "from": store.user_json(user_id),
        "message": store.message_json(msg),
        "chat_instance": str(user_id),
        "data": data,
    }
    store.add_update({"callback_query": query})
    await store.touch()
    return web.json_response({"callback_query_id": query_id})


async def api_flood(request: web.Request) -> web.Response:
    """``{"count": k, "retry_after": s}``: the next k sends or edits answer 429, retry after s."""
    body = await request.json()
    count, retry_after = int(body["count"]), int(body.get("retry_after", 1))
    if count < 0 or retry_after < 1:
        raise web.HTTPBadRequest(text="count must be >= 0 and retry_after >= 1")
    request.app[STORE].flood.force(count, retry_after)
    return web.json_response({"count": count, "retry_after": retry_after})


async def api_block(request: web.Request) -> web.Response:
    """``{"user_id": u, "blocked": true}``: the user blocks (or unblocks) the bot; while blocked,
    sending to them answers 403 "Forbidden: bot was blocked by the user", as Telegram does."""
    store = request.app[STORE]
    body = await request.json()
    user_id, blocked = int(body["user_id"]), bool(body.get("blocked", True))
    if user_id not in store.users:
        raise web.HTTPNotFound(text="unknown user")
    if blocked:
        store.blocked.add(user_id)
    else:
        store.blocked.discard(user_id)
    return web.json_response({"user_id": user_id, "blocked": blocked})


def _snapshot(store: Store, user_id: int) -> list[JSON]:
    return [
        {
            "message_id": m.message_id,
            "from_bot": m.from_bot,
            "text": m.text,
            "parse_mode": m.parse_mode,
            "edit_count": m.edit_count,
            "reply_markup": m.reply_markup,
        }
        for m in store.messages.get(user_id, [])
        if not m.deleted
    ]


async def api_messages(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response(_snapshot(store, int(request.match_info["user_id"])))


async def api_answers(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE].callback_answers)


async def api_changes(request: web.Request) -> web.Response:
    store = request.app[STORE]
    after = int(request.query.get("after", "0"))
    timeout = min(float(request.query.get("timeout", "30")), 60.0)
    await store.wait_until(lambda: store.version > after, timeout)
    return web.json_response({"version": store.version})


async def api_users(request: web.Request) -> web.Response:
    return web.json_response(users_json(request.app[STORE]))


async def api_events(request: web.Request) -> web.StreamResponse:
    return await stream_changes(request.app[STORE], request)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _checked(handler: Handler) -> Handler:
    """A body that is not JSON, a missing field or a non-number id is a 400 naming the problem,
    not a 500: a test driver with a typo should learn what it got wrong."""

    @functools.wraps(handler)
    async def wrapper(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except KeyError as e:
            raise web.HTTPBadRequest(text=f"missing field {e}") from e
        except (ValueError, TypeError) as e:
            raise web.HTTPBadRequest(text=f"bad request: {e}") from e

    return wrapper


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/send", _checked(api_send))
    app.router.add_post("/api/press", _checked(api_press))
    app.router.add_post("/api/flood", _checked(api_flood))
    app.router.add_post("/api/block", _checked(api_block))
    app.router.add_get("/api/messages/{user_id}", _checked(api_messages))
    app.router.add_get("/api/callback-answers", api_answers)
    app.router.add_get("/api/changes", _checked(api_changes))
    app.router.add_get("/api/users", api_users)
    app.router.add_get("/api/events", api_events)
