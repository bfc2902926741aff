"""The Bot API methods python-telegram-bot uses, answered under /bot<token>/<method> with
Telegram's envelopes and Telegram's error descriptions (400, 401, 404, 409 and 429)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from localchat.errors import TERMINATED, WEBHOOK_ACTIVE, BotApiError, fail
from localchat.keys import SETTINGS, STORE
from localchat.markup import TextError, check_markup, check_text
from localchat.store import JSON, Store, StoredMessage
from localchat.webhook import delete_webhook, get_webhook_info, set_webhook

Method = Callable[[Store, JSON], Awaitable[Any]]


async def _params(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        data: JSON = await request.json()
        return data
    out: JSON = {**request.query}
    for key, value in (await request.post()).items():
        if isinstance(value, str):
            out[key] = value
    for key, value in out.items():
        if key != "text":
            with contextlib.suppress(ValueError):
                out[key] = json.loads(value)
    return out


def _flood(store: Store, chat_id: int) -> None:
    wait = store.flood.check(chat_id)
    if wait is not None:
        raise BotApiError(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})


def _message(store: Store, params: JSON) -> StoredMessage:
    msg = store.find(int(params["chat_id"]), int(params["message_id"]))
    if msg is None:
        raise BotApiError(400, "Bad Request: message to edit not found")
    return msg


async def get_me(store: Store, params: JSON) -> JSON:
    return store.bot


async def get_updates(store: Store, params: JSON) -> list[JSON]:
    if store.webhook_url:
        raise BotApiError(409, WEBHOOK_ACTIVE)
    offset = int(params.get("offset", 0))
    limit = int(params.get("limit", 100))
    timeout = float(params.get("timeout", 0))
    store.poll_generation += 1
    mine = store.poll_generation
    await store.wake()  # an older open poll answers 409 now, as Telegram's does
    if offset:
        store.updates = [u for u in store.updates if u["update_id"] >= offset]
    await store.wait_until(
        lambda: bool(store.updates or store.webhook_url) or store.poll_generation != mine,
        timeout,
    )
    if store.poll_generation != mine:
        raise BotApiError(409, TERMINATED)
    if store.webhook_url:
        raise BotApiError(409, WEBHOOK_ACTIVE)
    return store.updates[:limit]


async def send_message(store: Store, params: JSON) -> JSON:
    chat_id = int(params["chat_id"])
    if chat_id not in store.users:
        raise BotApiError(400, "Bad Request: chat not found")
    if chat_id in store.blocked:
        raise BotApiError(403, "Forbidden: bot was blocked by the user")
    text, parse_mode = str(params.get("text", "")), params.get("parse_mode")
    check_text(text, parse_mode)
    check_markup(params.get("reply_markup"))
    _flood(store, chat_id)
    msg = store.add_message(chat_id, text, from_bot=True)
    msg.parse_mode = parse_mode
    msg.reply_markup = params.get("reply_markup")
    await store.touch()
    return store.message_json(msg)


async def edit_message_text(store: Store, params: JSON) -> JSON:
    msg = _message(store, params)
    text, parse_mode = str(params.get("text", "")), params.get("parse_mode")
    check_text(text, parse_mode)
    markup = params.get("reply_markup")
    check_markup(markup)
    if text == msg.text and markup == msg.reply_markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    _flood(store, msg.chat_id)
    msg.text, msg.reply_markup, msg.parse_mode = text, markup, parse_mode
    msg.edit_count += 1
    await store.touch()
    return store.message_json(msg)


async def edit_message_reply_markup(store: Store, params: JSON) -> JSON:
    msg = _message(store, params)
    markup = params.get("reply_markup")
    check_markup(markup)
    if markup == msg.reply_markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    _flood(store, msg.chat_id)
    msg.reply_markup = markup
    msg.edit_count += 1
    await store.touch()
    return store.message_json(msg)


async def answer_callback_query(store: Store, params: JSON) -> bool:
    answer = {
        "callback_query_id": str(params["callback_query_id"]),
        "text": params.get("text"),
        "show_alert": bool(params.get("show_alert", False)),
    }
    store.callback_answers.append(answer)
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
    """Check the token, run the method and wrap its result or error as Telegram does."""
    if request.match_info["token"] != request.app[SETTINGS].bot_token:
        return fail(401, "Unauthorized")
    method = METHODS.get(request.match_info["method"].lower())
    if method is None:
        return fail(404, "Not Found")
    try:
        result = await method(request.app[STORE], await _params(request))
    except BotApiError as exc:
        return fail(exc.code, exc.description, exc.parameters)
    except TextError as exc:
        return fail(400, exc.description)
    except (KeyError, ValueError, TypeError) as exc:
        return fail(400, f"Bad Request: {exc}")
    return web.json_response({"ok": True, "result": result})
