"""The spending chart and its caption, without a network: valid PNGs in every language, Arabic
joined (shaped) by matplotlib itself, drawn off the event loop one at a time with a bounded size,
and a caption that stays inside Telegram's limit while keeping every number."""

from __future__ import annotations

import asyncio
import io
import threading
import time
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from bot import chart, insight_views
from bot.broker import Insight
from bot.chart import MAX_BARS, ChartSpec, render, render_png
from bot.i18n import tr

CATEGORIES = ["groceries", "eating_out", "transport", "fuel", "shopping", "health", "travel",
              "utilities", "subscriptions", "entertainment", "cash", "financial", "services",
              "education", "government", "home", "transfers", "other"]  # fmt: skip


def insight(currencies: dict[str, int], *, unavailable: bool = False) -> Insight:
    """An insight with ``n`` categories in each currency."""
    return Insight.model_validate(
        {
            "from": "2026-10-01",
            "to": "2026-10-31",
            "previous_from": "2026-09-01",
            "previous_to": "2026-09-30",
            "currencies": [
                {
                    "currency": currency,
                    "total": str(sum(Decimal(100 + i) for i in range(n))),
                    "count": n,
                    "previous_total": "50.00",
                    "previous_count": 1,
                    "change": "1.00",
                    "change_percent": "2.0",
                    "categories": [
                        {
                            "category": CATEGORIES[i],
                            "total": str(Decimal(100 + n - i)),
                            "count": 1,
                            "previous_total": "0",
                            "previous_count": 0,
                            "change": str(Decimal(100 + n - i)),
                            "change_percent": None,
                        }
                        for i in range(n)
                    ],
                }
                for currency, n in currencies.items()
            ],
            "complete": not unavailable,
            "accounts": 2,
            "unavailable": [
                {"bank_id": "libertas", "bank_name": "Libertas Federal", "reason": "bank_timeout"}
            ]
            if unavailable
            else [],
        }
    )


def spec_for(language: str, data: Insight) -> ChartSpec:
    t = tr(language)
    return insight_views.chart(t, data, this_label="now", before_label="before")


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


@pytest.mark.parametrize("language", ["en", "ar", "pl"])
def test_every_language_gives_a_valid_png(language: str) -> None:
    width, height = png_size(render_png(spec_for(language, insight({"GBP": 4, "USD": 2}))))
    assert width == 800 and 200 < height < 1200


def test_matplotlib_joins_arabic_letters_itself() -> None:
    """Three bāʾ joined (initial, medial, final forms) are far narrower than three isolated
    ones: matplotlib shapes Arabic (libraqm), so labels are given in logical order."""
    figure = chart._setup()(figsize=(4, 2))
    renderer = FigureCanvasAgg(figure).get_renderer()  # type: ignore[no-untyped-call]

    def width(text: str) -> float:
        return float(figure.text(0, 0, text, fontsize=40).get_window_extent(renderer).width)

    assert width("ببب") < 0.7 * width("\ufe8f\ufe8f\ufe8f")


def test_the_bidi_marks_of_chat_text_are_not_drawn() -> None:
    money = tr("ar").money(Decimal("12.5"), "SAR")
    assert "\u2066" in money
    assert chart.visual(money) == money.strip("\u2066\u2069")


def test_the_size_is_bounded_whatever_the_number_of_categories() -> None:
    many = png_size(
        render_png(spec_for("en", insight({"GBP": 18, "USD": 18, "PLN": 18, "EUR": 9})))
    )
    full = {"GBP": MAX_BARS, "USD": MAX_BARS, "PLN": MAX_BARS}
    most = png_size(render_png(spec_for("en", insight(full))))
    assert many == most


async def test_the_chart_is_drawn_off_the_event_loop_one_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[str] = []
    running = 0
    most = 0
    original = chart.render_png

    def spy(spec: ChartSpec) -> bytes:
        nonlocal running, most
        running += 1
        most = max(most, running)
        threads.append(threading.current_thread().name)
        try:
            time.sleep(0.05)
            return original(spec)
        finally:
            running -= 1

    monkeypatch.setattr(chart, "render_png", spy)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    spec = spec_for("en", insight({"GBP": 3}))
    results = await asyncio.gather(*(render(spec) for _ in range(3)))
    task.cancel()
    assert all(png_size(r) for r in results)
    assert threads and all(name.startswith("chart") for name in threads)
    assert most == 1  # one figure at a time
    assert ticks > 10  # the loop kept running meanwhile


@settings(max_examples=25, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["GBP", "USD", "PLN", "SAR", "EUR"]), st.integers(1, 18),
                    min_size=1),
    st.sampled_from(["en", "ar", "pl"]),
    st.booleans(),
)  # fmt: skip
def test_the_caption_fits_telegram_and_keeps_every_number(
    currencies: dict[str, int], language: str, unavailable: bool
) -> None:
    data = insight(currencies, unavailable=unavailable)
    t = tr(language)
    caption, breakdown = insight_views.texts(t, data)
    assert insight_views.plain_length(caption) <= insight_views.CAPTION_LIMIT
    everything = caption + (breakdown or "")
    for cur in data.currencies:
        assert t.money(cur.total, cur.currency) in caption  # the totals stay in the caption
        for c in cur.categories:
            assert t.money(c.total, cur.currency) in everything
    if unavailable:
        assert "Libertas Federal" in caption


def test_the_legend_names_the_periods_it_compares() -> None:
    t, today = tr("en"), date(2026, 11, 20)
    so_far = insight_views.labels(t, date(2026, 11, 1), today, today)
    assert so_far == ("This month", "Same days last month")
    last = insight_views.labels(t, date(2026, 10, 1), date(2026, 10, 31), today)
    assert last == ("Last month", "Month before")
    march = insight_views.labels(t, date(2026, 3, 1), date(2026, 3, 31), today)
    assert march == ("This period", "Month before")
    days = insight_views.labels(t, date(2026, 11, 3), date(2026, 11, 9), today)
    assert days == ("This period", "Period before")
