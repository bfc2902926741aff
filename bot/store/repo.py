"""Reads and writes of the bot's own tables."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.tables import ChatUser, SeenDelivery, UserState

Sessions = async_sessionmaker[AsyncSession]


async def get_user(sessions: Sessions, telegram_user_id: int) -> ChatUser | None:
    async with sessions() as session:
        return await session.get(ChatUser, telegram_user_id)


async def user_by_subject(sessions: Sessions, subject_id: str) -> ChatUser | None:
    async with sessions() as session:
        rows = await session.exec(select(ChatUser).where(ChatUser.subject_id == subject_id))
        return rows.first()


async def save_user(sessions: Sessions, user: ChatUser) -> ChatUser:
    async with sessions() as session:
        merged = await session.merge(user)
        await session.commit()
        return merged


async def forget_user(sessions: Sessions, telegram_user_id: int) -> None:
    """Delete everything the bot holds about a person (after the broker deleted its part)."""
    async with sessions() as session:
        await session.exec(
            delete(UserState).where(col(UserState.telegram_user_id) == telegram_user_id)
        )
        await session.exec(
            delete(ChatUser).where(col(ChatUser.telegram_user_id) == telegram_user_id)
        )
        await session.commit()


async def load_state(sessions: Sessions, telegram_user_id: int) -> dict[str, Any]:
    async with sessions() as session:
        row = await session.get(UserState, telegram_user_id)
        return dict(json.loads(row.data)) if row else {}


async def save_state(sessions: Sessions, telegram_user_id: int, data: dict[str, Any]) -> None:
    async with sessions() as session:
        await session.merge(UserState(telegram_user_id=telegram_user_id, data=json.dumps(data)))
        await session.commit()


async def first_time(sessions: Sessions, key: str, now: int) -> bool:
    """Record ``key``; False if it was already recorded (a replay or a duplicate)."""
    async with sessions() as session:
        session.add(SeenDelivery(id=key[:120], seen_at=now))
        try:
            await session.commit()
        except IntegrityError:
            return False
        return True


async def prune_seen(sessions: Sessions, before: int) -> None:
    async with sessions() as session:
        await session.exec(delete(SeenDelivery).where(col(SeenDelivery.seen_at) < before))
        await session.commit()


async def forget_seen(sessions: Sessions, key: str) -> None:
    """Undo :func:`first_time` when handling failed, so a retry is handled."""
    async with sessions() as session:
        await session.exec(delete(SeenDelivery).where(col(SeenDelivery.id) == key[:120]))
        await session.commit()
