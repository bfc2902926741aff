"""Conversation state in the bot's database, so a restarted bot (or another bot process behind
the same webhook) carries on a /link half-way through. Only ConversationHandler states are
kept; user, chat, bot and callback data are not used by chatbank and are not persisted."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import select
from telegram.ext import BasePersistence, PersistenceInput
from telegram.ext._utils.types import CDCData, ConversationDict, ConversationKey

from bot.store.repo import Sessions
from bot.store.tables import ConversationState

NOTHING = PersistenceInput(bot_data=False, chat_data=False, user_data=False, callback_data=False)


class SqlPersistence(BasePersistence[dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    def __init__(self, sessions: Sessions, update_interval: float = 1.0) -> None:
        super().__init__(store_data=NOTHING, update_interval=update_interval)
        self._sessions = sessions

    @property
    def sessions(self) -> Sessions:
        return self._sessions

    async def get_conversations(self, name: str) -> ConversationDict:
        async with self._sessions() as session:
            rows = await session.exec(
                select(ConversationState).where(ConversationState.name == name)
            )
            return {tuple(json.loads(r.key)): json.loads(r.state) for r in rows.all()}

    async def get_state(self, name: str, key: ConversationKey) -> object | None:
        """One conversation's state, fresh from the database (see shared_conversations)."""
        async with self._sessions() as session:
            row = await session.get(ConversationState, (name, json.dumps(list(key))))
            return None if row is None else json.loads(row.state)

    async def update_conversation(
        self, name: str, key: ConversationKey, new_state: object | None
    ) -> None:
        async with self._sessions() as session:
            row = await session.get(ConversationState, (name, json.dumps(list(key))))
            if new_state is None:
                if row is not None:
                    await session.delete(row)
            else:
                state = json.dumps(new_state)
                if row is None:
                    row = ConversationState(name=name, key=json.dumps(list(key)), state=state)
                row.state = state
                session.add(row)
            await session.commit()

    # chatbank keeps no user, chat, bot or callback data in PTB's stores
    async def get_user_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_chat_data(self) -> dict[int, dict[Any, Any]]:
        return {}

    async def get_bot_data(self) -> dict[Any, Any]:
        return {}

    async def get_callback_data(self) -> CDCData | None:
        return None

    async def update_user_data(self, user_id: int, data: dict[Any, Any]) -> None:
        return None

    async def update_chat_data(self, chat_id: int, data: dict[Any, Any]) -> None:
        return None

    async def update_bot_data(self, data: dict[Any, Any]) -> None:
        return None

    async def update_callback_data(self, data: CDCData) -> None:
        return None

    async def drop_chat_data(self, chat_id: int) -> None:
        return None

    async def drop_user_data(self, user_id: int) -> None:
        return None

    async def refresh_user_data(self, user_id: int, user_data: dict[Any, Any]) -> None:
        return None

    async def refresh_chat_data(self, chat_id: int, chat_data: dict[Any, Any]) -> None:
        return None

    async def refresh_bot_data(self, bot_data: dict[Any, Any]) -> None:
        return None

    async def flush(self) -> None:
        return None
