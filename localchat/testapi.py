"""The test API under /api: what the chat page and test drivers do as the human side of a chat
(send text, press buttons, block the bot, read the chat, wait for changes) and the flood switch."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from localchat.keys import SETTINGS, STORE
from localchat.page import stream_changes, users_json
from localchat.store import JSON, Store


def _chat_of(store: Store, body: JSON, user_id: int) -> int:
    """The chat a test acts in: the user's private chat unless ``chat_id`` names a group."""
    if user_id not in store.users:
        raise web.HTTPNotFound(text="unknown user")
    chat_id = int(body.get("chat_id", user_id))
    if not store.has_chat(chat_id):
        raise web.HTTPNotFound(text="unknown chat")
    return chat_id


async def api_send(request: web.Request) -> web.Response:
    """``{"user_id", "text", "chat_id"?}``: the user writes in their private chat or a group."""
    store = request.app[STORE]
    body = await request.json()
    user_id, text = int(body["user_id"]), str(body["text"])
    chat_id = _chat_of(store, body, user_id)
    msg = store.add_message(chat_id, text, from_bot=False, sender_id=user_id)
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
    chat_id = _chat_of(store, body, user_id)
    msg = store.find(chat_id, int(body["message_id"]))
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
        "chat_instance": str(chat_id),
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


async def api_hold_sends(request: web.Request) -> web.Response:
    """``{"on": true}``: hold every new sendMessage of the bot, unrecorded, until ``{"on": false}``
    answers each held call with 502 "Bad Gateway" (crash tests, see ``localchat/hold.py``)."""
    body = await request.json()
    on = body["on"]
    if not isinstance(on, bool):
        raise web.HTTPBadRequest(text="on must be true or false")
    hold = request.app[STORE].hold
    held = hold.held
    if on:
        hold.start()
    else:
        hold.release()
    return web.json_response({"on": hold.on, "held": held})


async def api_held(request: web.Request) -> web.Response:
    """Whether sends are held and how many wait now."""
    hold = request.app[STORE].hold
    return web.json_response({"on": hold.on, "held": hold.held})


def _snapshot(store: Store, chat_id: int) -> list[JSON]:
    return [
        {
            "message_id": m.message_id,
            "from_bot": m.from_bot,
            "sender_id": None if m.from_bot else (m.sender_id or m.chat_id),
            "text": m.text,
            "parse_mode": m.parse_mode,
            "edit_count": m.edit_count,
            "reply_markup": m.reply_markup,
            "date": m.date,
            "edit_date": m.edited_at,
            "document": m.document,
            "photo": m.photo,
        }
        for m in store.messages.get(chat_id, [])
        if not m.deleted
    ]


async def api_group(request: web.Request) -> web.Response:
    """``{"chat_id": negative id, "title"}``: a group chat every known user may write in."""
    store = request.app[STORE]
    body = await request.json()
    chat_id, title = int(body["chat_id"]), str(body.get("title") or "group")
    if chat_id >= 0:
        raise web.HTTPBadRequest(text="group chat ids are negative, as Telegram's")
    store.groups[chat_id] = title
    return web.json_response(store.chat_json(chat_id))


async def api_file(request: web.Request) -> web.Response:
    """A file the bot sent, as a download (the page links documents here)."""
    found = request.app[STORE].files.get(request.match_info["file_id"])
    token = request.match_info.get("token")
    if found is None or (token is not None and token != request.app[SETTINGS].bot_token):
        raise web.HTTPNotFound(text="unknown file")
    name, content_type, data = found
    disposition = "inline" if content_type.startswith("image/") else "attachment"
    return web.Response(
        body=data,
        content_type=content_type or "application/octet-stream",
        headers={"Content-Disposition": f'{disposition}; filename="{name}"'},
    )


async def api_messages(request: web.Request) -> web.Response:
    store = request.app[STORE]
    return web.json_response(_snapshot(store, int(request.match_info["user_id"])))


async def api_answers(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE].callback_answers)


async def api_chat_actions(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE].chat_actions)


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
    app.router.add_post("/api/groups", _checked(api_group))
    app.router.add_post("/api/block", _checked(api_block))
    app.router.add_post("/api/hold-sends", _checked(api_hold_sends))
    app.router.add_get("/api/held", api_held)
    app.router.add_get("/api/files/{file_id}", api_file)
    app.router.add_get("/file/bot{token}/{file_id}/{name}", api_file)  # getFile's file_path
    app.router.add_get("/api/messages/{user_id}", _checked(api_messages))
    app.router.add_get("/api/callback-answers", api_answers)
    app.router.add_get("/api/chat-actions", api_chat_actions)
    app.router.add_get("/api/changes", _checked(api_changes))
    app.router.add_get("/api/users", api_users)
    app.router.add_get("/api/events", api_events)
