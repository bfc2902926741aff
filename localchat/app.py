"""The aiohttp app: Bot API methods under /bot<token>/ and a test API under /api."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from localchat.page import STATIC, index, stream_changes, users_json
from localchat.settings import Settings
from localchat.store import JSON, Store
from localchat.webhook import run_deliverer

logger = logging.getLogger(__name__)

STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)

Method = Callable[[Store, JSON], Awaitable[Any]]


class BotApiError(Exception):
    """A Bot API error answered as ``{"ok": false, ...}``."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description


def _fail(code: int, description: str) -> web.Response:
    body = {"ok": False, "error_code": code, "description": description}
    return web.json_response(body, status=code)


async def _params(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        data: JSON = await request.json()
        return data
    form = await request.post()
    out: JSON = {}
    for key, value in form.items():
        if not isinstance(value, str):
            continue
        try:
            out[key] = json.loads(value) if key != "text" else value
        except ValueError:
            out[key] = value
    return out


def _message(store: Store, params: JSON) -> Any:
    msg = store.find(int(params["chat_id"]), int(params["message_id"]))
    if msg is None:
        raise BotApiError(400, "Bad Request: message to edit not found")
    return msg


async def get_me(store: Store, params: JSON) -> JSON:
    return store.bot


async def get_updates(store: Store, params: JSON) -> list[JSON]:
    if store.webhook_url:
        raise BotApiError(409, "Conflict: can't use getUpdates method while webhook is active")
    offset = int(params.get("offset", 0))
    limit = int(params.get("limit", 100))
    timeout = float(params.get("timeout", 0))
    if offset:
        store.updates = [u for u in store.updates if u["update_id"] >= offset]
    await store.wait_until(lambda: bool(store.updates), timeout)
    return store.updates[:limit]


async def send_message(store: Store, params: JSON) -> JSON:
    chat_id = int(params["chat_id"])
    if chat_id not in store.users:
        raise BotApiError(400, "Bad Request: chat not found")
    msg = store.add_message(chat_id, str(params["text"]), from_bot=True)
    msg.parse_mode = params.get("parse_mode")
    msg.reply_markup = params.get("reply_markup")
    await store.touch()
    return store.message_json(msg)


async def edit_message_text(store: Store, params: JSON) -> JSON:
    msg = _message(store, params)
    text = str(params["text"])
    markup = params.get("reply_markup")
    if text == msg.text and markup == msg.reply_markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    msg.text, msg.reply_markup = text, markup
    msg.parse_mode = params.get("parse_mode")
    msg.edit_count += 1
    await store.touch()
    result: JSON = store.message_json(msg)
    return result


async def edit_message_reply_markup(store: Store, params: JSON) -> JSON:
    msg = _message(store, params)
    markup = params.get("reply_markup")
    if markup == msg.reply_markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    msg.reply_markup = markup
    msg.edit_count += 1
    await store.touch()
    result: JSON = store.message_json(msg)
    return result


async def answer_callback_query(store: Store, params: JSON) -> bool:
    store.callback_answers.append(
        {
            "callback_query_id": str(params["callback_query_id"]),
            "text": params.get("text"),
            "show_alert": bool(params.get("show_alert", False)),
        }
    )
    await store.touch()
    return True


async def delete_message(store: Store, params: JSON) -> bool:
    _message(store, params).deleted = True
    await store.touch()
    return True


async def send_chat_action(store: Store, params: JSON) -> bool:
    return True


async def set_my_commands(store: Store, params: JSON) -> bool:
    store.commands = list(params.get("commands", []))
    return True


async def get_my_commands(store: Store, params: JSON) -> list[JSON]:
    return store.commands


async def delete_my_commands(store: Store, params: JSON) -> bool:
    store.commands = []
    return True


async def set_webhook(store: Store, params: JSON) -> bool:
    store.webhook_url = str(params["url"])
    store.webhook_secret = str(params.get("secret_token", ""))
    if params.get("drop_pending_updates"):
        store.updates.clear()
    await store.touch()
    return True


async def delete_webhook(store: Store, params: JSON) -> bool:
    store.webhook_url = ""
    if params.get("drop_pending_updates"):
        store.updates.clear()
    return True


async def get_webhook_info(store: Store, params: JSON) -> JSON:
    return {
        "url": store.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": len(store.updates),
    }


METHODS: dict[str, Method] = {
    "getme": get_me,
    "getupdates": get_updates,
    "sendmessage": send_message,
    "editmessagetext": edit_message_text,
    "editmessagereplymarkup": edit_message_reply_markup,
    "answercallbackquery": answer_callback_query,
    "deletemessage": delete_message,
    "sendchataction": send_chat_action,
    "setmycommands": set_my_commands,
    "getmycommands": get_my_commands,
    "deletemycommands": delete_my_commands,
    "setwebhook": set_webhook,
    "deletewebhook": delete_webhook,
    "getwebhookinfo": get_webhook_info,
}


async def bot_method(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.match_info["token"] != settings.bot_token:
        return _fail(401, "Unauthorized")
    method = METHODS.get(request.match_info["method"].lower())
    if method is None:
        return _fail(404, "Not Found")
    try:
        result = await method(request.app[STORE], await _params(request))
    except BotApiError as exc:
        return _fail(exc.code, exc.description)
    except (KeyError, ValueError, TypeError) as exc:
        return _fail(400, f"Bad Request: {exc}")
    return web.json_response({"ok": True, "result": result})


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


async def _deliverer(app: web.Application) -> AsyncIterator[None]:
    async for _ in run_deliverer(app[STORE]):
        yield


async def api_users(request: web.Request) -> web.Response:
    return web.json_response(users_json(request.app[STORE]))


async def api_events(request: web.Request) -> web.StreamResponse:
    return await stream_changes(request.app[STORE], request)


def create_app(settings: Settings) -> web.Application:
    """Build the localchat application for ``settings``."""
    app = web.Application()
    bot_id = int(settings.bot_token.split(":", 1)[0])
    bot = {
        "id": bot_id,
        "is_bot": True,
        "first_name": "chatbank",
        "username": settings.bot_username,
        "can_join_groups": False,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }
    app[SETTINGS] = settings
    app[STORE] = Store(bot=bot, users={u.id: u for u in settings.users})
    app.cleanup_ctx.append(_deliverer)
    app.router.add_post("/bot{token}/{method}", bot_method)
    app.router.add_get("/bot{token}/{method}", bot_method)
    app.router.add_post("/api/send", api_send)
    app.router.add_post("/api/press", api_press)
    app.router.add_get("/api/messages/{user_id}", api_messages)
    app.router.add_get("/api/callback-answers", api_answers)
    app.router.add_get("/api/changes", api_changes)
    app.router.add_get("/api/users", api_users)
    app.router.add_get("/api/events", api_events)
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC)
    return app
