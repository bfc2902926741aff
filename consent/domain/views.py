"""The minimized views the platform may receive: one allow-list per view (DESIGN.md)."""

from __future__ import annotations

BALANCE_FIELDS: frozenset[str] = frozenset(
    {
        "bank_name",
        "account_handle",
        "nickname",
        "account_type",
        "last4",
        "currency",
        "available",
        "current",
        "as_of",
    }
)
TRANSACTION_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "booking_date",
        "amount",
        "currency",
        "direction",
        "status",
        "merchant",
        "category",
        "card_last4",
    }
)
FRAUD_ALERT_FIELDS: frozenset[str] = frozenset(
    {
        "alert_id",
        "account_handle",
        "card_last4",
        "merchant",
        "amount",
        "currency",
        "time",
        "reason",
        "actions",
    }
)

VIEW_FIELDS: dict[str, frozenset[str]] = {
    "balance": BALANCE_FIELDS,
    "transaction": TRANSACTION_FIELDS,
    "fraud_alert": FRAUD_ALERT_FIELDS,
}

View = dict[str, str | list[str] | None]
