"""How much did I spend: one total for the whole period, from the broker's spending view.

Asked as free text ("how much did I spend at Tesco last month", "ile wydałem w Biedronce",
"كم صرفت في كارفور الشهر الماضي"); the merchant is matched at the broker, in any script. A button
opens the transactions behind the total.
"""

from __future__ import annotations

from datetime import date, timedelta

from telegram import Update

from bot import views
from bot.broker import BrokerError
from bot.context import ChatContext, subject_of, texts
from bot.handlers import reading
from bot.handlers.common import answer_button, report, say
from bot.store import repo

DEFAULT_DAYS = 30
MAX_DAYS = 366  # the longest period the broker adds up in one answer


async def spending(
    update: Update,
    context: ChatContext,
    *,
    merchant: str | None = None,
    category: str | None = None,
    bank: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
) -> None:
    """The total spent over a period (30 days unless said), with the top categories."""
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    if subject is None:
        await say(update, views.balances(t, []), edit=False)
        return
    today = context.services.clock().date()
    end = min(date_to or today, today)
    start = date_from or end - timedelta(days=DEFAULT_DAYS - 1)
    start = min(max(start, end - timedelta(days=MAX_DAYS - 1)), end)  # what the broker totals
    chat = update.effective_chat
    assert chat is not None
    await chat.send_action("typing")
    try:
        result = await context.services.broker.spending(
            subject,
            date_from=start.isoformat(),
            date_to=end.isoformat(),
            merchant=merchant,
            category=category,
            bank=bank,
        )
    except BrokerError as e:
        await report(update, context, e)
        return
    if result.accounts == 0 and result.unavailable and not result.totals:
        await say(
            update,
            views.none_answered(t, result.unavailable),
            edit=False,
        )
        return
    if result.accounts == 0:
        try:
            found = await context.services.broker.accounts(subject)
        except BrokerError as e:
            await report(update, context, e)
            return
        names = sorted({a.bank_name or a.bank_id for a in found if bank in (None, a.bank_id)})
        if bank is not None and not names:
            names = [await context.services.bank_name(bank)]
        if not names:
            await say(update, views.balances(t, []), edit=False)
        else:
            await say(update, views.no_transactions(t, names), edit=False)
        return
    user = update.effective_user
    assert user is not None
    filters = {
        "merchant": merchant,
        "bank": bank,
        "from": start.isoformat(),
        "to": end.isoformat(),
    }
    await repo.save_state(context.services.sessions, user.id, {"sp": filters})
    text, keyboard = views.spending(
        t, result, start=start, end=end, merchant=merchant, category=category
    )
    await say(update, text, keyboard, edit=False)


async def list_button(update: Update, context: ChatContext) -> None:
    """sp:list: the transactions behind the total just shown."""
    await answer_button(update)
    user = update.effective_user
    assert user is not None
    filters = (await repo.load_state(context.services.sessions, user.id)).get("sp")
    if not filters:
        t = await texts(update, context)
        await say(update, t.message(t._("This list is out of date; send /transactions again.")))
        return
    await reading.transactions(
        update,
        context,
        merchant=filters.get("merchant"),
        bank=filters.get("bank"),
        date_from=date.fromisoformat(filters["from"]),
        date_to=date.fromisoformat(filters["to"]),
    )
