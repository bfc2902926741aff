"""Minimized views hold only allow-listed fields and none of the raw values around them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.domain.merchants import category_for_mcc, clean_merchant_name
from consent.domain.minimize import balance_view, fraud_alert_view, transaction_view
from consent.domain.views import BALANCE_FIELDS, FRAUD_ALERT_FIELDS, TRANSACTION_FIELDS

digits = st.text(alphabet="0123456789", min_size=8, max_size=19)
amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("999999.99"), places=2).map(str)
secret = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZ", min_size=12, max_size=24).map(
    lambda s: "RAW" + s
)
names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=3, max_size=20).map(
    lambda s: s.strip() or "shop"
)


@st.composite
def obie_transaction(draw: st.DrawFn) -> tuple[dict[str, Any], set[str]]:
    pan = draw(digits.filter(lambda d: len(d) >= 16).map(lambda d: d[:16]))
    raw = {
        "descriptor": draw(secret),
        "reference": draw(secret),
        "counterparty": draw(secret),
        "balance": draw(amounts),
        "pan": pan,
    }
    tx: dict[str, Any] = {
        "AccountId": draw(secret),
        "TransactionId": draw(secret),
        "TransactionReference": raw["reference"],
        "CreditDebitIndicator": draw(st.sampled_from(["Credit", "Debit"])),
        "Status": draw(st.sampled_from(["Booked", "Pending"])),
        "BookingDateTime": "2026-03-04T10:11:12+00:00",
        "Amount": {"Amount": draw(amounts), "Currency": "GBP"},
        "TransactionInformation": raw["descriptor"],
        "Balance": {
            "Amount": {"Amount": raw["balance"], "Currency": "GBP"},
            "CreditDebitIndicator": "Credit",
            "Type": "InterimBooked",
        },
        "MerchantDetails": {
            "MerchantName": draw(names),
            "MerchantCategoryCode": draw(st.sampled_from(["5411", "5812", "4111"])),
        },
        "CardInstrument": {
            "CardSchemeName": "VISA",
            "Identification": draw(st.sampled_from([pan, "*" * 12 + pan[-4:]])),
        },
        "CreditorAccount": {
            "SchemeName": "UK.OBIE.SortCodeAccountNumber",
            "Identification": raw["counterparty"],
        },
    }
    forbidden = {
        raw["descriptor"],
        raw["reference"],
        raw["counterparty"],
        raw["pan"],
        tx["AccountId"],
        tx["TransactionId"],
    }
    return tx, forbidden


def _values(view: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for v in view.values():
        if isinstance(v, list):
            out.update(map(str, v))
        elif v is not None:
            out.add(str(v))
    return out


@settings(max_examples=200, deadline=None)
@given(
    obie_transaction(),
    st.sets(st.sampled_from(sorted(TRANSACTION_FIELDS | {"iban", "mcc", "raw"}))),
)
def test_a_transaction_view_has_only_allowed_fields_and_no_raw_values(
    case: tuple[dict[str, Any], set[str]], fields: set[str]
) -> None:
    tx, forbidden = case
    view = transaction_view(tx, opaque_id="op_1", fields=frozenset(fields))
    assert set(view) <= TRANSACTION_FIELDS & fields
    values = _values(view)
    for raw in forbidden:
        assert not any(raw in v for v in values)
    if "amount" in view:
        assert Decimal(str(view["amount"])) == Decimal(tx["Amount"]["Amount"])
    if "card_last4" in view:
        assert view["card_last4"] == tx["CardInstrument"]["Identification"][-4:]
        assert len(str(view["card_last4"])) == 4


@settings(max_examples=200, deadline=None)
@given(secret, secret, digits, amounts, st.sets(st.sampled_from(sorted(BALANCE_FIELDS))))
def test_a_balance_view_never_carries_the_account_number_or_bank_ids(
    account_id: str, holder: str, number: str, amount: str, fields: set[str]
) -> None:
    account = {
        "AccountId": account_id,
        "Nickname": "Everyday",
        "AccountSubType": "CurrentAccount",
        "Currency": "GBP",
        "Account": [
            {
                "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": number,
                "Name": holder,
            }
        ],
    }
    balances = [
        {
            "AccountId": account_id,
            "Type": "InterimAvailable",
            "CreditDebitIndicator": "Debit",
            "DateTime": "2026-11-20T10:00:00+00:00",
            "Amount": {"Amount": amount, "Currency": "GBP"},
        },
        {
            "AccountId": account_id,
            "Type": "InterimBooked",
            "CreditDebitIndicator": "Credit",
            "DateTime": "2026-11-20T10:00:00+00:00",
            "Amount": {"Amount": amount, "Currency": "GBP"},
        },
    ]
    view = balance_view(
        account,
        balances,
        bank_name="Northwind Bank",
        account_handle="acc_x",
        fields=frozenset(fields),
    )
    assert set(view) <= fields
    values = _values(view)
    assert account_id not in values
    assert holder not in values
    assert number not in values or len(number) == 4
    if "available" in view:
        assert view["available"] == f"-{Decimal(amount)}"
    if "current" in view:
        assert view["current"] == str(Decimal(amount))
    if "last4" in view:
        assert view["last4"] == number[-4:]


@settings(max_examples=200, deadline=None)
@given(secret, secret, st.floats(min_value=-90, max_value=90), st.integers(0, 100), amounts)
def test_a_fraud_alert_view_drops_risk_score_rules_location_and_device(
    device: str, descriptor: str, latitude: float, risk: int, amount: str
) -> None:
    payload = {
        "alert_id": "fa-1",
        "consent_id": "aac-1",
        "account_id": "noc000001a0",
        "card_id": "noc000001a0k0",
        "masked_pan": "************4242",
        "transaction": {
            "transaction_id": "t1",
            "booked_at": "2026-11-20T10:00:00+00:00",
            "Amount": amount,
            "Currency": "GBP",
            "merchant_name": "Luxe Watches",
            "raw_descriptor": descriptor,
            "mcc": "5944",
            "country": "FR",
            "latitude": latitude,
            "longitude": 2.35,
        },
        "reason": "unusual_amount",
        "rule_ids": ["AMT-01", "GEO-01"],
        "risk_score": risk,
        "device_id": device,
    }
    view = fraud_alert_view(
        payload,
        alert_handle="alt_x",
        account_handle="acc_x",
        actions=["it_was_me", "freeze_card"],
        fields=FRAUD_ALERT_FIELDS,
    )
    assert set(view) == FRAUD_ALERT_FIELDS
    values = _values(view)
    for raw in (
        device,
        descriptor,
        "noc000001a0",
        "noc000001a0k0",
        "AMT-01",
        "aac-1",
        "t1",
        "fa-1",
    ):
        assert raw not in values
    assert view["card_last4"] == "4242"
    assert view["alert_id"] == "alt_x"
    assert view["amount"] == str(Decimal(amount))


def test_merchant_categories_come_from_iso_18245_ranges() -> None:
    assert category_for_mcc("5411") == "groceries"
    assert category_for_mcc("5812") == "eating_out"
    assert category_for_mcc("5541") == "fuel"
    assert category_for_mcc("4511") == "travel"
    assert category_for_mcc("6011") == "cash"
    assert category_for_mcc(None) == "other"
    assert category_for_mcc("abc") == "other"


def test_merchant_names_prefer_the_clean_name_and_clean_a_descriptor() -> None:
    assert clean_merchant_name("Tesco", "TESCO STORES 2345 LONDON GB") == "Tesco"
    assert clean_merchant_name(None, "TESCO STORES 2345 LONDON GB") == "Tesco Stores London"
    assert clean_merchant_name(None, "AMZN MKTP*123456 GB") == "Amzn Mktp"
    assert clean_merchant_name(None, None) is None
