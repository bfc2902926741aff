"""The in-memory world of localchat: chats, messages, pending updates and a change version."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from localchat.flood import FloodControl
from localchat.settings import DemoUser

JSON = dict[str, Any]


@dataclass
class StoredMessage:
    """One message in a private chat, with its current text and keyboard."""

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


@dataclass
class Store:
    """All state; every change bumps ``version`` and wakes the waiters on ``changed``."""

    bot: JSON
    users: dict[int, DemoUser]
    messages: dict[int, list[StoredMessage]] = field(default_factory=dict)
    updates: list[JSON] = field(default_factory=list)
    callback_answers: list[JSON] = field(default_factory=list)
    commands: list[JSON] = field(default_factory=list)
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_epoch: int = 0  # bumped by setWebhook/deleteWebhook: restarts delivery at once
    webhook_last_error_date: int = 0
    webhook_last_error_message: str = ""
    poll_generation: int = 0  # bumped by each getUpdates; an older open poll sees a conflict
    flood: FloodControl = field(default_factory=FloodControl)
    blocked: set[int] = field(default_factory=set)  # users who blocked the bot: sends get 403
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
        user = self.users[chat_id]
        return {"id": chat_id, "type": "private", "first_name": user.first_name}

    def message_json(self, msg: StoredMessage) -> JSON:
        sender = self.bot if msg.from_bot else self.user_json(msg.chat_id)
        out: JSON = {
            "message_id": msg.message_id,
            "from": sender,
            "chat": self.chat_json(msg.chat_id),
            "date": msg.date,
            "text": msg.text,
        }
        if msg.entities:
            out["entities"] = msg.entities
        if msg.reply_markup is not None:
            out["reply_markup"] = msg.reply_markup
        if msg.edit_count:
            out["edit_date"] = int(time.time())
        return out

    def find(self, chat_id: int, message_id: int) -> StoredMessage | None:
        for msg in self.messages.get(chat_id, []):
            if msg.message_id == message_id and not msg.deleted:
                return msg
        return None

    def add_message(self, chat_id: int, text: str, *, from_bot: bool) -> StoredMessage:
        msg = StoredMessage(self.next_message_id, chat_id, from_bot, text, int(time.time()))
        self.next_message_id += 1
        self.messages.setdefault(chat_id, []).append(msg)
        return msg

    def add_update(self, payload: JSON) -> JSON:
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
                await asyncio.wait_for(
                    self.changed.wait_for(lambda: self.closing or predicate()), within
                )
            return bool(predicate())
