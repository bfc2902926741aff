"""The in-memory world of localchat: chats, messages, pending updates and a change version."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localchat.flood import FloodControl
from localchat.hold import SendHold
from localchat.settings import DemoUser

JSON = dict[str, Any]


@dataclass
class StoredMessage:
    """One message in a chat, with its current text and keyboard (``sender_id`` is the user
    who wrote it; in a private chat that is the chat's id)."""

    message_id: int
    chat_id: int
    from_bot: bool
    text: str
    date: int
    reply_markup: JSON | None = None
    parse_mode: str | None = None
    entities: list[JSON] = field(default_factory=list)
    edit_count: int = 0
    deleted: bool = False
    sender_id: int | None = None
    edited_at: int | None = None
    document: JSON | None = None  # {"file_id", "file_name", "mime_type", "file_size"}
    photo: JSON | None = None  # {"file_id", "width", "height", "file_size"}


@dataclass
class Store:
    """All state; every change bumps ``version`` and wakes the waiters on ``changed``."""

    bot: JSON
    users: dict[int, DemoUser]
    groups: dict[int, str] = field(default_factory=dict)  # group chat id → title (tests only)
    files: dict[str, tuple[str, str, bytes]] = field(default_factory=dict)  # id → name, type, bytes
    messages: dict[int, list[StoredMessage]] = field(default_factory=dict)
    updates: list[JSON] = field(default_factory=list)
    callback_answers: list[JSON] = field(default_factory=list)
    chat_actions: list[JSON] = field(default_factory=list)  # sendChatAction calls, in order
    commands: list[JSON] = field(default_factory=list)
    webhook_url: str = ""
    allowed_updates: frozenset[str] | None = None  # None: Telegram's default (all but a few)
    webhook_secret: str = ""
    webhook_epoch: int = 0  # bumped by setWebhook/deleteWebhook: restarts delivery at once
    webhook_last_error_date: int = 0
    webhook_last_error_message: str = ""
    poll_generation: int = 0  # bumped by each getUpdates; an older open poll sees a conflict
    flood: FloodControl = field(default_factory=FloodControl)
    blocked: set[int] = field(default_factory=set)  # users who blocked the bot: sends get 403
    hold: SendHold = field(default_factory=SendHold)  # tests only: hold the bot's sendMessage
    closing: bool = False  # set at shutdown: every waiter returns at once
    next_update_id: int = 1
    next_message_id: int = 1
    next_callback_id: int = 1
    version: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    def user_json(self, user_id: int) -> JSON:
        user = self.users[user_id]
        return {
            "id": user.id,
            "is_bot": False,
            "first_name": user.first_name,
            "language_code": user.language_code,
        }

    def chat_json(self, chat_id: int) -> JSON:
        if chat_id in self.groups:
            return {"id": chat_id, "type": "group", "title": self.groups[chat_id]}
        user = self.users[chat_id]
        return {"id": chat_id, "type": "private", "first_name": user.first_name}

    def has_chat(self, chat_id: int) -> bool:
        return chat_id in self.users or chat_id in self.groups

    def message_json(self, msg: StoredMessage) -> JSON:
        sender = self.bot if msg.from_bot else self.user_json(msg.sender_id or msg.chat_id)
        out: JSON = {
            "message_id": msg.message_id,
            "from": sender,
            "chat": self.chat_json(msg.chat_id),
            "date": msg.date,
        }
        if msg.document is not None:
            out["document"] = msg.document
        if msg.photo is not None:
            out["photo"] = [msg.photo]
        if msg.document is not None or msg.photo is not None:
            if msg.text:
                out["caption"] = msg.text
        else:
            out["text"] = msg.text
        if msg.entities:
            out["entities"] = msg.entities
        if msg.reply_markup is not None:
            out["reply_markup"] = msg.reply_markup
        if msg.edit_count:
            out["edit_date"] = msg.edited_at or int(time.time())
        return out

    def find(self, chat_id: int, message_id: int) -> StoredMessage | None:
        for msg in self.messages.get(chat_id, []):
            if msg.message_id == message_id and not msg.deleted:
                return msg
        return None

    def add_message(
        self, chat_id: int, text: str, *, from_bot: bool, sender_id: int | None = None
    ) -> StoredMessage:
        msg = StoredMessage(self.next_message_id, chat_id, from_bot, text, int(time.time()))
        msg.sender_id = sender_id
        self.next_message_id += 1
        self.messages.setdefault(chat_id, []).append(msg)
        return msg

    def set_allowed_updates(self, value: object) -> None:
        """As Telegram: a list given to getUpdates or setWebhook replaces the setting, an empty
        list means the default again, and leaving it out keeps the previous setting."""
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError("allowed_updates must be an array of strings")
        self.allowed_updates = frozenset(value) or None

    def add_update(self, payload: JSON) -> JSON | None:
        """Queue an update, unless its kind is outside ``allowed_updates`` (then Telegram never
        creates it, and neither do we)."""
        if self.allowed_updates is not None and not set(payload) <= self.allowed_updates:
            return None
        update = {"update_id": self.next_update_id, **payload}
        self.next_update_id += 1
        self.updates.append(update)
        return update

    async def touch(self) -> None:
        async with self.changed:
            self.version += 1
            self.changed.notify_all()

    async def close(self) -> None:
        """Release every long poll and event stream so the server can stop."""
        self.closing = True
        self.hold.release()
        await self.wake()

    async def wake(self) -> None:
        """Wake the waiters without announcing a change (nothing the page shows moved)."""
        async with self.changed:
            self.changed.notify_all()

    def changed_since(self, version: int) -> Callable[[], bool]:
        """A predicate that holds once the version has moved past ``version``."""
        return lambda: self.version != version

    async def wait_until(self, predicate: Callable[[], bool], within: float) -> bool:
        async with self.changed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within):
                    await self.changed.wait_for(lambda: self.closing or predicate())
            return bool(predicate())
