"""Spending insights, pure: payments out → totals by category per currency, with the change from
the period before. No I/O; :mod:`consent.service.insights` feeds it minimized transactions.

What leaves here is an aggregate: per currency, per category a total and a count, for the period
and the one before. Amounts are never added across currencies. Merchants appear only in the
top-merchants list of one category, and only when that category was asked for.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

# what an insight answer carries (the access log names these)
INSIGHT_FIELDS: frozenset[str] = frozenset(
    {"period", "previous_period", "currency", "category", "total", "count", "change"}
)
TOP_MERCHANTS = 5  # merchants listed for a category, biggest first
UNCATEGORIZED = "other"  # a payment whose category the bank does not share, or has none


@dataclass(frozen=True, slots=True)
class Spend:
    """One payment out, as much of it as an insight needs."""

    currency: str
    category: str
    amount: Decimal  # positive
    merchant: str | None = None


@dataclass
class _Sum:
    total: Decimal = Decimal(0)
    count: int = 0

    def add(self, amount: Decimal) -> None:
        self.total += amount
        self.count += 1


@dataclass
class Tally:
    """Running sums for one period: (currency, category) → total and count, and per
    (currency, merchant) for the one category whose top merchants were asked for."""

    by_category: dict[tuple[str, str], _Sum] = field(default_factory=lambda: defaultdict(_Sum))
    by_merchant: dict[tuple[str, str], _Sum] = field(default_factory=lambda: defaultdict(_Sum))

    def add(self, spend: Spend, top_category: str | None) -> None:
        self.by_category[(spend.currency, spend.category)].add(spend.amount)
        if top_category is not None and spend.category == top_category and spend.merchant:
            self.by_merchant[(spend.currency, spend.merchant)].add(spend.amount)

    def merge(self, other: Tally) -> None:
        for key, s in other.by_category.items():
            mine = self.by_category[key]
            mine.total += s.total
            mine.count += s.count
        for key, s in other.by_merchant.items():
            mine = self.by_merchant[key]
            mine.total += s.total
            mine.count += s.count


def previous_period(start: date, end: date) -> tuple[date, date]:
    """The period an insight compares with: the calendar month before when ``start``..``end`` is
    a calendar month (or its first days: "this month so far" against the same days of the month
    before), else the same number of days just before ``start``."""
    if start.day == 1 and start.year == end.year and start.month == end.month:
        last_month_end = start - timedelta(days=1)
        first = last_month_end.replace(day=1)
        month_days = calendar.monthrange(first.year, first.month)[1]
        if end.day == calendar.monthrange(end.year, end.month)[1]:
            return first, last_month_end  # a whole month against the whole month before
        return first, first.replace(day=min(end.day, month_days))
    days = (end - start).days + 1
    return start - timedelta(days=days), start - timedelta(days=1)


def _change(now: Decimal, before: Decimal) -> dict[str, str | None]:
    change = now - before
    percent = None
    if before > 0:
        percent = str((change * 100 / before).quantize(Decimal("0.1"), ROUND_HALF_EVEN))
    return {"change": str(change), "change_percent": percent}


def answer(
    current: Tally,
    previous: Tally,
    *,
    start: date,
    end: date,
    previous_start: date,
    previous_end: date,
    top_category: str | None,
) -> dict[str, Any]:
    """The aggregate view: per currency its total and count, now and before, and its
    categories biggest first (one present in either period is listed); never a row."""
    currencies = sorted({c for c, _ in current.by_category} | {c for c, _ in previous.by_category})
    out: list[dict[str, Any]] = []
    for currency in currencies:
        categories = sorted(
            {cat for c, cat in current.by_category if c == currency}
            | {cat for c, cat in previous.by_category if c == currency}
        )
        sums = [
            (
                category,
                current.by_category.get((currency, category), _Sum()),
                previous.by_category.get((currency, category), _Sum()),
            )
            for category in categories
        ]
        sums.sort(key=lambda s: (-s[1].total, -s[2].total, s[0]))
        rows = [
            {
                "category": category,
                "total": str(now.total),
                "count": now.count,
                "previous_total": str(before.total),
                "previous_count": before.count,
                **_change(now.total, before.total),
            }
            for category, now, before in sums
        ]
        total = sum((now.total for _, now, _ in sums), Decimal(0))
        before_total = sum((before.total for _, _, before in sums), Decimal(0))
        out.append(
            {
                "currency": currency,
                "total": str(total),
                "count": sum(now.count for _, now, _ in sums),
                "previous_total": str(before_total),
                "previous_count": sum(before.count for _, _, before in sums),
                **_change(total, before_total),
                "categories": rows,
            }
        )
    body: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "previous_from": previous_start.isoformat(),
        "previous_to": previous_end.isoformat(),
        "currencies": out,
    }
    if top_category is not None:
        merchants = sorted(
            current.by_merchant.items(), key=lambda kv: (kv[0][0], -kv[1].total, kv[0][1])
        )
        body["top_merchants"] = {
            "category": top_category,
            "merchants": [
                {"merchant": m, "currency": c, "total": str(s.total), "count": s.count}
                for (c, m), s in _top_per_currency(merchants)
            ],
        }
    return body


def _top_per_currency(
    ranked: Iterable[tuple[tuple[str, str], _Sum]],
) -> list[tuple[tuple[str, str], _Sum]]:
    kept: list[tuple[tuple[str, str], _Sum]] = []
    per: dict[str, int] = defaultdict(int)
    for (currency, merchant), s in ranked:
        if per[currency] < TOP_MERCHANTS:
            per[currency] += 1
            kept.append(((currency, merchant), s))
    return kept
