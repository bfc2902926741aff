"""Private chats only, and a button acts only for the user whose chat it is in.

Runs before every other handler (group -1). In a group, supergroup or channel the bot answers
that it only works in private chats, with no data and no buttons, and stops. A button pressed by
someone other than the private chat's owner (which Telegram never delivers, but a forged or
replayed update could) is acknowledged and ignored, so nobody's data lands in another's chat.

Being first, it also starts the update's time budget (:meth:`bot.broker.BrokerClient.begin`):
the user gets an answer within it however many broker calls the handler makes.
"""

from __future__ import annotations

import logging

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import ApplicationHandlerStop

from bot.context import ChatContext
from bot.i18n import pick_language, tr

log = logging.getLogger(__name__)


async def private_only(update: Update, context: ChatContext) -> None:
    """Let private chats through; answer everything else with one plain sentence and stop.
    Starts the update's budget: every broker call made for it shares one deadline."""
    context.services.broker.begin()
    chat, user, query = update.effective_chat, update.effective_user, update.callback_query
    if chat is None:
        return  # nothing we serve (allowed_updates keeps these away anyway)
    t = tr(pick_language(user.language_code if user else None))
    if chat.type != ChatType.PRIVATE:
        log.info("refused an update from a %s chat", chat.type)
        text = t.message(t._("I only work in private chats. Write to me directly."))
        if query is not None:
            await query.answer(text)
        elif chat.type != ChatType.CHANNEL or update.channel_post is not None:
            await chat.send_message(text)
        raise ApplicationHandlerStop
    if query is not None and (user is None or user.id != chat.id):
        log.info("refused a button pressed by someone else than the chat's owner")
        await query.answer(t.message(t._("This button belongs to someone else's chat.")))
        raise ApplicationHandlerStop
    if user is not None and user.id != chat.id:
        log.info("refused a message whose sender is not the private chat's owner")
        raise ApplicationHandlerStop
