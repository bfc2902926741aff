"""The one error handler: log the exception (redacted, no payloads), answer politely."""

from __future__ import annotations

import logging

from telegram import Update

from bot.context import ChatContext, texts
from bot.handlers.common import say

log = logging.getLogger(__name__)


async def on_error(update: object, context: ChatContext) -> None:
    """Log without the update's contents; tell the user something went wrong."""
    kind = type(context.error).__name__ if context.error else "unknown"
    log.error("handler failed with %s", kind, exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        try:
            t = await texts(update, context)
            text = t.message(t._("Something went wrong on my side. Please try again."))
            await say(update, text, edit=False)
        except Exception:  # the apology itself failed (Telegram down?); already logged
            log.warning("could not tell the user about the error")
