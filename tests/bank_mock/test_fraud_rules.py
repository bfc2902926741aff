"""The fraud rules, as pure functions."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from bank_mock.fraud.rules import RuleConfig, evaluate
from bank_mock.models import Direction, Transaction, TxStatus

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CONFIG = RuleConfig()


def tx(
    minutes_ago: float,
    amount: int,
    *,
    country: str = "GB",
    merchant: str = "Tesco",
    direction: Direction = Direction.DEBIT,
    card: str | None = "k1",
) -> Transaction:
    at = NOW - timedelta(minutes=minutes_ago)
    return Transaction(
        transaction_id=f"t{minutes_ago}-{amount}-{merchant}",
        account_id="a1",
        booked_at=at,
        value_at=at,
        amount_minor=amount,
        currency="GBP",
        direction=direction,
        status=TxStatus.BOOKED,
        merchant_name=merchant,
        raw_descriptor=merchant.upper(),
        mcc="5411",
        category="groceries",
        transaction_code="CardPayment",
        card_id=card,
        counterparty_account=None,
        country=country,
        latitude=None,
        longitude=None,
        terminal_id=None,
        device_id=None,
        ip_address=None,
        bank_reference="r",
        balance_after_minor=0,
    )


# thirty days of ordinary spending, one a day around £20-£60
HISTORY = [tx(60 * 24 * d + 30, 2000 + (d * 137) % 4000) for d in range(1, 31)]


def test_an_ordinary_domestic_payment_does_not_alert() -> None:
    verdict = evaluate(tx(0, 3500), HISTORY, "GB", CONFIG)
    assert not verdict.alert
    assert verdict.reason is None


def test_a_payment_far_above_the_norm_is_an_unusual_amount() -> None:
    verdict = evaluate(tx(0, 250_000), HISTORY, "GB", CONFIG)
    assert verdict.rule_ids == ("AMT-01",)
    assert verdict.reason == "unusual_amount"


def test_a_payment_in_a_country_never_seen_before_is_unusual() -> None:
    verdict = evaluate(tx(0, 3000, country="BR"), HISTORY, "GB", CONFIG)
    assert verdict.reason == "unusual_country"


def test_a_country_seen_recently_is_not_unusual() -> None:
    history = [*HISTORY, tx(60 * 24 * 3, 3000, country="ES")]
    assert not evaluate(tx(0, 3000, country="ES"), history, "GB", CONFIG).alert


def test_three_card_payments_within_ten_minutes_are_rapid_repeats() -> None:
    history = [*HISTORY, tx(6, 3000), tx(3, 3100)]
    verdict = evaluate(tx(0, 3200), history, "GB", CONFIG)
    assert "VEL-01" in verdict.rule_ids


def test_tiny_payments_at_several_merchants_look_like_card_testing() -> None:
    history = [*HISTORY, tx(20, 100, merchant="A"), tx(12, 150, merchant="B")]
    verdict = evaluate(tx(0, 99, merchant="C"), history, "GB", CONFIG)
    assert "CT-01" in verdict.rule_ids
    assert verdict.reason == "card_testing"


def test_credits_never_alert() -> None:
    assert not evaluate(
        tx(0, 9_999_999, country="KP", direction=Direction.CREDIT), HISTORY, "GB", CONFIG
    ).alert


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=10_000_000), st.sampled_from(["GB", "US", "BR", "FR"]))
def test_the_risk_score_stays_between_0_and_100(amount: int, country: str) -> None:
    verdict = evaluate(tx(0, amount, country=country), HISTORY, "GB", CONFIG)
    assert 0 <= verdict.risk_score <= 100
    assert verdict.alert == bool(verdict.rule_ids)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=5_000_000), st.integers(min_value=1, max_value=100))
def test_raising_an_alerting_amount_never_clears_the_amount_rule(amount: int, factor: int) -> None:
    small = evaluate(tx(0, amount), HISTORY, "GB", CONFIG)
    big = evaluate(replace(tx(0, amount), amount_minor=amount * factor), HISTORY, "GB", CONFIG)
    if "AMT-01" in small.rule_ids:
        assert "AMT-01" in big.rule_ids


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=500, max_value=8000))
def test_ordinary_amounts_at_home_never_alert(amount: int) -> None:
    assert not evaluate(tx(0, amount), HISTORY, "GB", CONFIG).alert
