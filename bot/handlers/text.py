"""Free text in English, Arabic or Polish → the same intents as the commands.

Unsure → a clarifying question with buttons (``cl:<intent>``); nothing matched → suggestions.
"""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.ext import filters

from bot.context import ChatContext, texts
from bot.handlers import (
    basics,
    cards,
    consents,
    insights,
    privacy,
    reading,
    receipts,
    spending,
    support,
    talk,
)
from bot.handlers.common import answer_button, say
from bot.i18n import Tr, pick_language
from bot.intents import Intent, classify
from bot.store import repo


def intent_label(t: Tr, name: str) -> str:
    labels = {
        "balance": t._("My balance"),
        "transactions": t._("My transactions"),
        "spending": t._("My spending"),
        "insights": t._("Spending by category"),
        "link": t._("Link a bank"),
        "consents": t._("What I shared"),
        "privacy": t._("Privacy"),
        "help": t._("Help"),
        "language": t._("Language"),
    }
    return labels.get(name, name)


class IntentIs(filters.MessageFilter):
    """Text that means ``intent`` (used to enter /link from "link my bank")."""

    def __init__(self, intent: str) -> None:
        super().__init__(name=f"IntentIs({intent})")
        self.intent = intent

    def filter(self, message: Message) -> bool:
        if not message.text or message.text.startswith("/"):
            return False
        code = message.from_user.language_code if message.from_user else None
        return classify(message.text, pick_language(code)).name == self.intent


# what can be asked in the middle of /link and answered without leaving it
DIGRESSIONS = frozenset({"balance", "transactions", "spending", "insights", "help", "smalltalk"})


async def route(update: Update, context: ChatContext, intent: Intent) -> None:
    """Answer ``intent`` as if its command had been sent (the transactions filters included)."""
    name = intent.name
    if name == "balance":
        await reading.balance(update, context, bank=intent.bank)
    elif name == "transactions":
        await reading.transactions(
            update,
            context,
            merchant=intent.merchant,
            date_from=intent.date_from,
            date_to=intent.date_to,
            bank=intent.bank,
            limit=intent.limit,
            category=intent.category,
            amount_min=intent.amount_min,
            amount_max=intent.amount_max,
        )
    elif name == "spending":
        await spending.spending(
            update,
            context,
            merchant=intent.merchant,
            category=intent.category,
            bank=intent.bank,
            date_from=intent.date_from,
            date_to=intent.date_to,
        )
    elif name == "insights":
        await insights.insights(
            update, context, date_from=intent.date_from, date_to=intent.date_to, bank=intent.bank
        )
    elif name == "freeze_card":
        await cards.freeze_command(update, context)
    elif name == "unfreeze_card":
        await cards.unfreeze_command(update, context)
    elif name == "support":
        await support.start(update, context)
    elif name == "receipts":
        await receipts.command(update, context)
    elif name == "smalltalk":
        await talk.smalltalk(update, context, intent.topic)
    elif name == "unknown" and intent.topic == "transfer":
        await talk.transfer(update, context)
    elif name == "consents":
        await consents.show(update, context)
    elif name == "privacy":
        await privacy.show(update, context)
    elif name == "language":
        await basics.language(update, context)
    elif name == "cancel":
        await basics.cancel(update, context)
    elif name == "link":
        t = await texts(update, context)
        await say(update, t.message(t._("To link a bank, send /link.")), edit=False)
    else:
        await basics.help_command(update, context)


async def free_text(update: Update, context: ChatContext) -> None:
    """Any text outside a flow: classify, then answer, ask, or suggest."""
    message = update.effective_message
    assert message is not None and message.text is not None
    user = update.effective_user
    chat = await repo.support_chat(context.services.sessions, user.id) if user else None
    if chat is not None:  # a person at the bank is on: the bot steps aside
        await support.forward(update, context, chat)
        return
    t = await texts(update, context)
    intent = classify(message.text, t.language, today=context.services.clock().date())
    if intent.name != "unknown" or intent.topic is not None:
        await route(update, context, intent)
        return
    candidates = [c for c in intent.candidates if c not in ("unknown", "smalltalk", "cancel")]
    if candidates:
        keyboard = InlineKeyboardMarkup(
            [
                [InlineKeyboardButton(intent_label(t, c), callback_data=f"cl:{c}")]
                for c in candidates
            ]
        )
        await say(update, t.message(t._("Did you mean one of these?")), keyboard, edit=False)
        return
    suggestions = InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(intent_label(t, c), callback_data=f"cl:{c}")]
            for c in ("balance", "transactions", "help")
        ]
    )
    text = t._("Sorry, I didn't get that. I can show balances and transactions, or link a bank.")
    await say(update, t.message(text), suggestions, edit=False)


async def clarified(update: Update, context: ChatContext) -> None:
    """cl:<intent>: the user picked what they meant."""
    await answer_button(update)
    query = update.callback_query
    assert query is not None and query.data
    await route(update, context, Intent(name=query.data.removeprefix("cl:"), confidence=1.0))
