"""The insight aggregate's invariants, for any payments: per currency the categories add up to
the total (never across currencies), the change is now minus before, merchants only for the
category asked for, and the period compared with comes just before (a month so far: the same
days of the month before)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import example, given
from hypothesis import strategies as st

from consent.domain.insights import TOP_MERCHANTS, Spend, Tally, answer, previous_period

CURRENCIES = st.sampled_from(["GBP", "USD", "PLN", "SAR"])
CATEGORIES = st.sampled_from(["groceries", "fuel", "eating_out", "other"])
AMOUNTS = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10_000), places=2)
SPENDS = st.lists(
    st.builds(Spend, CURRENCIES, CATEGORIES, AMOUNTS, st.sampled_from(["A", "B", "C", None])),
    max_size=60,
)


def _tally(spends: list[Spend], top: str | None = None) -> Tally:
    tally = Tally()
    for s in spends:
        tally.add(s, top)
    return tally


@given(SPENDS, SPENDS, st.sampled_from([None, "groceries", "fuel"]))
def test_totals_are_per_currency_and_add_up(
    now: list[Spend], before: list[Spend], top: str | None
) -> None:
    body = answer(
        _tally(now, top),
        _tally(before, top),
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        previous_start=date(2026, 9, 1),
        previous_end=date(2026, 9, 30),
        top_category=top,
    )
    seen = {c["currency"] for c in body["currencies"]}
    assert seen == {s.currency for s in now + before}
    for cur in body["currencies"]:
        mine = [s for s in now if s.currency == cur["currency"]]
        theirs = [s for s in before if s.currency == cur["currency"]]
        assert Decimal(cur["total"]) == sum((s.amount for s in mine), Decimal(0))
        assert Decimal(cur["previous_total"]) == sum((s.amount for s in theirs), Decimal(0))
        assert cur["count"] == len(mine) and cur["previous_count"] == len(theirs)
        assert Decimal(cur["change"]) == Decimal(cur["total"]) - Decimal(cur["previous_total"])
        assert sum(Decimal(c["total"]) for c in cur["categories"]) == Decimal(cur["total"])
        totals = [Decimal(c["total"]) for c in cur["categories"]]
        assert totals == sorted(totals, reverse=True)
        for c in cur["categories"]:
            if Decimal(c["previous_total"]) == 0:
                assert c["change_percent"] is None
    if top is None:
        assert "top_merchants" not in body
    else:
        merchants = body["top_merchants"]["merchants"]
        allowed = {(s.currency, s.merchant) for s in now if s.category == top and s.merchant}
        assert {(m["currency"], m["merchant"]) for m in merchants} <= allowed
        for currency in seen:
            assert sum(1 for m in merchants if m["currency"] == currency) <= TOP_MERCHANTS


@given(st.dates(date(2000, 1, 1), date(2100, 1, 1)), st.integers(0, 365))
@example(date(2026, 2, 1), 27)  # February against the whole of January
@example(date(2026, 3, 1), 29)  # 1-30 March against the whole of February
def test_the_previous_period_comes_before_and_is_no_longer(start: date, days: int) -> None:
    end = start + timedelta(days=days)
    before_start, before_end = previous_period(start, end)
    assert before_start <= before_end < start
    month = start.day == 1 and (start.year, start.month) == (end.year, end.month)
    if month:  # a calendar month (or its first days) against the month before
        assert before_start == (start - timedelta(days=1)).replace(day=1)
    else:  # as many days, just before
        assert before_end == start - timedelta(days=1)
        assert (before_end - before_start).days == (end - start).days


def test_a_calendar_month_is_compared_with_the_whole_month_before() -> None:
    assert previous_period(date(2026, 3, 1), date(2026, 3, 31)) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    # this month so far against the same days of the month before
    assert previous_period(date(2026, 11, 1), date(2026, 11, 20)) == (
        date(2026, 10, 1),
        date(2026, 10, 20),
    )
    assert previous_period(date(2026, 10, 10), date(2026, 10, 19)) == (
        date(2026, 9, 30),
        date(2026, 10, 9),
    )
