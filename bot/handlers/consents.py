"""/consents: what the user shared, with Revoke (confirmed) for each link."""

from __future__ import annotations

from telegram import Update

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, report, say


async def _names(context: ChatContext) -> dict[str, str]:
    try:
        return {k: b.name for k, b in (await context.services.known_banks()).items()}
    except BrokerError:
        return {}


async def show(update: Update, context: ChatContext) -> None:
    """/consents: each link with its scopes, expiry and a Revoke button."""
    await answer_button(update)
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    try:
        items = await context.services.broker.consents(subject) if subject else []
    except BrokerError as e:
        await report(update, context, e)
        return
    text, keyboard = views.consents(t, items, await _names(context))
    await say(update, text, keyboard, edit=update.callback_query is not None)


async def button(update: Update, context: ChatContext) -> None:
    """cs:rv:<id> asks to confirm; cs:ok:<id> revokes; cs:keep goes back to the list."""
    await answer_button(update)
    query = update.callback_query
    assert query is not None and query.data
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    if subject is None:
        return
    action, _, consent_id = query.data.removeprefix("cs:").partition(":")
    if action == "keep":
        await show(update, context)
        return
    try:
        items = {c.consent_id: c for c in await context.services.broker.consents(subject)}
        consent = items.get(consent_id)
        if consent is None:
            await say(update, t.message(t._("I couldn't find that any more.")))
            return
        bank = await context.services.bank_name(consent.bank_id)
        if action == "rv":
            text, keyboard = views.revoke_confirm(t, bank, consent_id)
            await say(update, text, keyboard)
            return
        await context.services.broker.revoke(subject, consent_id)
    except BrokerError as e:
        await report(update, context, e)
        return
    await say(
        update,
        t.message(t._("Revoked. %(bank)s no longer shares anything with me.", bank=t.esc(bank))),
    )
