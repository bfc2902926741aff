"""/freeze and /unfreeze: the user's cards on links with card controls, one button per card.

The broker lists the cards (opaque handle, last 4, bank, status); a button freezes or unfreezes
that card and the message is edited to the outcome, without buttons (the flow has ended).
"""

from __future__ import annotations

from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup as Keyboard
from telegram import Update

from bot import views
from bot.broker import BrokerError, Card
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.i18n import Tr

ACTIONS = {"fz": "freeze", "uf": "unfreeze"}


async def _label(t: Tr, context: ChatContext, card: Card, *, html: bool = False) -> str:
    """ "Bank · ending 1234": plain for a button, escaped and isolated for a message."""
    bank = await context.services.bank_name(card.bank_id)
    if not html:
        return f"{bank} · " + t._("ending %(last4)s", last4=card.last4 or "—")
    return f"{t.esc(bank)} · " + t._("ending %(last4)s", last4=t.ltr(card.last4 or "—"))


async def _offer(update: Update, context: ChatContext, short: str) -> None:
    """List the cards the action applies to, as buttons."""
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    try:
        listed = await context.services.broker.card_answer(subject) if subject else None
    except BrokerError as e:
        await report(update, context, e)
        return
    found = listed.cards if listed else []
    gone = listed.unavailable if listed else []
    wanted = "active" if short == "fz" else "frozen"
    cards = [c for c in found if c.status == wanted]
    if not cards and gone:
        await say(update, views.none_answered(t, gone), edit=False)
        return
    if not cards:
        if not found:
            text = t._("No cards I can act on: link a bank with card controls (/link).")
        elif short == "fz":
            text = t._("All your cards are already frozen.")
        else:
            text = t._("None of your cards is frozen.")
        await say(update, t.message(text), edit=False)
        return
    prompt = (
        t._("Which card should I freeze?")
        if short == "fz"
        else t._("Which card should I unfreeze?")
    )
    rows = [
        [Button(await _label(t, context, c), callback_data=f"cd:{short}:{c.card_handle}")]
        for c in cards[:8]
    ]
    await say(update, views.with_left_out(t, t.message(prompt), gone), Keyboard(rows), edit=False)


async def freeze_command(update: Update, context: ChatContext) -> None:
    """/freeze (or "freeze my card"): offer the active cards; next: button."""
    await _offer(update, context, "fz")


async def unfreeze_command(update: Update, context: ChatContext) -> None:
    """/unfreeze (or "unfreeze my card"): offer the frozen cards; next: button."""
    await _offer(update, context, "uf")


async def button(update: Update, context: ChatContext) -> None:
    """cd:fz|uf:<card handle>: act through the broker, edit the list to the outcome."""
    await answer_button(update)
    query = update.callback_query
    assert query is not None and query.data
    _, short, handle = query.data.split(":", 2)
    subject = await subject_of(update, context, create=False)
    if short not in ACTIONS or subject is None:
        return
    t = await texts(update, context)
    try:
        card = await context.services.broker.set_card(subject, handle, ACTIONS[short])
    except BrokerError as e:
        await say(update, views.problem(t, e))
        return
    label = await _label(t, context, card, html=True)
    if card.status == "frozen":
        text = "🧊 " + t._("%(card)s is frozen. /unfreeze undoes it.", card=label)
    else:
        text = "🔓 " + t._("%(card)s is active again.", card=label)
    await say(update, t.message(text))
