"""The user's answer to a fraud alert: "It was me" or "Not me: freeze card".

The answer goes through the broker to the bank; the message is edited to show the outcome.
Presses are idempotent (the broker answers a repeated press with the same outcome), and a
different second answer is refused politely.
"""

from __future__ import annotations

from telegram import Update

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, say

ANSWERS = {"me": "it_was_me", "fz": "freeze_card"}


async def answer(update: Update, context: ChatContext) -> None:
    """al:me:<id> / al:fz:<id>: answer through the broker, edit the alert to the outcome."""
    query = update.callback_query
    assert query is not None and query.data
    _, short, alert_id = query.data.split(":", 2)
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    if short not in ANSWERS or subject is None:
        await answer_button(update)
        return
    try:
        result = await context.services.broker.answer_alert(subject, alert_id, ANSWERS[short])
    except BrokerError as e:
        await answer_button(update, views.problem(t, e).lstrip("\u200f⚠️ "))
        if e.code == "already_answered":
            await say(update, views.problem(t, e))
        return
    await answer_button(update)
    await say(update, views.alert_outcome(t, result.answer, result.card_status))
