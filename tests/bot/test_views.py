"""Rendering: escaping, callback-data limits, locale formats and right-to-left text."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st
from telegram import InlineKeyboardMarkup

from bot import views
from bot.broker import Balance, Bank, BrokerError, Transaction, TransactionPage, Unavailable
from bot.i18n import LRI, PDI, RLM, pick_language, tr

NOW = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)
BANK = Bank(
    bank_id="northwind",
    name="Northwind Bank",
    scopes=["balances", "transactions", "fraud_alerts", "card_controls"],
    max_duration_days=365,
)
STRICT = Bank(
    bank_id="wisla", name="Bank Wisła", scopes=["balances", "fraud_alerts"], max_duration_days=30
)


def callback_data(keyboard: InlineKeyboardMarkup | None) -> list[str]:
    if keyboard is None:
        return []
    return [
        str(b.callback_data) for row in keyboard.inline_keyboard for b in row if b.callback_data
    ]


def test_telegram_language_codes_pick_a_supported_language() -> None:
    assert pick_language("ar-SA") == "ar"
    assert pick_language("pl") == "pl"
    assert pick_language("en-US") == "en"
    assert pick_language("de") == "en"
    assert pick_language(None) == "en"


def test_money_and_dates_follow_the_locale() -> None:
    assert tr("en").money(Decimal("1234.5"), "GBP") == "£1,234.50"
    assert tr("pl").money(Decimal("1234.5"), "PLN") == "1\xa0234,50\xa0zł"
    ar = tr("ar").money(Decimal("1234.5"), "SAR")
    assert ar.startswith(LRI) and ar.endswith(PDI)
    assert tr("pl").day("2026-03-05") == "5 mar 2026"


def test_a_strict_bank_offers_only_what_it_allows_for_as_long_as_it_allows() -> None:
    text, keyboard = views.scope_picker(tr("en"), STRICT, ["balances"])
    assert callback_data(keyboard) == [
        "lk:sc:balances",
        "lk:sc:fraud_alerts",
        "lk:cancel",
        "lk:next",
    ]
    assert "does not share" in text and "Transactions" in text
    _, keyboard = views.duration_picker(tr("en"), STRICT)
    assert callback_data(keyboard) == ["lk:days:30", "lk:cancel"]


def test_the_disclosure_names_who_what_why_how_long_and_how_to_stop() -> None:
    text, _ = views.disclosure(tr("en"), BANK, ["balances", "fraud_alerts"], 90, NOW)
    for part in (
        "Who receives",
        "Balances, Fraud alerts",
        "Why:",
        "90 days",
        "18 Feb 2027",
        "/consents",
        "advertising",
        "Never type a password",
    ):
        assert part in text


def test_balances_are_grouped_by_bank() -> None:
    views_ = [
        Balance(
            bank_name="Northwind Bank",
            nickname="Main",
            last4="1234",
            currency="GBP",
            available=Decimal("10.00"),
            current=Decimal("10.00"),
        ),
        Balance(
            bank_name="Northwind Bank",
            account_type="savings",
            last4="9876",
            currency="GBP",
            available=Decimal("500.00"),
        ),
        Balance(
            bank_name="Libertas Federal",
            account_type="current",
            last4="5555",
            currency="USD",
            available=Decimal("7.25"),
        ),
    ]
    text = views.balances(tr("en"), views_)
    assert text.count("🏦") == 2
    assert text.index("Northwind") < text.index("Savings") < text.index("Libertas")
    assert "ending 9876" in text and "US$7.25" in text


@given(st.text(min_size=1, max_size=60))
def test_outside_text_is_escaped_everywhere(name: str) -> None:
    page = TransactionPage(
        transactions=[Transaction(merchant=name, amount=Decimal("1.00"), currency="GBP")],
        totals={"GBP": {"in": Decimal(0), "out": Decimal("1.00")}},
    )
    for language in ("en", "ar", "pl"):
        text, keyboard = views.transactions(
            tr(language),
            page,
            account=name,
            period="7d",
            merchant=name,
            page_no=1,
            accounts=[name, "x"],
        )
        stripped = text.replace("<b>", "").replace("</b>", "")
        assert "<" not in stripped and ">" not in stripped.replace("&gt;", "")
        assert all(len(d.encode()) <= 64 for d in callback_data(keyboard))


@given(
    st.from_regex(
        r"fa-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", fullmatch=True
    )
)
def test_alert_buttons_fit_telegrams_64_bytes(alert_id: str) -> None:
    view = {
        "alert_id": alert_id,
        "merchant": "X",
        "amount": "1.00",
        "currency": "GBP",
        "actions": ["it_was_me", "freeze_card"],
    }
    _, keyboard = views.alert(tr("en"), view)
    data = callback_data(keyboard)
    assert data == [f"al:me:{alert_id}", f"al:fz:{alert_id}"]
    assert all(len(d.encode()) <= 64 for d in data)


def test_without_card_controls_there_is_no_freeze_button() -> None:
    _, keyboard = views.alert(tr("en"), {"alert_id": "fa-1", "actions": ["it_was_me"]})
    assert callback_data(keyboard) == ["al:me:fa-1"]


def test_arabic_messages_are_right_to_left_with_isolated_latin_names() -> None:
    text = views.balances(
        tr("ar"),
        [Balance(bank_name="Nakheel Bank", last4="1234", currency="SAR", available=Decimal("5"))],
    )
    assert text.startswith(RLM)
    assert f"{LRI}Nakheel Bank{PDI}" in text


def test_every_broker_problem_has_words_for_it() -> None:
    codes = [
        "broker_unavailable",
        "broker_timeout",
        "bank_unavailable",
        "bank_timeout",
        "rate_limited",
        "consent_not_authorized",
        "scope_not_consented",
        "already_answered",
        "not_found",
        "whatever",
    ]
    texts = {
        views.problem(tr("en"), BrokerError(404 if c == "not_found" else 400, c)) for c in codes
    }
    assert len(texts) >= 8
    assert all("Traceback" not in t and t.startswith("⚠️") for t in texts)


def test_an_expired_link_is_explained_like_an_ended_one() -> None:
    ended = views.problem(tr("en"), BrokerError(403, "consent_not_authorized"))
    assert views.problem(tr("en"), BrokerError(403, "consent_expired")) == ended
    assert "/link" in ended


def test_arabic_commands_stay_left_to_right_and_tags_are_untouched() -> None:
    text = tr("ar").message("<b>مرحبا</b> ابدأ بـ /link أو /privacy")
    assert f"{LRI}/link{PDI}" in text and f"{LRI}/privacy{PDI}" in text
    assert "<b>" in text and "</b>" in text
    assert tr("en").message("try /link") == "try /link"


def test_a_last_known_balance_says_when_it_was_read_in_each_language() -> None:
    read_at = datetime(2026, 11, 20, 10, 32, tzinfo=UTC)
    stale = Balance(
        bank_name="Northwind Bank",
        nickname="Main",
        currency="GBP",
        available=Decimal("10.00"),
        status="last_known",
        read_at=read_at,
        reason="bank_timeout",
    )
    english = views.balances(tr("en"), [stale], now=NOW)
    assert "as of 10:32" in english
    assert "Northwind Bank did not answer in time" in english
    polish = views.balances(tr("pl"), [stale], now=NOW)
    assert "stan na 10:32" in polish
    arabic = views.balances(tr("ar"), [stale], now=NOW)
    assert arabic.startswith(RLM) and "حتى" in arabic
    assert "10:32" in arabic or "١٠:٣٢" in arabic
    yesterday = views.balances(tr("en"), [stale], now=NOW.replace(day=21))
    assert "20/11/2026" in yesterday  # an older balance carries its date too


def test_a_fresh_balance_has_no_as_of_label() -> None:
    fresh = Balance(bank_name="Northwind Bank", currency="GBP", available=Decimal("1"))
    assert "as of" not in views.balances(tr("en"), [fresh], now=NOW)


def test_a_bank_that_did_not_answer_is_named_beside_the_others() -> None:
    wisla = Balance(bank_name="Bank Wisła", currency="PLN", available=Decimal("5"))
    gone = [
        Unavailable(bank_id="northwind", bank_name="Northwind Bank", reason="bank_timeout"),
        Unavailable(bank_id="acme", bank_name="Acme", reason="reauthorization_needed"),
    ]
    text = views.balances(tr("en"), [wisla], gone, now=NOW)
    assert "Bank Wisła" in text and "5" in text
    assert "Northwind Bank is not answering right now" in text
    assert "Acme needs you to link it again: /link" in text
    polish = views.balances(tr("pl"), [], gone[:1], now=NOW)
    assert "Northwind Bank nie odpowiada" in polish
