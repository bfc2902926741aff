"""Reads and writes of the bot's own tables."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.store.tables import ChatUser, ReceiptMessage, SeenDelivery, UserState

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
        user = await session.get(ChatUser, telegram_user_id)
        if user is not None:
            await session.exec(
                delete(ReceiptMessage).where(col(ReceiptMessage.chat_id) == user.chat_id)
            )
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


APPROVALS = "approvals"  # consent id → id of the message with its "Approve at …" button
SUPPORT = "support"  # the chat with a person at a bank: consent id, bank id, conversation
RATINGS = "support_ratings"  # closed conversation → its consent id, until rated (a few)
KEPT = (APPROVALS, SUPPORT, RATINGS)  # outlive any flow


async def save_state(sessions: Sessions, telegram_user_id: int, data: dict[str, Any]) -> None:
    """Replace the user's flow state; the open approval links and a chat with the bank's
    staff outlive any flow."""
    async with sessions() as session:
        row = await session.get(UserState, telegram_user_id)
        old = json.loads(row.data) if row else {}
        data = {**{k: old[k] for k in KEPT if old.get(k) and k not in data}, **data}
        await session.merge(UserState(telegram_user_id=telegram_user_id, data=json.dumps(data)))
        await session.commit()


async def remember_approval(
    sessions: Sessions, telegram_user_id: int, consent_id: str, message_id: int
) -> None:
    """Keep which message holds a consent's "Approve at …" button (a few at most)."""
    state = await load_state(sessions, telegram_user_id)
    approvals = dict(state.get(APPROVALS) or {})
    approvals[consent_id] = message_id
    state[APPROVALS] = dict(list(approvals.items())[-5:])
    await save_state(sessions, telegram_user_id, state)


async def take_approval(sessions: Sessions, telegram_user_id: int, consent_id: str) -> int | None:
    """The message with that consent's approval button, forgotten as it is returned."""
    state = await load_state(sessions, telegram_user_id)
    approvals = dict(state.get(APPROVALS) or {})
    message_id = approvals.pop(consent_id, None)
    if message_id is None:
        return None
    state[APPROVALS] = approvals
    await save_state(sessions, telegram_user_id, state)
    return int(message_id)


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
        # an edit for a receipt older than this comes as a new message
        await session.exec(delete(ReceiptMessage).where(col(ReceiptMessage.shown_at) < before))
        await session.commit()


async def forget_seen(sessions: Sessions, key: str) -> None:
    """Undo :func:`first_time` when handling failed, so a retry is handled."""
    async with sessions() as session:
        await session.exec(delete(SeenDelivery).where(col(SeenDelivery.id) == key[:120]))
        await session.commit()


async def support_chat(sessions: Sessions, telegram_user_id: int) -> dict[str, Any] | None:
    """The user's chat with a person at a bank, if one is on: {consent_id, bank_id,
    conversation (once the bank opened one)}."""
    found = (await load_state(sessions, telegram_user_id)).get(SUPPORT)
    return dict(found) if isinstance(found, dict) and found.get("consent_id") else None


async def set_support_chat(
    sessions: Sessions, telegram_user_id: int, chat: dict[str, Any] | None
) -> None:
    """Start, update (``chat``) or end (None) the user's chat with a bank's staff."""
    state = await load_state(sessions, telegram_user_id)
    state[SUPPORT] = chat or {}
    await save_state(sessions, telegram_user_id, state)


async def remember_rating(
    sessions: Sessions, telegram_user_id: int, conversation: str, consent_id: str
) -> None:
    """A closed conversation the user may rate (the button names only the conversation)."""
    state = await load_state(sessions, telegram_user_id)
    ratings = dict(state.get(RATINGS) or {})
    ratings[conversation] = consent_id
    state[RATINGS] = dict(list(ratings.items())[-5:])
    await save_state(sessions, telegram_user_id, state)


async def rating_consent(
    sessions: Sessions, telegram_user_id: int, conversation: str
) -> str | None:
    ratings = (await load_state(sessions, telegram_user_id)).get(RATINGS) or {}
    found = ratings.get(conversation) if isinstance(ratings, dict) else None
    return str(found) if found else None
