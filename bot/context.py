"""The typed callback context: every handler reaches the bot's services through it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession
from telegram import Update
from telegram.ext import Application, CallbackContext, ExtBot

from bot.broker import Bank, BrokerClient, BrokerError
from bot.i18n import Tr, pick_language, tr
from bot.settings import BotSettings
from bot.store import repo
from bot.store.tables import ChatUser

SERVICES = "chatbank.services"


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    """What handlers need: settings, the broker client, the database and a clock."""

    settings: BotSettings
    broker: BrokerClient
    sessions: async_sessionmaker[AsyncSession]
    clock: Callable[[], datetime] = utc_now
    banks: dict[str, Bank] = field(default_factory=dict)  # what the broker offers, by id

    async def known_banks(self, *, refresh: bool = False) -> dict[str, Bank]:
        """The broker's banks (fetched once, or again with ``refresh``)."""
        if refresh or not self.banks:
            self.banks = {b.bank_id: b for b in await self.broker.banks()}
        return self.banks

    async def bank_name(self, bank_id: str) -> str:
        try:
            bank = (await self.known_banks()).get(bank_id)
        except BrokerError:
            bank = None
        return bank.name if bank else bank_id


class ChatContext(CallbackContext[ExtBot[Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]):
    @property
    def services(self) -> Services:
        return cast(Services, self.bot_data[SERVICES])


ChatApp = Application[ExtBot[Any], ChatContext, dict[Any, Any], dict[Any, Any], dict[Any, Any], Any]


async def chat_user(update: Update, context: ChatContext) -> ChatUser:
    """The sender's row, created on first contact with Telegram's language."""
    user, chat = update.effective_user, update.effective_chat
    assert user is not None and chat is not None
    services = context.services
    row = await repo.get_user(services.sessions, user.id)
    if row is None:
        language = pick_language(user.language_code, services.settings.default_language)
        row = await repo.save_user(
            services.sessions,
            ChatUser(telegram_user_id=user.id, chat_id=chat.id, language=language),
        )
    return row


async def texts(update: Update, context: ChatContext) -> Tr:
    row = await chat_user(update, context)
    return tr(row.language or "en", row.time_zone)


async def subject_of(update: Update, context: ChatContext, *, create: bool) -> str | None:
    """The broker's handle for the sender; with ``create``, asks the broker for one."""
    row = await chat_user(update, context)
    if row.subject_id is None and create:
        row.subject_id = await context.services.broker.new_subject()
        await repo.save_user(context.services.sessions, row)
    return row.subject_id
