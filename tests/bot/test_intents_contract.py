"""The classifier's contract (issue 11): spending told from transactions, the new intents, and
the category, bank, count and amount entities, in English, Arabic and Polish."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.intents_accuracy import entity_checks, main
from bot.handlers.talk import nearest_command
from bot.intents import NAMES, classify
from bot.intents.entities import BANK_WORDS, CATEGORY_WORDS
from consent.domain.merchants import CATEGORIES

TODAY = date(2026, 12, 2)
CONTRACT = {
    "balance", "transactions", "spending", "link", "consents", "privacy", "help", "language",
    "cancel", "freeze_card", "unfreeze_card", "support", "smalltalk", "unknown", "insights",
    "receipts",
}  # fmt: skip


def test_the_names_are_the_contracts() -> None:
    assert set(NAMES) == CONTRACT


@pytest.mark.parametrize(
    ("text", "language", "intent", "entities"),
    [
        ("how much did I spend on groceries", "en", "spending", {"category": "groceries"}),
        ("balance at libertas", "en", "balance", {"bank": "libertas"}),
        ("freeze my card", "en", "freeze_card", {}),
        ("I lost my card", "en", "freeze_card", {}),
        ("unfreeze my card", "en", "unfreeze_card", {}),
        ("thanks!", "en", "smalltalk", {"topic": "thanks"}),
        ("👍", "en", "smalltalk", {"topic": "thanks"}),
        ("can I transfer money to Bob", "en", "unknown", {"topic": "transfer"}),
        ("I'd like to speak to a real person", "en", "support", {}),
        (
            "what did I spend at Tesco last month",
            "en",
            "spending",
            {"merchant": "Tesco", "date_from": date(2026, 11, 1), "date_to": date(2026, 11, 30)},
        ),
        ("show my transactions over 50", "en", "transactions", {"amount_min": Decimal(50)}),
        ("my last 7 payments", "en", "transactions", {"limit": 7}),
        ("list my Amazon payments", "en", "transactions", {"merchant": "Amazon"}),
        (
            "show transactions over 40 pounds",
            "en",
            "transactions",
            {"merchant": None, "amount_min": Decimal(40)},
        ),
        ("online purchases", "en", "transactions", {"merchant": None}),
        (
            "كم صرفت في كارفور الشهر الماضي",
            "ar",
            "spending",
            {"merchant": "كارفور", "date_from": date(2026, 11, 1)},
        ),
        ("كم صرفت على المطاعم", "ar", "spending", {"category": "eating_out", "merchant": None}),
        ("رصيدي في بنك النخيل", "ar", "balance", {"bank": "nakheel"}),
        ("جمد بطاقتي", "ar", "freeze_card", {}),
        ("شكرا", "ar", "smalltalk", {"topic": "thanks"}),
        ("ile wydałem w Biedronce", "pl", "spending", {"merchant": "Biedronce"}),
        ("ile wydałem na Orlenie", "pl", "spending", {"merchant": "Orlenie"}),
        ("saldo w Wiśle", "pl", "balance", {"bank": "wisla"}),
        ("transakcje między 20 a 100 zł", "pl", "transactions", {"amount_max": Decimal(100)}),
        ("zgubiłem kartę", "pl", "freeze_card", {}),
        ("przelej 50 zł Ani", "pl", "unknown", {"topic": "transfer"}),
    ],
)
def test_the_issues_phrases(
    text: str, language: str, intent: str, entities: dict[str, object]
) -> None:
    got = classify(text, language, today=TODAY)
    assert got.name == intent
    for name, value in entities.items():
        assert getattr(got, name) == value, name


def test_a_category_word_is_never_a_merchant() -> None:
    for language, text in (
        ("en", "how much have I blown on eating out this month"),
        ("pl", "ile poszło na paliwo"),
        ("ar", "قديش صرفت على البنزين"),
    ):
        got = classify(text, language, today=TODAY)
        assert got.name == "spending" and got.merchant is None and got.category is not None


def test_a_list_word_keeps_a_spending_question_a_list() -> None:
    assert classify("show my grocery transactions", "en", today=TODAY).name == "transactions"
    assert classify("pokaż transakcje na paliwo", "pl", today=TODAY).category == "fuel"


def test_every_category_word_names_a_broker_category_and_every_bank_a_policy() -> None:
    assert set(CATEGORY_WORDS) <= CATEGORIES
    policies = {p.stem for p in (Path(__file__).parents[2] / "consent" / "policies").glob("*")}
    assert set(BANK_WORDS) == policies


@given(st.text(max_size=120), st.sampled_from(["en", "ar", "pl"]))
def test_entities_belong_to_their_intent_and_use_the_brokers_names(
    text: str, language: str
) -> None:
    got = classify(text, language, today=TODAY)
    assert got.name in CONTRACT
    assert got.category is None or got.category in CATEGORIES
    assert got.bank is None or got.bank in BANK_WORDS
    if got.name not in ("transactions", "spending"):
        assert (got.merchant, got.category, got.date_from, got.limit) == (None,) * 4
    assert got.limit is None or 1 <= got.limit <= 50


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("/balanse", "/balance"),
        ("/transaction", "/transactions"),
        ("/lnik", "/link"),
        ("/consent", "/consents"),
        ("/balance@chatbank_bot", "/balance"),
        ("/xyzzy", None),
        ("/", None),
    ],
)
def test_a_mistyped_command_is_read_as_the_nearest_one(typed: str, meant: str | None) -> None:
    assert nearest_command(typed) == meant


def test_entities_are_scored_per_key() -> None:
    phrase = {"merchant": "tesco", "bank": "libertas", "amount_min": "50", "date_to": "2026-12-01"}
    got = classify("spent at Tesco over 50 at northwind till yesterday", "en", today=TODAY)
    checks = entity_checks(phrase, got)
    assert checks["merchant"] and checks["amount_min"] and not checks["bank"]
    assert set(checks) == set(phrase)


def test_the_bench_reads_another_dataset_and_fails_below_target(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        "today: 2026-12-02\nphrases:\n"
        "- {language: en, intent: spending, text: 'how much on fuel', category: fuel}\n"
        "- {language: ar, intent: balance, text: 'كم رصيدي'}\n"
        "- {language: pl, intent: freeze_card, text: 'zablokuj kartę'}\n",
        encoding="utf-8",
    )
    assert main(good) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "today: 2026-12-02\nphrases:\n"
        "- {language: en, intent: spending, text: 'how much on fuel', category: groceries}\n",
        encoding="utf-8",
    )
    assert main(bad) == 1
