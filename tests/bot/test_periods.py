"""Periods with a year and ranges of dates, in English, Arabic and Polish: "march 2025" is March
2025 (not this year's), "from 1 to 15 March" ends on the 15th (not today), and no period ever
reaches into the future."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.intents import classify
from bot.intents.dates import find_period
from bot.intents.normalize import normalize

TODAY = date(2026, 12, 2)


@pytest.mark.parametrize(
    ("text", "language", "start", "end"),
    [
        ("spending in march 2025", "en", date(2025, 3, 1), date(2025, 3, 31)),
        ("december 2025", "en", date(2025, 12, 1), date(2025, 12, 31)),
        ("ile wydałem w marcu 2025", "pl", date(2025, 3, 1), date(2025, 3, 31)),
        ("مصاريفي في مارس ٢٠٢٥", "ar", date(2025, 3, 1), date(2025, 3, 31)),
        ("transactions 2025-03-01 to 2025-03-31", "en", date(2025, 3, 1), date(2025, 3, 31)),
        ("payments from 1 march to 15 march", "en", date(2026, 3, 1), date(2026, 3, 15)),
        ("payments from 1 to 15 march", "en", date(2026, 3, 1), date(2026, 3, 15)),
        ("spent 1-15 march", "en", date(2026, 3, 1), date(2026, 3, 15)),
        ("between 3 march and 10 april", "en", date(2026, 3, 3), date(2026, 4, 10)),
        ("transakcje od 1.03.2026 do 15.03.2026", "pl", date(2026, 3, 1), date(2026, 3, 15)),
        ("transakcje od 1 do 15 marca", "pl", date(2026, 3, 1), date(2026, 3, 15)),
        ("między 1 marca a 15 marca", "pl", date(2026, 3, 1), date(2026, 3, 15)),
        ("المعاملات من ١ مارس إلى ١٥ مارس", "ar", date(2026, 3, 1), date(2026, 3, 15)),
        ("بين ١ مارس و ١٥ مارس", "ar", date(2026, 3, 1), date(2026, 3, 15)),
        # asked on 2 December: last December, not a range ending in the future
        ("spending 1 dec to 15 dec", "en", date(2025, 12, 1), date(2025, 12, 15)),
        ("spending from 15 december to 10 january", "en", date(2025, 12, 15), date(2026, 1, 10)),
        ("payments march 1 to march 15", "en", date(2026, 3, 1), date(2026, 3, 15)),
        ("how much did I spend in 2025", "en", date(2025, 1, 1), date(2025, 12, 31)),
        ("ile wydałem w 2025", "pl", date(2025, 1, 1), date(2025, 12, 31)),
        ("كم صرفت في ٢٠٢٥", "ar", date(2025, 1, 1), date(2025, 12, 31)),
        ("spending since 2025", "en", date(2025, 1, 1), TODAY),
        ("spending in 2026", "en", date(2026, 1, 1), TODAY),
        ("november 2026", "en", date(2026, 11, 1), date(2026, 11, 30)),
        ("december 2026", "en", date(2026, 12, 1), TODAY),
    ],
)
def test_years_and_ranges(text: str, language: str, start: date, end: date) -> None:
    got = classify(text, language, today=TODAY)
    assert (got.date_from, got.date_to) == (start, end)


@pytest.mark.parametrize(
    "text",
    [
        "spent more than 2025",  # an amount, not a year
        "spending january 2027",  # a month to come holds no history
        "spending in 2031",
        "show 5 to 10 transactions",  # a count, not days
        "payments over 20 to tesco",
        "transactions since 2026-12-05",  # a future date, not "since 2026"
        "spent in 2026.5",
    ],
)
def test_numbers_that_are_not_periods(text: str) -> None:
    assert find_period(normalize(text), "en", TODAY)[:2] == (None, None)


@given(st.text(max_size=60), st.sampled_from(["en", "ar", "pl"]))
def test_a_period_is_never_upside_down_or_in_the_future(text: str, language: str) -> None:
    start, end, _ = find_period(normalize(text), language, TODAY)
    assert (start is None) == (end is None)
    if start is not None and end is not None:
        assert start <= end <= TODAY


DAYS = st.integers(min_value=0, max_value=3 * 365).map(lambda n: TODAY - timedelta(days=n))


@given(DAYS, DAYS, st.sampled_from(["{a} to {b}", "from {a} to {b}", "between {a} and {b}"]))
def test_a_range_of_iso_dates_is_read_as_written(a: date, b: date, form: str) -> None:
    text = form.format(a=a.isoformat(), b=b.isoformat())
    start, end, rest = find_period(normalize(text), "en", TODAY)
    assert (start, end, rest) == (min(a, b), max(a, b), "")


@given(DAYS, DAYS)
def test_a_polish_range_of_dotted_dates_is_read_as_written(a: date, b: date) -> None:
    text = f"od {a:%d.%m.%Y} do {b:%d.%m.%Y}"
    start, end, _ = find_period(normalize(text), "pl", TODAY)
    assert (start, end) == (min(a, b), max(a, b))
