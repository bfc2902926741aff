"""Spending insights end to end through localchat, in English, Arabic and Polish: the chart is a
valid PNG sent with sendPhoto, and the caption's totals equal the bank's own sums, computed here
from bank_mock's ledger (its own amounts, directions and categories), not through the broker.

The failure paths: a bank that errors (named, the others still shown, totals marked
incomplete), nothing spent, a bad period, another person's button."""

from __future__ import annotations

import asyncio
import io
import re
from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from babel.numbers import format_currency
from PIL import Image

from bank_mock.keys import BANKS
from bank_mock.models import Direction
from bot.i18n import BIDI_CONTROLS, tr
from localchat.testing import Message
from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, buttons
from tests.bot.test_conversations import link_bank

OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))  # "last month" on the test clock (20 Nov)
# the bank's own category names where they are the broker's too (the bank files Netflix under
# "subscriptions", the broker reads its MCC as entertainment: those are left out here)
SAME_CATEGORIES = {"groceries": "groceries", "eating_out": "eating out", "fuel": "fuel"}


def bank_sums(
    system: System, bank_id: str, start: date, end: date, username: str = "demo1"
) -> tuple[dict[str, Decimal], dict[str, int], dict[tuple[str, str], Decimal]]:
    """Money out per currency, the number of payments, and per (currency, bank category) —
    straight from the mock bank's ledger."""
    bank = system.env.bank_app[BANKS][bank_id]
    customer = bank.customers_by_username[username]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    by_category: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    low = datetime.combine(start, time.min, UTC)
    high = datetime.combine(end, time(23, 59, 59), UTC)
    for account_id in customer.account_ids:
        for tx in bank.ledger(account_id).between(low, high):
            if tx.direction is not Direction.DEBIT:
                continue
            amount = Decimal(tx.amount_minor) / 100
            totals[tx.currency] += amount
            counts[tx.currency] += 1
            if tx.merchant_name:
                by_category[(tx.currency, tx.category)] += amount
    return totals, counts, by_category


def plain(text: str) -> str:
    return BIDI_CONTROLS.sub("", re.sub(r"<[^>]+>", "", text))


async def photo_of(system: System, user: int, message: Message) -> bytes:
    assert message.get("photo"), message
    data = await system.chat.file(message["photo"]["file_id"])
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # every chunk's CRC, the IHDR and IEND
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG" and image.width >= 400 and image.height >= 200
    return data


def check_totals(
    caption: str,
    language: str,
    sums: tuple[dict[str, Decimal], dict[str, int], dict[tuple[str, str], Decimal]],
) -> None:
    totals, counts, by_category = sums
    t = tr(language)
    text = plain(caption)
    assert totals, "the bank has payments in the period"
    for currency, total in totals.items():
        shown = plain(t.n_("%(amount)s in %(n)s payment", "%(amount)s in %(n)s payments",
                           counts[currency], amount=t.money(total, currency)))  # fmt: skip
        assert shown in text, (shown, text)
        assert BIDI_CONTROLS.sub("", format_currency(total, currency, locale=t.locale)) in text
        for category, name in SAME_CATEGORIES.items():
            expected = by_category.get((currency, category))
            if expected:
                line = plain(t._(name) + ": " + t.money(expected, currency))
                assert line in text, (line, text)


async def test_insights_in_english_send_a_png_whose_caption_has_the_banks_own_sums(
    system: System,
) -> None:
    await link_bank(system, ALICE, "northwind")
    shown = await system.say(
        ALICE, "how did I spend last month", lambda t: "Spending by category" in t, wait_s=20
    )
    await photo_of(system, ALICE, shown)
    caption = shown["text"]
    assert "1 Oct 2026" in caption and "Compared with 1 Sept 2026" in caption
    check_totals(caption, "en", bank_sums(system, "northwind", *OCTOBER))
    assert "incomplete" not in caption
    # no row, no merchant in the aggregate
    assert "Tesco" not in caption and "Sainsbury" not in caption
    # the top merchants only on an explicit ask, for that category only
    data = button(shown, "in:tm:groceries:")
    top = await system.press(ALICE, shown, data, lambda t: "Top merchants" in t)
    _, _, by_merchant = _merchant_sums(system, "northwind", "groceries", *OCTOBER)
    first = max(by_merchant, key=lambda m: by_merchant[m])
    assert f"1. {first}: {tr('en').money(by_merchant[first], 'GBP')}" in plain(top["text"])
    # the bot kept neither the picture nor the numbers
    stored = system.bot_db.read_bytes()
    assert b"\x89PNG" not in stored
    totals, _, _ = bank_sums(system, "northwind", *OCTOBER)
    for total in totals.values():
        assert str(total).encode() not in stored


def _merchant_sums(
    system: System, bank_id: str, category: str, start: date, end: date
) -> tuple[None, None, dict[str, Decimal]]:
    bank = system.env.bank_app[BANKS][bank_id]
    customer = bank.customers_by_username["demo1"]
    out: dict[str, Decimal] = defaultdict(Decimal)
    low = datetime.combine(start, time.min, UTC)
    high = datetime.combine(end, time(23, 59, 59), UTC)
    for account_id in customer.account_ids:
        for tx in bank.ledger(account_id).between(low, high):
            if tx.direction is Direction.DEBIT and tx.category == category and tx.merchant_name:
                out[tx.merchant_name] += Decimal(tx.amount_minor) / 100
    return None, None, out


async def test_insights_in_arabic_are_right_to_left_with_the_banks_own_sums(
    system: System,
) -> None:
    await link_bank(system, OMAR, "nakheel")
    shown = await system.say(
        OMAR, "كيف صرفت فلوسي الشهر الماضي", lambda t: "الإنفاق حسب الفئة" in t, wait_s=20
    )
    await photo_of(system, OMAR, shown)
    assert shown["text"].startswith("\u200f")
    check_totals(shown["text"], "ar", bank_sums(system, "nakheel", *OCTOBER))


async def test_insights_in_polish_with_the_banks_own_sums(system: System) -> None:
    await link_bank(system, ZOFIA, "libertas")
    shown = await system.say(
        ZOFIA, "jak wydawałam w zeszłym miesiącu", lambda t: "Wydatki według kategorii" in t,
        wait_s=20,
    )  # fmt: skip
    await photo_of(system, ZOFIA, shown)
    check_totals(shown["text"], "pl", bank_sums(system, "libertas", *OCTOBER))
    command = await system.say(
        ZOFIA, "/insights w zeszłym miesiącu", lambda t: "Wydatki według kategorii" in t,
        wait_s=20,
    )  # fmt: skip
    assert plain(command["text"]) == plain(shown["text"])


@pytest.mark.parametrize("fault", [{"error_rate": 1.0}, {"latency_ms": 6000}])
async def test_a_bank_that_fails_or_stalls_is_named_and_the_others_still_counted(
    system: System, fault: dict[str, float]
) -> None:
    await link_bank(system, ALICE, "northwind")
    await link_bank(system, ALICE, "libertas")
    await system.env.bank.put("/sandbox/banks/libertas/faults", json=fault)
    shown = await system.say(
        ALICE, "/insights last month", lambda t: "Spending by category" in t, wait_s=20
    )
    await photo_of(system, ALICE, shown)
    caption = plain(shown["text"])
    assert "Libertas Federal did not answer" in caption and "incomplete" in caption
    check_totals(shown["text"], "en", bank_sums(system, "northwind", *OCTOBER))
    assert "US$" not in caption  # nothing of the failing bank's


async def test_nothing_spent_bad_periods_and_no_bank_get_words_not_a_chart(
    system: System,
) -> None:
    none = await system.say(ALICE, "/insights", lambda t: "link a bank" in t.lower())
    assert not none.get("photo")
    await link_bank(system, ALICE, "northwind")
    long = await system.say(
        ALICE, "/insights since 1 January 2020", lambda t: "at most a year" in t
    )
    assert not long.get("photo")
    odd = await system.say(ALICE, "/insights whenever", lambda t: "did not understand" in t)
    assert not odd.get("photo")
    bank = system.env.bank_app[BANKS]["northwind"]
    for account_id in bank.customers_by_username["demo1"].account_ids:
        bank.replace_history(account_id, [])
    empty = await system.say(ALICE, "where does my money go", lambda t: "spent nothing" in t)
    assert not empty.get("photo") and not buttons(empty)


async def test_when_every_bank_fails_the_banks_are_named_and_nothing_is_drawn(
    system: System,
) -> None:
    await link_bank(system, ZOFIA, "libertas")
    await system.env.bank.put("/sandbox/banks/libertas/faults", json={"error_rate": 1.0})
    down = await system.say(
        ZOFIA, "/insights w zeszłym miesiącu", lambda t: "Libertas Federal" in t, wait_s=20
    )
    assert not down.get("photo") and "spróbuj" in down["text"].lower()


async def test_another_persons_button_shows_them_nothing(system: System) -> None:
    await link_bank(system, ALICE, "northwind")
    await link_bank(system, OMAR, "nakheel")
    shown = await system.say(
        ALICE, "/insights last month", lambda t: "Spending by category" in t, wait_s=20
    )
    before_alice = await system.chat.messages(ALICE)
    before_omar = await system.chat.messages(OMAR)
    answers = len(await system.chat.callback_answers())
    data = button(shown, "in:tm:")
    await system.chat.press(OMAR, shown["message_id"], data, chat_id=ALICE)
    async with asyncio.timeout(10):
        while len(await system.chat.callback_answers()) <= answers:  # noqa: ASYNC110 - HTTP
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # nothing else arrives in either chat
    assert await system.chat.messages(ALICE) == before_alice
    assert await system.chat.messages(OMAR) == before_omar
