"""The user's answers to a fraud alert: "It was me", "Not me: freeze card", "Unfreeze card".

The answer goes through the broker to the bank, which answers with the alert as it now stands
(amount, merchant, time, card, what may still be done); the message is edited to show exactly
that, so whatever the order of taps the message ends as the bank's state. Nothing is stored.
"""

from __future__ import annotations

from telegram import Update

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, say

ANSWERS = {short: answer for answer, short in views.ALERT_BUTTONS.items()}


async def answer(update: Update, context: ChatContext) -> None:
    """al:me|fz|uf:<id>: answer through the broker, edit the alert to how it now stands."""
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
        if e.code == "scope_not_consented":
            text = t._("Freezing a card needs card controls: link again with /link and add them.")
            await answer_button(update, text)
            await say(update, t.message("⚠️ " + text), edit=False)
            return
        await answer_button(update, views.problem(t, e).lstrip("\u200f⚠️ "))
        await say(update, views.problem(t, e), edit=False)
        return
    await answer_button(update)
    text, keyboard = views.alert(t, result.alert, result.answer, result.card_status)
    await say(update, text, keyboard)
