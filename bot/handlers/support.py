"""Talk to a person at the bank: "talk to my bank", "I need a human", /support.

Which linked bank (only links granted the ``support`` scope can) → the chat is handed to a
person at that bank: what the user types goes to the bank's agent console through the broker,
the bot steps aside (commands and buttons still work), and the agent's messages come back as
deliveries (:mod:`bot.events`), labelled as the bank's representative. Outside business hours
or with nobody at the console, the bank keeps the message and the bot says when someone will
answer. "End the chat" (or the agent closing it) hands the chat back to the bot; a rating is
asked once the agent has closed it.

A message holding a full card number (13-19 digits passing the Luhn check) is deleted from the
chat at once, wherever it was typed, with a warning; it is never forwarded.
"""

from __future__ import annotations

import logging
import re

from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup as Keyboard
from telegram import Message, Update
from telegram.error import TelegramError
from telegram.ext import filters

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.store import repo

log = logging.getLogger(__name__)
_DIGITS = re.compile(r"(?<![\dA-Za-z])\d(?:[ -]?\d){12,18}(?![\dA-Za-z])")


def _luhn(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def has_card_number(text: str) -> bool:
    """Does ``text`` hold a full card number (13-19 digits, spaces or dashes between, Luhn)?"""
    return any(_luhn(re.sub(r"[ -]", "", m.group(0))) for m in _DIGITS.finditer(text))


class CardNumber(filters.MessageFilter):
    """Text (or a caption) holding a full card number."""

    def filter(self, message: Message) -> bool:
        return has_card_number(message.text or message.caption or "")


async def card_number(update: Update, context: ChatContext) -> None:
    """Delete a message holding a full card number, and warn never to share one."""
    message = update.effective_message
    assert message is not None
    t = await texts(update, context)
    try:
        await message.delete()
    except TelegramError:
        log.warning("could not delete a message holding a card number")
    await say(update, views.card_number_warning(t), edit=False)


async def _support_consents(
    update: Update, context: ChatContext
) -> tuple[str | None, list[tuple[str, str]]]:
    """The subject and its live links that allow a chat with the bank: (consent id, bank id)."""
    subject = await subject_of(update, context, create=False)
    if subject is None:
        return None, []
    linked = await context.services.broker.consents(subject)
    return subject, [
        (c.consent_id, c.bank_id)
        for c in linked
        if c.status == "authorized" and "support" in c.scopes
    ]


async def start(update: Update, context: ChatContext) -> None:
    """/support, "talk to my bank": pick the bank (if more than one), then hand the chat over."""
    t = await texts(update, context)
    try:
        _, found = await _support_consents(update, context)
    except BrokerError as e:
        await report(update, context, e)
        return
    if not found:
        await _no_support(update, context)
        return
    if len(found) == 1:
        await _begin(update, context, *found[0])
        return
    rows = [
        [Button(await context.services.bank_name(bank_id), callback_data=f"hs:b:{consent_id}")]
        for consent_id, bank_id in found[:8]
    ]
    await say(
        update, t.message(t._("Which bank do you want to talk to?")), Keyboard(rows), edit=False
    )


async def _no_support(update: Update, context: ChatContext) -> None:
    """No link allows a chat: how to reach each linked bank, and how to chat here."""
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    banks: list[str] = []
    if subject is not None:
        try:
            linked = await context.services.broker.consents(subject)
        except BrokerError:
            linked = []
        for consent in linked:
            if consent.status == "authorized":
                name = await context.services.bank_name(consent.bank_id)
                if name not in banks:
                    banks.append(name)
    await say(update, views.support(t, banks), edit=False)


async def _begin(update: Update, context: ChatContext, consent_id: str, bank_id: str) -> None:
    user = update.effective_user
    assert user is not None
    t = await texts(update, context)
    bank = await context.services.bank_name(bank_id)
    current = await repo.support_chat(context.services.sessions, user.id)
    chat = {"consent_id": consent_id, "bank_id": bank_id}
    if current and current.get("consent_id") == consent_id and current.get("conversation"):
        chat["conversation"] = current["conversation"]
    await repo.set_support_chat(context.services.sessions, user.id, chat)
    keyboard = Keyboard([[Button(t._("End the chat"), callback_data="hs:end")]])
    await say(update, views.support_started(t, bank), keyboard, edit=False)


async def forward(update: Update, context: ChatContext, chat: dict[str, str]) -> None:
    """The user's text goes to the person at the bank (the bot itself stays quiet)."""
    message = update.effective_message
    assert message is not None and message.text is not None
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    if subject is None:
        return
    try:
        sent = await context.services.broker.support_send(
            subject, chat["consent_id"], message.text, t.language
        )
    except BrokerError as e:
        if e.code in ("scope_not_consented", "consent_not_authorized", "consent_expired"):
            user = update.effective_user
            assert user is not None
            await repo.set_support_chat(context.services.sessions, user.id, None)
        await report(update, context, e)
        return
    user = update.effective_user
    assert user is not None
    if chat.get("conversation") != sent.conversation:
        chat = {**chat, "conversation": sent.conversation}
        await repo.set_support_chat(context.services.sessions, user.id, chat)
    if sent.opened:  # once per conversation: where the message went, and when to expect them
        bank = await context.services.bank_name(chat["bank_id"])
        if sent.expected_reply_at is not None:
            await say(update, views.support_queued(t, bank, sent), edit=False)
        else:
            await say(update, views.support_sent(t, bank), edit=False)


async def button(update: Update, context: ChatContext) -> None:
    """hs:b:<consent> (pick a bank), hs:end (end the chat), hs:r:<1-5>:<conversation> (rate)."""
    query = update.callback_query
    assert query is not None and query.data
    user = update.effective_user
    assert user is not None
    t = await texts(update, context)
    parts = query.data.split(":")
    services = context.services
    if parts[1] == "b" and len(parts) == 3:
        await answer_button(update)
        try:
            _, found = await _support_consents(update, context)
        except BrokerError as e:
            await report(update, context, e)
            return
        match = next((f for f in found if f[0] == parts[2]), None)
        if match is None:
            await say(
                update, t.message(t._("This step is out of date. Start again with /support."))
            )
            return
        await say(update, t.message(t._("Connecting you…")))
        await _begin(update, context, *match)
        return
    if parts[1] == "end":
        await answer_button(update)
        chat = await repo.support_chat(services.sessions, user.id)
        await repo.set_support_chat(services.sessions, user.id, None)
        subject = await subject_of(update, context, create=False)
        if chat and chat.get("conversation") and subject:
            try:
                await services.broker.support_close(
                    subject, chat["consent_id"], chat["conversation"]
                )
            except BrokerError as e:
                log.info("could not close the conversation at the bank (%s)", e.code)
        await say(update, views.support_ended(t))
        return
    if parts[1] == "r" and len(parts) == 4 and parts[2].isdigit():
        rating, conversation = int(parts[2]), parts[3]
        subject = await subject_of(update, context, create=False)
        consent_id = await repo.rating_consent(services.sessions, user.id, conversation)
        if not 1 <= rating <= 5 or subject is None or consent_id is None:
            await answer_button(update)
            return
        try:
            await services.broker.support_rate(subject, consent_id, conversation, rating)
        except BrokerError as e:
            await answer_button(update)
            await report(update, context, e)
            return
        await answer_button(update, t._("Thank you!"))
        await say(update, views.support_rated(t, rating))
        return
    await answer_button(update)
