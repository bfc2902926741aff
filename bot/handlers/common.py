"""Small helpers every handler uses: answer in place, and turn broker failures into words."""

from __future__ import annotations

from telegram import InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from bot.broker import BrokerError
from bot.context import ChatContext, texts
from bot.views import problem


async def say(
    update: Update, text: str, keyboard: InlineKeyboardMarkup | None = None, *, edit: bool = True
) -> Message | None:
    """Edit the message whose button was pressed (``edit``), or send a new one."""
    query = update.callback_query
    if edit and query is not None and query.message is not None:
        try:
            result = await query.edit_message_text(text, reply_markup=keyboard)
        except BadRequest as e:
            if "not modified" not in str(e).lower():
                raise
            return None
        return result if isinstance(result, Message) else None
    chat = update.effective_chat
    assert chat is not None
    return await chat.send_message(text, reply_markup=keyboard)


async def answer_button(update: Update, text: str | None = None) -> None:
    """Acknowledge a button press first, as Telegram asks."""
    if update.callback_query is not None:
        await update.callback_query.answer(text)


async def report(update: Update, context: ChatContext, error: BrokerError) -> None:
    """Tell the user, in their language, why the broker could not help."""
    await say(update, problem(await texts(update, context), error), edit=False)
