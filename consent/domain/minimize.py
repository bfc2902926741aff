"""Raw bank records → minimized views, driven by allow-lists (never deny-lists).

Each function builds only the fields it knows how to derive safely, then keeps only those in
``fields`` (the intersection of the view's allow-list, the bank's policy and the platform
contract). Nothing from the input is copied wholesale.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from consent.domain.merchants import category_for_mcc, clean_merchant_name
from consent.domain.views import (
    BALANCE_FIELDS,
    FRAUD_ALERT_FIELDS,
    RECEIPT_FIELDS,
    TRANSACTION_FIELDS,
    View,
)


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _keep(candidate: View, fields: frozenset[str], allow_list: frozenset[str]) -> View:
    return {k: v for k, v in candidate.items() if k in fields and k in allow_list}


def last4(identification: object) -> str | None:
    """The last four digits of a card or account identification, or None."""
    if not isinstance(identification, str):
        return None
    digits = [c for c in identification if c.isdigit()]
    return "".join(digits[-4:]) if len(digits) >= 4 else None


def decimal_amount(value: object) -> str | None:
    """A canonical decimal string for an amount, or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    return str(amount) if amount.is_finite() else None


def _signed(amount: Mapping[str, Any] | None, indicator: object) -> str | None:
    if not isinstance(amount, Mapping):
        return None
    value = decimal_amount(amount.get("Amount"))
    if value is None:
        return None
    return f"-{value}" if indicator == "Debit" and Decimal(value) != 0 else value


def balance_view(
    account: Mapping[str, Any],
    balances: Sequence[Mapping[str, Any]],
    *,
    bank_name: str,
    account_handle: str,
    fields: frozenset[str],
) -> View:
    """One account's balance view from an OBIE Account and its Balance objects."""
    by_type = {b.get("Type"): b for b in balances if isinstance(b, Mapping)}
    available = by_type.get("InterimAvailable") or by_type.get("ClosingAvailable")
    current = by_type.get("InterimBooked") or by_type.get("ClosingBooked")
    identifications = account.get("Account") or []
    number = identifications[0].get("Identification") if identifications else None
    reference = available or current or {}
    amount = reference.get("Amount") if isinstance(reference, Mapping) else None
    candidate: View = {
        "bank_name": bank_name,
        "account_handle": account_handle,
        "nickname": str(account["Nickname"])[:40]
        if isinstance(account.get("Nickname"), str)
        else None,
        "account_type": str(account.get("AccountSubType"))
        if account.get("AccountSubType")
        else None,
        "last4": last4(number),
        "currency": amount.get("Currency")
        if isinstance(amount, Mapping)
        else account.get("Currency"),
        "available": _signed(available.get("Amount"), available.get("CreditDebitIndicator"))
        if available
        else None,
        "current": _signed(current.get("Amount"), current.get("CreditDebitIndicator"))
        if current
        else None,
        "as_of": str(reference.get("DateTime"))
        if isinstance(reference, Mapping) and reference.get("DateTime")
        else None,
    }
    return _keep(candidate, fields, BALANCE_FIELDS)


def transaction_view(tx: Mapping[str, Any], *, opaque_id: str, fields: frozenset[str]) -> View:
    """One transaction's view from an OBIE Transaction object."""
    merchant = _map(tx.get("MerchantDetails"))
    card = _map(tx.get("CardInstrument"))
    amount = _map(tx.get("Amount"))
    booked = tx.get("BookingDateTime")
    candidate: View = {
        "id": opaque_id,
        "booking_date": booked[:10] if isinstance(booked, str) else None,
        "amount": decimal_amount(amount.get("Amount")),
        "currency": amount.get("Currency") if isinstance(amount.get("Currency"), str) else None,
        "direction": "in" if tx.get("CreditDebitIndicator") == "Credit" else "out",
        "status": "pending" if tx.get("Status") == "Pending" else "booked",
        "merchant": clean_merchant_name(merchant.get("MerchantName"), None),
        "category": category_for_mcc(merchant.get("MerchantCategoryCode")) if merchant else None,
        "card_last4": last4(card.get("Identification")),
    }
    return _keep(candidate, fields, TRANSACTION_FIELDS)


def fraud_alert_view(
    payload: Mapping[str, Any],
    *,
    alert_handle: str,
    account_handle: str,
    actions: Sequence[str],
    fields: frozenset[str],
) -> View:
    """A fraud alert's view from the bank's ``urn:chatbank:events:fraud-alert`` event body; the
    bank's own alert id is replaced by the broker's opaque handle."""
    tx = _map(payload.get("transaction"))
    candidate: View = {
        "alert_id": alert_handle,
        "account_handle": account_handle,
        "card_last4": last4(payload.get("masked_pan")),
        "merchant": clean_merchant_name(tx.get("merchant_name"), None),
        "amount": decimal_amount(tx.get("Amount")),
        "currency": tx.get("Currency") if isinstance(tx.get("Currency"), str) else None,
        "time": tx.get("booked_at") if isinstance(tx.get("booked_at"), str) else None,
        "reason": str(payload.get("reason")) if payload.get("reason") else None,
        "actions": list(actions),
    }
    return _keep(candidate, fields, FRAUD_ALERT_FIELDS)


# what each receipt field needs from the bank's transaction allow-list (None: always allowed)
_RECEIPT_SOURCE: dict[str, str | None] = {
    "receipt_id": None,
    "account_handle": None,
    "card_last4": "card_last4",
    "merchant": "merchant",
    "amount": "amount",
    "currency": "currency",
    "category": "category",
    "status": "status",
    "time": "booking_date",
}


def receipt_fields(transaction_fields: frozenset[str]) -> frozenset[str]:
    """A receipt is the transaction view pushed: it may carry a field only if the bank's (and
    the platform's) transaction allow-list does."""
    return frozenset(
        f for f, source in _RECEIPT_SOURCE.items() if source is None or source in transaction_fields
    )


def is_card_payment(tx: Mapping[str, Any]) -> bool:
    """An OBIE transaction that is a card payment out of the account."""
    return tx.get("CreditDebitIndicator") == "Debit" and isinstance(
        tx.get("CardInstrument"), Mapping
    )


def _utc_time(value: object) -> str | None:
    """An ISO 8601 time with offset → the same instant in UTC, to the second; else None."""
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    return at.astimezone(UTC).isoformat(timespec="seconds")


def receipt_view(
    tx: Mapping[str, Any],
    *,
    receipt_id: str,
    account_handle: str,
    status: str,
    fields: frozenset[str],
) -> View:
    """A receipt from an OBIE card-payment Transaction: merchant display name, amount, card
    last 4, category, pending/booked/reversed and the booking time; nothing else is copied."""
    merchant = _map(tx.get("MerchantDetails"))
    card = _map(tx.get("CardInstrument"))
    amount = _map(tx.get("Amount"))
    booked = tx.get("BookingDateTime")
    candidate: View = {
        "receipt_id": receipt_id,
        "account_handle": account_handle,
        "card_last4": last4(card.get("Identification")),
        "merchant": clean_merchant_name(merchant.get("MerchantName"), None),
        "amount": decimal_amount(amount.get("Amount")),
        "currency": amount.get("Currency") if isinstance(amount.get("Currency"), str) else None,
        "category": category_for_mcc(merchant.get("MerchantCategoryCode")) if merchant else None,
        "status": status if status in ("pending", "booked", "reversed") else None,
        "time": _utc_time(booked),
    }
    return _keep(candidate, fields, RECEIPT_FIELDS)
