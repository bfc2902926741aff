"""The Bot API methods python-telegram-bot uses, answered under /bot<token>/<method> with
Telegram's envelopes and Telegram's error descriptions (400, 401, 404, 409 and 429)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from localchat.errors import TERMINATED, WEBHOOK_ACTIVE, BotApiError, fail
from localchat.keys import SETTINGS, STORE
from localchat.markup import MAX_CAPTION_LENGTH, TextError, check_markup, check_text, parse_html
from localchat.store import JSON, Store, StoredMessage
from localchat.webhook import delete_webhook, get_webhook_info, set_webhook

Method = Callable[[Store, JSON], Awaitable[Any]]


@dataclass(frozen=True)
class Upload:
    """A file posted in a multipart request (sendDocument, sendPhoto)."""

    name: str
    content_type: str
    data: bytes


async def _params(request: web.Request) -> JSON:
    if request.content_type == "application/json":
        data: JSON = await request.json()
        return data
    out: JSON = {**request.query}
    uploads: dict[str, Upload] = {}
    for key, value in (await request.post()).items():
        if isinstance(value, str):
            out[key] = value
        elif isinstance(value, web.FileField):
            uploads[key] = Upload(value.filename, value.content_type, value.file.read())
    for key, value in out.items():
        if key not in ("text", "caption"):
            with contextlib.suppress(ValueError):
                out[key] = json.loads(value)
    for key, upload in uploads.items():
        out[key] = upload
    for key, value in list(out.items()):  # attach://<name> points at another multipart field
        if isinstance(value, str) and value.startswith("attach://"):
            out[key] = uploads.get(value.removeprefix("attach://"), value)
    return out


def _chat(store: Store, params: JSON) -> int:
    chat_id = int(params["chat_id"])
    if not store.has_chat(chat_id):
        raise BotApiError(400, "Bad Request: chat not found")
    if chat_id in store.blocked:  # a private chat's id is its user's id
        raise BotApiError(403, "Forbidden: bot was blocked by the user")
    return chat_id


def _flood(store: Store, chat_id: int, params: JSON | None = None) -> None:
    paid = bool(params and params.get("allow_paid_broadcast") in (True, "true", "True"))
    wait = store.flood.check(chat_id, paid=paid)
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
    store.set_allowed_updates(params.get("allowed_updates"))
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
    if store.hold.on:  # a crash test holds the sends (localchat/hold.py): none is recorded
        await store.hold.wait()
        raise BotApiError(502, "Bad Gateway")
    chat_id = _chat(store, params)
    text, parse_mode = str(params.get("text", "")), params.get("parse_mode")
    check_text(text, parse_mode)
    markup = check_markup(params.get("reply_markup"))
    _flood(store, chat_id, params)
    msg = store.add_message(chat_id, text, from_bot=True)
    msg.parse_mode = parse_mode
    msg.reply_markup = markup
    await store.touch()
    return store.message_json(msg)


async def edit_message_text(store: Store, params: JSON) -> JSON:
    msg = _message(store, params)
    text, parse_mode = str(params.get("text", "")), params.get("parse_mode")
    check_text(text, parse_mode)
    if msg.document is not None or msg.photo is not None:
        raise BotApiError(400, "Bad Request: there is no text in the message to edit")
    markup = check_markup(params.get("reply_markup"))
    if text == msg.text and markup == msg.reply_markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    _flood(store, msg.chat_id)
    msg.text, msg.reply_markup, msg.parse_mode = text, markup, parse_mode
    msg.edit_count += 1
    msg.edited_at = int(time.time())
    await store.touch()
    return store.message_json(msg)


async def edit_message_reply_markup(store: Store, params: JSON) -> JSON:
    msg = _message(store, params)
    markup = check_markup(params.get("reply_markup"))
    if markup == msg.reply_markup:
        raise BotApiError(400, "Bad Request: message is not modified")
    _flood(store, msg.chat_id)
    msg.reply_markup = markup
    msg.edit_count += 1
    msg.edited_at = int(time.time())
    await store.touch()
    return store.message_json(msg)


def _stored_file(store: Store, value: object, default_name: str) -> JSON:
    """An uploaded file is kept and given an id; a known file id is sent again."""
    if isinstance(value, str) and value in store.files:
        name, content_type, data = store.files[value]
        return {
            "file_id": value,
            "file_name": name,
            "mime_type": content_type,
            "file_size": len(data),
        }
    if not isinstance(value, Upload):
        raise BotApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")
    if not value.data:
        raise BotApiError(400, "Bad Request: file must be non-empty")
    file_id = f"f{len(store.files) + 1}-{secrets.token_hex(8)}"
    name = value.name or default_name
    store.files[file_id] = (name, value.content_type, value.data)
    return {
        "file_id": file_id,
        "file_unique_id": file_id,
        "file_name": name,
        "mime_type": value.content_type,
        "file_size": len(value.data),
    }


async def _send_file(store: Store, params: JSON, kind: str) -> JSON:
    chat_id = _chat(store, params)
    caption, parse_mode = str(params.get("caption") or ""), params.get("parse_mode")
    if caption:
        plain = parse_html(caption) if (parse_mode or "").upper() == "HTML" else caption
        if len(plain) > MAX_CAPTION_LENGTH:
            raise BotApiError(400, "Bad Request: message caption is too long")
    markup = check_markup(params.get("reply_markup"))
    stored = _stored_file(store, params.get(kind), "document" if kind == "document" else "photo")
    if kind == "photo" and not str(stored["mime_type"]).startswith("image/"):
        raise BotApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
    _flood(store, chat_id)
    msg = store.add_message(chat_id, caption, from_bot=True)
    msg.parse_mode, msg.reply_markup = parse_mode, markup
    if kind == "document":
        msg.document = stored
    else:
        msg.photo = {
            k: stored[k] for k in ("file_id", "file_unique_id", "file_size") if k in stored
        }
        msg.photo.update(width=0, height=0)
    await store.touch()
    return store.message_json(msg)


async def send_document(store: Store, params: JSON) -> JSON:
    return await _send_file(store, params, "document")


async def send_photo(store: Store, params: JSON) -> JSON:
    return await _send_file(store, params, "photo")


async def get_file(store: Store, params: JSON) -> JSON:
    file_id = str(params["file_id"])
    if file_id not in store.files:
        raise BotApiError(400, "Bad Request: invalid file_id")
    name, _, data = store.files[file_id]
    return {
        "file_id": file_id,
        "file_unique_id": file_id,
        "file_size": len(data),
        "file_path": f"{file_id}/{name}",
    }


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


CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)


async def send_chat_action(store: Store, params: JSON) -> bool:
    """Show "typing…" (or another action) in the chat, as Telegram does, for a few seconds."""
    chat_id = _chat(store, params)
    action = str(params.get("action", ""))
    if action not in CHAT_ACTIONS:
        raise BotApiError(400, "Bad Request: wrong parameter action in request")
    store.chat_actions.append({"chat_id": chat_id, "action": action, "date": int(time.time())})
    await store.touch()
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
    "senddocument": send_document,
    "sendphoto": send_photo,
    "getfile": get_file,
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
