"""The free-text classifier on its own: the brief's examples, entities, the labelled set, and
properties that hold for any text."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.intents_accuracy import entity_ok, load
from bot.intents import _ALL, NAMES, Intent, classify
from bot.intents.normalize import normalize

TODAY = date(2026, 11, 25)
_PHRASES_FOR_DIACRITICS = load()[1]
ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


def kind(intent: Intent) -> str:
    """The intent's name, with spending and insights counted as transactions (for tests about
    history in general; the spending and insights tests tell them apart)."""
    return "transactions" if intent.name in ("spending", "insights") else intent.name


@pytest.mark.parametrize(
    ("text", "language", "intent"),
    [
        ("what's my balance", "en", "balance"),
        ("كم رصيدي", "ar", "balance"),
        ("jakie mam saldo", "pl", "balance"),
        ("what did I spend at Tesco last month", "en", "spending"),
        ("ile wydałem w marcu", "pl", "spending"),
        ("link my bank", "en", "link"),
        ("cancel", "en", "cancel"),
        ("مرحبا", "ar", "smalltalk"),
        ("blance", "en", "balance"),
        ("saldoo", "pl", "balance"),
        ("ile wydalem w marcu", "pl", "spending"),
    ],
)
def test_the_briefs_examples_typos_and_missing_diacritics(
    text: str, language: str, intent: str
) -> None:
    assert classify(text, language, today=TODAY).name == intent


def test_merchant_and_period_are_extracted() -> None:
    tesco = classify("what did I spend at Tesco last month", "en", today=TODAY)
    assert (tesco.merchant, tesco.date_from, tesco.date_to) == (
        "Tesco",
        date(2026, 10, 1),
        date(2026, 10, 31),
    )
    march = classify("ile wydałem w Biedronce w marcu", "pl", today=TODAY)
    assert march.merchant == "Biedronce"
    assert (march.date_from, march.date_to) == (date(2026, 3, 1), date(2026, 3, 31))
    carrefour = classify("كم صرفت في كارفور الشهر الماضي", "ar", today=TODAY)
    assert carrefour.merchant == "كارفور" and carrefour.date_from == date(2026, 10, 1)


def test_arabic_indic_digits_in_dates() -> None:
    got = classify("مشترياتي يوم ١٥ مارس", "ar", today=TODAY)
    assert (got.name, got.date_from, got.date_to) == (
        "transactions",
        date(2026, 3, 15),
        date(2026, 3, 15),
    )
    assert classify("آخر ٣٠ يوم معاملات", "ar", today=TODAY).date_from == date(2026, 10, 27)


def test_a_named_month_is_the_latest_one_not_after_today() -> None:
    december = classify("spending in December", "en", today=TODAY)
    assert (december.date_from, december.date_to) == (date(2025, 12, 1), date(2025, 12, 31))
    november = classify("spending in November", "en", today=TODAY)
    assert (november.date_from, november.date_to) == (date(2026, 11, 1), TODAY)


def test_an_unclear_phrase_offers_candidates_or_nothing() -> None:
    both = classify("balance or transactions?", "en", today=TODAY)
    assert both.name == "unknown" and set(both.candidates) == {"balance", "transactions"}
    merchant_only = classify("lunch with Anna", "en", today=TODAY)
    assert (merchant_only.name, merchant_only.candidates) == ("unknown", ("transactions",))
    nothing = classify("qwerty zxcvb", "en", today=TODAY)
    assert (nothing.name, nothing.candidates) == ("unknown", ())
    assert classify("", "pl", today=TODAY) == Intent("unknown", 0.0)


def test_spending_words_with_a_merchant_and_a_period_are_sure() -> None:
    got = classify("how much have I spent at Starbucks this month", "en", today=TODAY)
    assert (kind(got), got.merchant, got.date_from, got.date_to, got.candidates) == (
        "transactions",
        "Starbucks",
        date(2026, 11, 1),
        TODAY,
        (),
    )


@pytest.mark.parametrize(
    ("text", "language", "start", "end"),
    [
        ("transactions today", "en", TODAY, TODAY),
        ("what did I buy yesterday", "en", date(2026, 11, 24), date(2026, 11, 24)),
        ("spending last week", "en", date(2026, 11, 16), date(2026, 11, 22)),
        ("spending this month", "en", date(2026, 11, 1), TODAY),
        ("payments in the last 30 days", "en", date(2026, 10, 27), TODAY),
        ("transactions from 2026-03-01", "en", date(2026, 3, 1), TODAY),
        ("spending since 3 March", "en", date(2026, 3, 3), TODAY),
        ("ile wydałem w zeszłym miesiącu", "pl", date(2026, 10, 1), date(2026, 10, 31)),
        ("wydatki za ostatni miesiąc", "pl", date(2026, 10, 1), date(2026, 10, 31)),
        ("transakcje od 15.03.2026", "pl", date(2026, 3, 15), TODAY),
        ("كم صرفت الشهر الماضي", "ar", date(2026, 10, 1), date(2026, 10, 31)),
        ("مصاريفي في كانون الثاني", "ar", date(2026, 1, 1), date(2026, 1, 31)),
        ("المعاملات منذ ١ أكتوبر", "ar", date(2026, 10, 1), TODAY),
    ],
)
def test_periods(text: str, language: str, start: date, end: date) -> None:
    got = classify(text, language, today=TODAY)
    assert (kind(got), got.date_from, got.date_to, got.merchant) == (
        "transactions",
        start,
        end,
        None,
    )


def test_a_since_word_is_not_part_of_the_merchant() -> None:
    got = classify("spent anything at Lidl since 1 November?", "en", today=TODAY)
    assert (got.merchant, got.date_from, got.date_to) == ("Lidl", date(2026, 11, 1), TODAY)


@pytest.mark.parametrize("text", ["spent 29.02.2028", "spent 2030-01-01", "spent 31 feb 2026"])
def test_impossible_or_future_dates_are_ignored_not_raised(text: str) -> None:
    got = classify(text, "en", today=TODAY)
    assert (kind(got), got.date_from, got.date_to) == ("transactions", None, None)


def test_a_known_word_is_not_read_as_a_typo_of_another() -> None:
    # "disconnect" contains "connect" (link) but is itself a consents word
    assert kind(classify("pls disconnect Monzo", "en", today=TODAY)) == "consents"
    assert kind(classify("disconnect my bank", "en", today=TODAY)) == "consents"


def test_a_greeting_before_a_question_answers_the_question() -> None:
    assert kind(classify("hi, what's my balance?", "en", today=TODAY)) == "balance"
    assert kind(classify("cześć, ile mam na koncie?", "pl", today=TODAY)) == "balance"
    assert kind(classify("hello", "en", today=TODAY)) == "smalltalk"


def test_an_unknown_language_is_read_as_english_and_every_keyword_set() -> None:
    assert kind(classify("what's my balance", "de", today=TODAY)) == "balance"
    assert kind(classify("jakie mam saldo", "fr", today=TODAY)) == "balance"
    assert kind(classify("كم رصيدي", "", today=TODAY)) == "balance"


def test_a_merchant_after_for_or_to_in_a_spending_question() -> None:
    netflix = classify("how much did I pay for Netflix in September", "en", today=TODAY)
    assert (kind(netflix), netflix.merchant, netflix.date_from, netflix.date_to) == (
        "transactions",
        "Netflix",
        date(2026, 9, 1),
        date(2026, 9, 30),
    )
    john = classify("payments to John in October", "en", today=TODAY)
    assert (kind(john), john.merchant) == ("transactions", "John")
    assert classify("ile zapłaciłem za Netflixa", "pl", today=TODAY).merchant == "Netflixa"
    assert classify("كم صرفت على نون", "ar", today=TODAY).merchant == "نون"
    # without a spending word, "to"/"for" introduce no merchant
    assert kind(classify("switch to Polish", "en", today=TODAY)) == "language"
    assert kind(classify("book me a table for two", "en", today=TODAY)) == "unknown"


def test_an_arabic_merchant_glued_to_its_preposition() -> None:
    assert classify("قديش صرفت بكارفور", "ar", today=TODAY).merchant == "كارفور"
    assert classify("كم دفعت لنتفليكس", "ar", today=TODAY).merchant == "نتفليكس"
    card = classify("كم صرفت ببطاقتي الشهر الماضي", "ar", today=TODAY)
    assert (kind(card), card.merchant) == ("transactions", None)


def test_savings_is_a_balance_word_not_a_merchant() -> None:
    got = classify("what do I have in savings", "en", today=TODAY)
    assert (kind(got), got.merchant) == ("balance", None)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("stop sharing my data with Libertas", "en"),
        ("cancel my consent", "en"),
        ("przestań udostępniać moje dane", "pl"),
        ("jakie banki są połączone", "pl"),
        ("اوقف مشاركة بياناتي مع البنك", "ar"),
        ("الغي الموافقة", "ar"),
    ],
)
def test_a_match_inside_a_longer_one_of_another_intent_does_not_count(
    text: str, language: str
) -> None:
    # "stop" (cancel) and "my data" (privacy) are inside "stop sharing … data" (consents);
    # "połączone" matches the consents stem "połączon*", longer than the link stem "połącz*"
    assert kind(classify(text, language, today=TODAY)) == "consents"


@pytest.mark.parametrize(
    ("text", "language", "intent"),
    [
        ("jaki jest stan moich kont", "pl", "balance"),
        ("stan mojego konta", "pl", "balance"),
        ("add another bank please", "en", "link"),
        ("احذف كل بياناتي", "ar", "privacy"),
        ("اوقف المشاركة", "ar", "consents"),
        ("اوقف مشاركة", "ar", "consents"),
    ],
)
def test_phrases_allow_fillers_and_arabic_articles_between_their_words(
    text: str, language: str, intent: str
) -> None:
    assert kind(classify(text, language, today=TODAY)) == intent


@pytest.mark.parametrize(
    ("text", "language", "intent"),
    [
        ("switch to Polish", "en", "language"),
        ("download everything you store about me", "en", "privacy"),
        ("nah, forget about it", "en", "cancel"),
        ("اعرض أرصدتي", "ar", "balance"),
        ("افصل حسابي", "ar", "consents"),
        ("kto miał dostęp do moich danych", "pl", "privacy"),
        ("kto ma dostęp do mojego konta", "pl", "consents"),
        ("who has access to my accounts", "en", "consents"),
    ],
)
def test_general_vocabulary(text: str, language: str, intent: str) -> None:
    assert kind(classify(text, language, today=TODAY)) == intent


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("how much money did I spend", "en"),
        ("transactions in my account last month", "en"),
        ("ile pieniędzy wydałem w marcu", "pl"),
        ("كم فلوس صرفت", "ar"),
        ("وين راحت فلوسي هالشهر", "ar"),
    ],
)
def test_a_spending_word_outweighs_generic_money_words(text: str, language: str) -> None:
    # "how much money", "in my account", "ile pieniędzy", "فلوسي" are balance words too, but
    # without "balance" itself the spending word decides
    assert kind(classify(text, language, today=TODAY)) == "transactions"


def test_weak_words_count_only_on_their_own() -> None:
    assert kind(classify("how do I link my bank", "en", today=TODAY)) == "link"
    assert kind(classify("how do I", "en", today=TODAY)) == "help"
    assert kind(classify("remove Libertas from my accounts", "en", today=TODAY)) == "consents"
    assert kind(classify("show me all my accounts", "en", today=TODAY)) == "balance"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("كيف الطقس اليوم في الرياض", "ar"),
        ("what's the weather in London today", "en"),
        ("jaka jest pogoda w Warszawie dzisiaj", "pl"),
    ],
)
def test_a_period_and_a_place_in_an_off_topic_question_are_not_spending(
    text: str, language: str
) -> None:
    got = classify(text, language, today=TODAY)
    assert got.name == "unknown"


def test_a_period_with_money_words_or_a_lone_name_is_still_spending() -> None:
    assert kind(classify("where did all my money go this month", "en", today=TODAY)) == (
        "transactions"
    )
    assert kind(classify("what about last week", "en", today=TODAY)) == "transactions"
    tesco = classify("Tesco last week?", "en", today=TODAY)
    assert (kind(tesco), tesco.merchant) == ("transactions", "Tesco")


def test_typos_are_read_as_the_word_that_explains_most_of_them() -> None:
    assert kind(classify("transactoins", "en", today=TODAY)) == "transactions"
    assert kind(classify("tranzakcje", "pl", today=TODAY)) == "transactions"
    assert kind(classify("whats my balence", "en", today=TODAY)) == "balance"
    # a merchant is not a typo of a short stem ("Revolut" is not "revok*")
    revolut = classify("what did I spend at Revolut", "en", today=TODAY)
    assert (kind(revolut), revolut.merchant) == ("transactions", "Revolut")
    # one changed letter in a short Arabic word is another word: "الأخبار" is not "الادخار"
    assert kind(classify("شو الأخبار", "ar", today=TODAY)) == "unknown"


def test_a_lone_no_cancels_and_apostrophes_do_not_matter() -> None:
    for text, language in (("no", "en"), ("Nie", "pl"), ("لا", "ar")):
        assert kind(classify(text, language, today=TODAY)) == "cancel"
    assert classify("whats my balance", "en", today=TODAY) == classify(
        "what’s my balance", "en", today=TODAY
    )


def test_no_keyword_belongs_to_two_intents() -> None:
    seen: dict[tuple[tuple[str, ...], tuple[bool, ...]], str] = {}
    for keyword in _ALL:
        key = (keyword.words, keyword.stems)
        assert seen.setdefault(key, keyword.intent) == keyword.intent, keyword.text


@given(st.sampled_from([p for p in _PHRASES_FOR_DIACRITICS if p["language"] == "pl"]))
def test_polish_without_diacritics_reads_the_same(phrase: dict[str, str]) -> None:
    plain = phrase["text"].translate(str.maketrans("ąćęłńóśźżĄĆĘŁŃÓŚŹŻ", "acelnoszzACELNOSZZ"))
    a = classify(phrase["text"], "pl", today=TODAY)
    b = classify(plain, "pl", today=TODAY)
    assert (kind(a), a.date_from, a.date_to) == (kind(b), b.date_from, b.date_to)


@pytest.mark.parametrize("language", ["en", "ar", "pl"])
def test_accuracy_on_the_labelled_set_is_at_least_95_percent(language: str) -> None:
    today, phrases = load()
    mine = [p for p in phrases if p["language"] == language]
    assert len(mine) >= 60
    right = [classify(p["text"], language, today=today).name == p["intent"] for p in mine]
    assert sum(right) / len(right) >= 0.95


def test_labelled_entities_are_mostly_found() -> None:
    today, phrases = load()
    results = [
        entity_ok(p, classify(p["text"], p["language"], today=today))
        for p in phrases
        if "merchant" in p or "date_from" in p
    ]
    assert len(results) >= 30
    assert sum(bool(r) for r in results) / len(results) >= 0.85


@given(st.text(max_size=200), st.sampled_from(["en", "ar", "pl", "de", ""]))
def test_any_text_in_any_language_gets_a_known_intent(text: str, language: str) -> None:
    got = classify(text, language, today=TODAY)
    assert got.name in NAMES
    assert 0.0 <= got.confidence <= 1.0
    assert set(got.candidates) <= set(NAMES)
    if got.date_from and got.date_to:
        assert got.date_from <= got.date_to <= TODAY


@given(st.text(max_size=120))
def test_normalization_is_idempotent(text: str) -> None:
    once = normalize(text)
    assert normalize(once) == once


_PHRASES = load()[1]
_MONTHS = {
    "en": ("January", "March", "June", "October"),
    "pl": ("stycznia", "marca", "czerwca", "października"),
    "ar": ("يناير", "مارس", "يونيو", "أكتوبر"),
}
_SPENT = {"en": "what did I spend on {}", "pl": "ile wydałem {}", "ar": "كم صرفت يوم {}"}
_AT = {
    "en": "what did I spend at {} last month",
    "pl": "ile wydałem w {} w zeszłym miesiącu",
    "ar": "كم صرفت في {} الشهر الماضي",
}
# made-up names: "Qz" keeps them from being (or starting like) a word the classifier knows
_NAMES = st.builds(
    lambda first, more: f"Qz{first}{more}",
    st.text("abcdefghijklmnoprstuwyz", min_size=2, max_size=8),
    st.sampled_from(["", " Market", " Bistro", "-Shop"]),
)


@given(st.sampled_from(_PHRASES))
def test_arabic_indic_digits_read_like_ascii_ones(phrase: dict[str, str]) -> None:
    ascii_text = phrase["text"]
    arabic = ascii_text.translate(ARABIC_INDIC)
    a = classify(ascii_text, phrase["language"], today=TODAY)
    b = classify(arabic, phrase["language"], today=TODAY)
    assert (kind(a), a.date_from, a.date_to) == (kind(b), b.date_from, b.date_to)


@given(st.sampled_from(_PHRASES), st.sampled_from(["upper", "lower", "title"]))
def test_letter_case_does_not_change_the_intent(phrase: dict[str, str], case: str) -> None:
    text = phrase["text"]
    changed = getattr(text, case)()
    assert kind(classify(changed, phrase["language"], today=TODAY)) == kind(
        classify(text, phrase["language"], today=TODAY)
    )


@given(
    st.sampled_from(["en", "pl", "ar"]),
    st.integers(1, 28),
    st.integers(0, 3),
)
def test_arabic_indic_digits_in_dates_read_like_ascii_ones(
    language: str, day: int, month: int
) -> None:
    text = _SPENT[language].format(f"{day} {_MONTHS[language][month]}")
    a = classify(text, language, today=TODAY)
    b = classify(text.translate(ARABIC_INDIC), language, today=TODAY)
    assert kind(a) == kind(b) == "transactions"
    assert a.date_from is not None and a.date_from.day == day
    assert (a.date_from, a.date_to) == (b.date_from, b.date_to)


@given(st.dates(date(2000, 1, 1), date(2035, 12, 31)))
def test_an_iso_date_starts_the_period_unless_it_is_in_the_future(day: date) -> None:
    got = classify(f"transactions since {day.isoformat()}", "en", today=TODAY)
    assert got.name == "transactions"
    if day <= TODAY:
        assert (got.date_from, got.date_to) == (day, TODAY)
    else:
        assert (got.date_from, got.date_to) == (None, None)


@given(st.sampled_from(["en", "pl", "ar"]), _NAMES)
def test_the_merchant_comes_back_as_written(language: str, name: str) -> None:
    got = classify(_AT[language].format(name), language, today=TODAY)
    assert (kind(got), got.merchant) == ("transactions", name)
    assert (got.date_from, got.date_to) == (date(2026, 10, 1), date(2026, 10, 31))
