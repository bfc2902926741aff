"""Conversation state that any bot process can carry on.

PTB's ConversationHandler keeps its states in memory, reads the persistence once at start-up and
writes it back every ``update_interval``. Behind a load balancer the next step of a /link often
reaches another process. So, on PostgreSQL, each update of a chat first takes the chat's
advisory lock (two processes never handle one chat's updates at once: the reply to one step can
reach the user, and the user's next press another process, before the first process has
recorded the new state), then re-reads its conversation's state from the database (group -2,
ahead of the private-chat guard); the state the update left is written back as soon as it is
handled and the lock let go (group 99). A killed process's lock ends with its database session.

It reaches into two private parts of PTB's ConversationHandler (``_get_key`` and
``_conversations``); PTB offers no public way to refresh one key, and
tests/bot/test_shared_conversations.py covers the pinned version.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Update
from telegram.ext import Application, ConversationHandler, TypeHandler

from bot.store.persistence import SqlPersistence

log = logging.getLogger(__name__)
# before the private-chat guard (group -1: one handler runs per group, and the guard may stop an
# update) and after everything else
LOAD_GROUP, SAVE_GROUP = -2, 99
LOCK_TIMEOUT_MS = 10_000  # a chat's update waits at most this long for another process


def _conversations(application: Application[Any, Any, Any, Any, Any, Any]) -> list[Any]:
    return [
        h
        for handlers in application.handlers.values()
        for h in handlers
        if isinstance(h, ConversationHandler) and h.persistent and h.name
    ]


class SharedConversations:
    def __init__(self, persistence: SqlPersistence) -> None:
        self.persistence = persistence
        self._held: dict[int, AsyncSession] = {}  # update_id → the session holding the lock

    async def load(self, update: object, context: Any) -> None:
        """Lock the chat (PostgreSQL) and bring its conversation states up to date."""
        if not isinstance(update, Update):
            return
        chat, user = update.effective_chat, update.effective_user
        if chat is not None and chat.type == "private" and user is not None and user.id == chat.id:
            # only updates the guard lets through reach ``save``, which lets the lock go
            await self._lock(update.update_id, chat.id)
        for handler in _conversations(context.application):
            try:
                key = handler._get_key(update)
            except RuntimeError:  # an update without a chat or a user: no conversation
                continue
            state = await self.persistence.get_state(handler.name, key)
            states = handler._conversations
            if state is None:
                states.data.pop(key, None)  # ended elsewhere; not a change to write back
            else:
                states.update_no_track({key: state})

    async def save(self, update: object, context: Any) -> None:
        """Write the states this update changed now, then let the next process have the chat."""
        try:
            await context.application.update_persistence()
        finally:
            if isinstance(update, Update):
                await self._unlock(update.update_id)

    async def _lock(self, update_id: int, chat_id: int) -> None:
        session = self.persistence.sessions()
        conn = await session.connection()
        if conn.dialect.name != "postgresql":
            await session.close()  # one process on SQLite: updates are handled in turn
            return
        try:
            await conn.execute(text(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}"))
            await conn.execute(
                text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"chatbank-chat:{chat_id}"}
            )
        except DBAPIError:
            log.warning("went ahead without the chat lock (another process held it too long)")
            await session.close()
            return
        self._held[update_id] = session

    async def _unlock(self, update_id: int) -> None:
        session = self._held.pop(update_id, None)
        if session is None:
            return
        try:
            await (await session.connection()).execute(text("SELECT pg_advisory_unlock_all()"))
        finally:
            await session.close()


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    persistence = application.persistence
    if not isinstance(persistence, SqlPersistence):
        return
    shared = SharedConversations(persistence)
    application.add_handler(TypeHandler(Update, shared.load), group=LOAD_GROUP)
    application.add_handler(TypeHandler(Update, shared.save), group=SAVE_GROUP)
