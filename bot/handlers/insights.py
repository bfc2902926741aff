"""Spending insights: totals by category for a period and the change from the period before,
from the broker's aggregate view, sent as a chart (sendPhoto) with every number in the caption.

Asked as ``/insights [period]`` or in free text ("how did I spend last month", "where does my
money go", "jak wydawałem w zeszłym miesiącu", "كيف صرفت فلوسي الشهر الماضي"); the period
defaults to this month so far (against the same days of the month before). The chart is drawn
off the event loop and sent straight from memory: the bot keeps neither the picture nor the
numbers. A "Top merchants" button asks the broker, for that category only, for its biggest
merchants (the callback data carries the category and the period, nothing else).
"""

from __future__ import annotations

from datetime import date

from telegram import InputFile, Update

from bot import chart, insight_views, views
from bot.broker import BrokerError, Insight
from bot.context import ChatContext, subject_of, texts
from bot.handlers.common import answer_button, report, say
from bot.i18n import Tr
from bot.intents.dates import find_period
from bot.intents.normalize import normalize

MAX_DAYS = 366  # the longest period the broker compares


def default_period(today: date) -> tuple[date, date]:
    """This month so far."""
    return today.replace(day=1), today


def check_period(start: date, end: date, today: date) -> str | None:
    """Why a period cannot be shown (``future``, ``too_long``), or None."""
    if start > today:
        return "future"
    if (min(end, today) - start).days >= MAX_DAYS:
        return "too_long"
    return None


async def insights(
    update: Update,
    context: ChatContext,
    *,
    date_from: date | None = None,
    date_to: date | None = None,
    bank: str | None = None,
) -> None:
    """The chart and its caption for a period (this month so far unless said)."""
    t = await texts(update, context)
    today = context.services.clock().date()
    if date_from is None and context.args:  # "/insights last month"
        date_from, date_to, _ = find_period(normalize(" ".join(context.args)), t.language, today)
        if date_from is None:
            await say(update, insight_views.bad_period(t, "unknown"), edit=False)
            return
    if date_from is None:
        date_from, date_to = default_period(today)
    end = min(date_to or today, today)
    problem = check_period(date_from, end, today)
    if problem is not None:
        await say(update, insight_views.bad_period(t, problem), edit=False)
        return
    subject = await subject_of(update, context, create=False)
    if subject is None:
        await say(update, views.balances(t, []), edit=False)
        return
    chat = update.effective_chat
    assert chat is not None
    await chat.send_action("upload_photo")
    try:
        result = await context.services.broker.insights(
            subject, date_from=date_from.isoformat(), date_to=end.isoformat(), bank=bank
        )
    except BrokerError as e:
        await report(update, context, e)
        return
    if result.accounts == 0 and not result.unavailable:
        await _no_accounts(update, context, t, subject)
        return
    if result.accounts == 0:  # every bank that shares transactions failed
        await say(update, insight_views.banks_down(t, result), edit=False)
        return
    if not insight_views.has_spending(result):
        await say(update, insight_views.nothing_spent(t, result), edit=False)
        return
    await _send_chart(update, t, result, date_from, end, today)


async def _send_chart(
    update: Update, t: Tr, result: Insight, start: date, end: date, today: date
) -> None:
    now_label, before_label = insight_views.labels(t, start, end, today)
    spec = insight_views.chart(t, result, this_label=now_label, before_label=before_label)
    png = await chart.render(spec)
    caption, breakdown = insight_views.texts(t, result)
    chat = update.effective_chat
    assert chat is not None
    photo = InputFile(png, filename="spending.png")  # named, so it goes as image/png
    await chat.send_photo(photo, caption=caption, reply_markup=insight_views.keyboard(t, result))
    if breakdown is not None:
        await chat.send_message(breakdown)


async def _no_accounts(update: Update, context: ChatContext, t: Tr, subject: str) -> None:
    try:
        found = await context.services.broker.accounts(subject)
    except BrokerError as e:
        await report(update, context, e)
        return
    names = sorted({a.bank_name or a.bank_id for a in found})
    if names:
        await say(update, views.no_transactions(t, names), edit=False)
    else:
        await say(update, views.balances(t, []), edit=False)


async def button(update: Update, context: ChatContext) -> None:
    """in:tm:<category>:<from>:<to>: that category's top merchants over the same period."""
    await answer_button(update)
    query = update.callback_query
    assert query is not None and query.data
    t = await texts(update, context)
    parts = query.data.split(":")
    try:
        _, kind, category, start, end = parts
        date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        kind = ""
    subject = await subject_of(update, context, create=False)
    if kind != "tm" or subject is None:
        await say(update, t.message(t._("This step is out of date.")), edit=False)
        return
    try:
        result = await context.services.broker.insights(
            subject, date_from=start, date_to=end, top_merchants=category
        )
    except BrokerError as e:
        await report(update, context, e)
        return
    await say(update, insight_views.top_merchants(t, result), edit=False)
