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
# A receipt: a new card payment pushed to the chat (the transaction view's fields, with the
# account handle and the booking time; DESIGN.md "receipt").
RECEIPT_FIELDS: frozenset[str] = frozenset(
    {
        "receipt_id",
        "account_handle",
        "card_last4",
        "merchant",
        "amount",
        "currency",
        "category",
        "status",
        "time",
    }
)

# An account as the accounts view lists it: the balance view's identity fields (still cut down
# by the bank's balance allow-list) with the bank and what the consent and policy allow for it.
ACCOUNT_FIELDS: frozenset[str] = frozenset(
    {"account_handle", "bank_name", "nickname", "account_type", "last4", "currency"}
)
ACCOUNT_ACTIONS: tuple[str, ...] = ("balances", "transactions", "spending", "card_controls")
# A spending total: money out over a period, per currency, with how many payments made it.
SPENDING_FIELDS: frozenset[str] = frozenset({"period", "currency", "total", "count", "category"})

# A message in a chat with the bank's staff (DESIGN.md "bank chat message"): the conversation's
# handle, the sender's role, the representative's display name, the text as the bank masked it,
# the time, and which kind of event it is (a message, or the "joined"/"left" notice); never the
# profile the agent sees, staff ids or internal notes.
BANK_CHAT_MESSAGE_FIELDS: frozenset[str] = frozenset(
    {"conversation", "kind", "role", "display_name", "text", "time"}
)

VIEW_FIELDS: dict[str, frozenset[str]] = {
    "balance": BALANCE_FIELDS,
    "transaction": TRANSACTION_FIELDS,
    "fraud_alert": FRAUD_ALERT_FIELDS,
    "bank_chat_message": BANK_CHAT_MESSAGE_FIELDS,
}

View = dict[str, str | list[str] | None]
