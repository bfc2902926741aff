"""Pure rendering of a spending insight: the caption (every number the chart shows, for screen
readers and for people who don't open the picture), the chart's specification, the buttons and
the top-merchants message. No I/O; every string goes through the user's :class:`~bot.i18n.Tr`.
"""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from decimal import Decimal

from babel.numbers import format_percent
from telegram import InlineKeyboardButton as Button
from telegram import InlineKeyboardMarkup as Keyboard

from bot.broker import Insight, InsightCategory, InsightCurrency, TopMerchants
from bot.chart import MAX_BARS, Bar, ChartSpec, Panel
from bot.i18n import Tr
from bot.views import category_name

CAPTION_LIMIT = 1024  # Telegram's caption limit, in characters after entities are parsed
TOP_BUTTONS = 3  # "top merchants" buttons, for the biggest categories
_TAGS = re.compile(r"<[^>]+>")


def plain_length(text: str) -> int:
    """The caption's length as Telegram counts it (HTML tags parsed away)."""
    return len(html.unescape(_TAGS.sub("", text)))


def _change(tr: Tr, change: Decimal, percent: Decimal | None, currency: str) -> str:
    if change == 0:
        return tr._("no change")
    sign = "+" if change > 0 else "−"
    amount = tr.money(abs(change), currency, sign=sign)
    if percent is None:
        return amount
    share = format_percent(abs(percent) / 100, "#,##0.#%", locale=tr.locale)
    return f"{amount}, {tr.ltr(sign + share)}"


def _category_line(tr: Tr, c: InsightCategory, currency: str) -> str:
    name = category_name(tr, c.category)
    now = tr.money(c.total, currency)
    changed = _change(tr, c.change, c.change_percent, currency)
    return "• " + tr._(
        "%(category)s: %(amount)s (%(change)s)", category=name, amount=now, change=changed
    )


def _currency_lines(tr: Tr, cur: InsightCurrency, *, categories: bool) -> list[str]:
    lines = [
        "<b>"
        + tr.n_(
            "%(amount)s in %(n)s payment",
            "%(amount)s in %(n)s payments",
            cur.count,
            amount=tr.money(cur.total, cur.currency),
        )
        + "</b>",
        tr._(
            "Before: %(amount)s (%(change)s)",
            amount=tr.money(cur.previous_total, cur.currency),
            change=_change(tr, cur.change, cur.change_percent, cur.currency),
        ),
    ]
    if categories:
        lines += [_category_line(tr, c, cur.currency) for c in cur.categories]
    return lines


def period(tr: Tr, start: str, end: str) -> str:
    return f"{tr.day(start)} – {tr.day(end)}"


def _head(tr: Tr, insight: Insight) -> list[str]:
    return [
        tr._(
            "<b>Spending by category</b> · %(period)s",
            period=period(tr, insight.date_from, insight.date_to),
        ),
        tr._(
            "Compared with %(period)s",
            period=period(tr, insight.previous_from, insight.previous_to),
        ),
    ]


def _tail(tr: Tr, insight: Insight) -> list[str]:
    lines = []
    for gone in insight.unavailable:
        lines.append(
            "⚠️ "
            + tr._(
                "%(bank)s did not answer, so its payments are not included.",
                bank=tr.esc(gone.bank_name),
            )
        )
    if not insight.complete:
        lines.append(tr._("These totals are incomplete."))
    return lines


def texts(tr: Tr, insight: Insight) -> tuple[str, str | None]:
    """The photo's caption, and the breakdown as a message of its own when the caption would
    pass Telegram's limit (then the caption keeps the totals per currency)."""
    body: list[str] = []
    for cur in insight.currencies:
        body += ["", *_currency_lines(tr, cur, categories=True)]
    full = tr.message("\n".join([*_head(tr, insight), *body, *_tail(tr, insight)]).strip())
    if plain_length(full) <= CAPTION_LIMIT:
        return full, None
    short: list[str] = []
    for cur in insight.currencies:
        short += ["", *_currency_lines(tr, cur, categories=False)]
    caption = tr.message("\n".join([*_head(tr, insight), *short, *_tail(tr, insight)]).strip())
    rest = [tr._("<b>By category</b>")]
    for cur in insight.currencies:
        rest += [f"<b>{tr.esc(cur.currency)}</b>"]
        rest += [_category_line(tr, c, cur.currency) for c in cur.categories]
    return caption, tr.message("\n".join(rest))


def has_spending(insight: Insight) -> bool:
    return any(c.total > 0 or c.previous_total > 0 for c in insight.currencies)


def chart(tr: Tr, insight: Insight, *, this_label: str, before_label: str) -> ChartSpec:
    panels = []
    for cur in insight.currencies:
        bars = tuple(
            Bar(
                category_name(tr, c.category),
                c.total,
                c.previous_total,
                tr.money(c.total, cur.currency),
            )
            for c in cur.categories[:MAX_BARS]
        )
        title = f"{cur.currency} · {tr.money(cur.total, cur.currency)}"
        panels.append(Panel(title, bars))
    title = tr._("Spending by category")
    title += " · " + period(tr, insight.date_from, insight.date_to)
    return ChartSpec(title, this_label, before_label, tuple(panels), rtl=tr.rtl)


def labels(tr: Tr, start: date, end: date, today: date) -> tuple[str, str]:
    """The legend's two names: "This month"/"Last month" and the one before, or the dates."""
    if start.day == 1 and end == today and (start.year, start.month) == (today.year, today.month):
        return tr._("This month"), tr._("Same days last month")
    whole_month = start.day == 1 and (end + timedelta(days=1)).day == 1 and start.month == end.month
    if whole_month and end == today.replace(day=1) - timedelta(days=1):
        return tr._("Last month"), tr._("Month before")
    if whole_month:
        return tr._("This period"), tr._("Month before")
    return tr._("This period"), tr._("Period before")


def keyboard(tr: Tr, insight: Insight) -> Keyboard | None:
    """ "Top merchants" for the biggest categories (the broker lists merchants only then)."""
    seen: list[str] = []
    for cur in insight.currencies:
        for c in cur.categories:
            if c.total > 0 and c.category not in seen and c.category != "other":
                seen.append(c.category)
    rows = [
        [
            Button(
                tr._("Top merchants: %(category)s", category=category_name(tr, c)),
                callback_data=f"in:tm:{c}:{insight.date_from}:{insight.date_to}",
            )
        ]
        for c in seen[:TOP_BUTTONS]
    ]
    return Keyboard(rows) if rows else None


def top_merchants(tr: Tr, insight: Insight) -> str:
    top = insight.top_merchants or TopMerchants(category="other")
    lines = [
        tr._(
            "<b>Top merchants · %(category)s</b> · %(period)s",
            category=category_name(tr, top.category),
            period=period(tr, insight.date_from, insight.date_to),
        )
    ]
    if not top.merchants:
        lines.append(tr._("No payments in this category in this period."))
    for i, m in enumerate(top.merchants, start=1):
        lines.append(
            f"{tr.number(i)}. "
            + tr.n_(
                "%(merchant)s: %(amount)s in %(n)s payment",
                "%(merchant)s: %(amount)s in %(n)s payments",
                m.count,
                merchant=tr.esc(m.merchant),
                amount=tr.money(m.total, m.currency),
            )
        )
    lines += _tail(tr, insight)
    return tr.message("\n".join(lines))


def nothing_spent(tr: Tr, insight: Insight) -> str:
    lines = [
        tr._(
            "You spent nothing between %(start)s and %(end)s, nor in the period before.",
            start=tr.day(insight.date_from),
            end=tr.day(insight.date_to),
        ),
        *_tail(tr, insight),
    ]
    return tr.message("\n".join(lines))


def banks_down(tr: Tr, insight: Insight) -> str:
    """Every bank that shares transactions failed: nothing to draw."""
    lines = _tail(tr, insight)[:-1] if not insight.complete else _tail(tr, insight)
    lines.append(tr._("Your bank is not answering right now. Please try again in a minute."))
    return tr.message("\n".join(lines))


def bad_period(tr: Tr, reason: str) -> str:
    texts_ = {
        "future": tr._("That period has not started yet. Try “last month” or “this month”."),
        "too_long": tr._("I can show at most a year at a time. Try a shorter period."),
        "unknown": tr._("I did not understand that period. Try “last month” or “this month”."),
    }
    return tr.message("⚠️ " + texts_.get(reason, texts_["future"]))
