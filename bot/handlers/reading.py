"""/balance and /transactions: fetched from the broker when asked, rendered, forgotten.

Nothing read here is stored: the transactions view keeps only its position (account handle,
period, merchant filter, cursors) in the user's flow state.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from telegram import Update

from bot import views
from bot.broker import Account, BrokerError, Unavailable
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.intents.entities import find_bank
from bot.intents.normalize import normalize
from bot.store import repo


async def balance(update: Update, context: ChatContext, *, bank: str | None = None) -> None:
    """/balance: every linked account across banks, grouped by bank (only ``bank``'s when
    asked, "balance at libertas")."""
    t = await texts(update, context)
    subject = await subject_of(update, context, create=False)
    if subject is None:
        await say(update, views.balances(t, []), edit=False)
        return
    chat = update.effective_chat
    assert chat is not None
    await chat.send_action("typing")
    try:
        found = await context.services.broker.balance_answer(subject)
    except BrokerError as e:
        await report(update, context, e)
        return
    balances = found.balances
    if bank is not None:
        name = await context.services.bank_name(bank)
        balances = [b for b in balances if b.bank_name == name]
        unavailable = [u for u in found.unavailable if u.bank_id == bank]
        if not balances and not unavailable:
            text = t._("You have no balances shared from %(bank)s.", bank=t.esc(name))
            await say(
                update, t.message(text + " " + t._("/consents shows what you shared.")), edit=False
            )
            return
    else:
        unavailable = found.unavailable
    text = views.balances(t, balances, unavailable, context.services.clock())
    await say(update, text, edit=False)


def _transaction_accounts(found: list[Account], bank: str | None) -> list[Account]:
    """The accounts whose consent and bank policy allow transactions (``bank``'s only, when
    asked): those of banks that just answered first (the first one is shown at once), current
    accounts first."""
    eligible = [a for a in found if "transactions" in a.actions]
    if bank is not None:
        eligible = [a for a in eligible if a.bank_id == bank]
    return sorted(eligible, key=lambda a: (a.status != "fresh", a.account_type != "current"))


ACCOUNTS_SHARE = 0.5  # of the update's budget, for the account list before a page of them


PAGE = 5  # transactions per message unless asked ("my last 10 payments")
MAX_PAGE = 20


def period_range(period: str, today: date) -> tuple[date, date]:
    """A named period → inclusive dates."""
    if period == "7d":
        return today - timedelta(days=6), today
    if period == "month":
        return today.replace(day=1), today
    if period == "last_month":
        end = today.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    return today - timedelta(days=29), today


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


async def transactions(
    update: Update,
    context: ChatContext,
    *,
    merchant: str | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    bank: str | None = None,
    limit: int | None = None,
    category: str | None = None,
    amount_min: Decimal | None = None,
    amount_max: Decimal | None = None,
) -> None:
    """/transactions [merchant] (or free text with a merchant, a period, a bank): recent first,
    paged, with period buttons; only accounts that allow transactions are offered."""
    if merchant is None and context.args:
        merchant = " ".join(context.args)[:60] or None
        named, rest = find_bank(normalize(merchant or ""))
        if named is not None and not rest.strip():  # "/transactions libertas": a bank
            bank, merchant = named, None
    subject = await subject_of(update, context, create=False)
    t = await texts(update, context)
    if subject is None:
        await say(update, views.balances(t, []), edit=False)
        return
    try:
        # half the update's budget: the page of transactions must still fit in the rest
        listed = await context.services.broker.account_answer(subject, share=ACCOUNTS_SHARE)
    except BrokerError as e:
        await report(update, context, e)
        return
    found = listed.accounts
    gone = [u for u in listed.unavailable if bank in (None, u.bank_id)]
    if not found:
        if gone:
            await say(update, views.none_answered(t, gone), edit=False)
        else:
            await say(update, views.balances(t, []), edit=False)
        return
    accounts = _transaction_accounts(found, bank)
    if not accounts and gone:
        await say(update, views.none_answered(t, gone), edit=False)
        return
    if not accounts:
        names = sorted({a.bank_name or a.bank_id for a in found if bank in (None, a.bank_id)})
        if bank is not None and not names:
            names = [await context.services.bank_name(bank)]
        await say(update, views.no_transactions(t, names), edit=False)
        return
    state: dict[str, Any] = {
        "handles": [b.account_handle for b in accounts],
        "labels": [views.account_label(b) for b in accounts],
        "account": 0,
        "period": "30d",
        "merchant": merchant,
        "cursors": [None],
        "limit": max(1, min(limit or PAGE, MAX_PAGE)),
        "category": category,
        "amount_min": str(amount_min) if amount_min is not None else None,
        "amount_max": str(amount_max) if amount_max is not None else None,
    }
    if date_from or date_to:
        today = context.services.clock().date()
        state["period"] = "custom"
        state["from"] = (date_from or today - timedelta(days=365)).isoformat()
        state["to"] = (date_to or today).isoformat()
    await _show(update, context, state, accounts, edit=False, gone=gone)


async def _show(
    update: Update,
    context: ChatContext,
    state: dict[str, Any],
    accounts: list[Account] | None = None,
    *,
    edit: bool = True,
    gone: list[Unavailable] | None = None,
) -> None:
    user = update.effective_user
    assert user is not None
    subject = await subject_of(update, context, create=False)
    t = await texts(update, context)
    if subject is None:
        return
    today = context.services.clock().date()
    if state["period"] == "custom":
        start, end = date.fromisoformat(state["from"]), date.fromisoformat(state["to"])
    else:
        start, end = period_range(state["period"], today)
    cursors: list[str | None] = state["cursors"]
    try:
        page = await context.services.broker.transactions(
            subject,
            state["handles"][state["account"]],
            date_from=start.isoformat(),
            date_to=end.isoformat(),
            merchant=state.get("merchant"),
            cursor=cursors[-1],
            limit=int(state.get("limit") or PAGE),
            category=state.get("category"),
            amount_min=state.get("amount_min"),
            amount_max=state.get("amount_max"),
        )
    except BrokerError as e:
        await report(update, context, e)
        return
    state["next"] = page.next_cursor
    await repo.save_state(context.services.sessions, user.id, {"tx": state})
    label = state["labels"][state["account"]]
    period = f"{t.day(start)} – {t.day(end)}" if state["period"] == "custom" else state["period"]
    text, keyboard = views.transactions(
        t,
        page,
        account=label,
        period=period,
        merchant=state.get("merchant"),
        filters=views.TxFilters(
            state.get("category"), state.get("amount_min"), state.get("amount_max")
        ),
        page_no=len(cursors) - 1,
        accounts=state["labels"],
    )
    await say(update, views.with_left_out(t, text, gone or []), keyboard, edit=edit)


async def transactions_button(update: Update, context: ChatContext) -> None:
    """tx:next / tx:prev / tx:p:<period> / tx:a:<i> / tx:all: move the view, edit in place."""
    await answer_button(update)
    query, user = update.callback_query, update.effective_user
    assert query is not None and query.data and user is not None
    state = (await repo.load_state(context.services.sessions, user.id)).get("tx")
    if not state:
        t = await texts(update, context)
        await say(update, t.message(t._("This list is out of date; send /transactions again.")))
        return
    action = query.data.removeprefix("tx:")
    if action == "next" and state.get("next"):
        state["cursors"].append(state["next"])
    elif action == "prev" and len(state["cursors"]) > 1:
        state["cursors"].pop()
    elif action.startswith("p:"):
        state["period"], state["cursors"] = action.removeprefix("p:"), [None]
    elif action.startswith("a:") and action[2:].isdigit():
        index = int(action[2:])
        if index < len(state["handles"]):
            state["account"], state["cursors"] = index, [None]
    elif action == "all":
        state["merchant"], state["cursors"] = None, [None]
        state["category"] = state["amount_min"] = state["amount_max"] = None
    await _show(update, context, state)
