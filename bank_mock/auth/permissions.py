"""OBIE v3.1.11 account-access permission rules, as a pure function."""

from __future__ import annotations

from collections.abc import Sequence

KNOWN_PERMISSIONS: frozenset[str] = frozenset(
    {
        "ReadAccountsBasic",
        "ReadAccountsDetail",
        "ReadBalances",
        "ReadBeneficiariesBasic",
        "ReadBeneficiariesDetail",
        "ReadDirectDebits",
        "ReadOffers",
        "ReadPAN",
        "ReadParty",
        "ReadPartyPSU",
        "ReadProducts",
        "ReadScheduledPaymentsBasic",
        "ReadScheduledPaymentsDetail",
        "ReadStandingOrdersBasic",
        "ReadStandingOrdersDetail",
        "ReadStatementsBasic",
        "ReadStatementsDetail",
        "ReadTransactionsBasic",
        "ReadTransactionsCredits",
        "ReadTransactionsDebits",
        "ReadTransactionsDetail",
    }
)

_TX_SHAPE = {"ReadTransactionsBasic", "ReadTransactionsDetail"}
_TX_DIRECTION = {"ReadTransactionsCredits", "ReadTransactionsDebits"}


def permission_problem(permissions: Sequence[str]) -> str | None:
    """Why this permission list is invalid, or None when it is acceptable.

    Rules (account-and-transaction profile): at least one permission; every one a known code,
    none repeated; ReadTransactionsBasic/Detail need Credits and/or Debits, and Credits/Debits
    need Basic and/or Detail.
    """
    if not permissions:
        return "Permissions must not be empty"
    unknown = [p for p in permissions if p not in KNOWN_PERMISSIONS]
    if unknown:
        return f"Unknown permission {unknown[0][:60]!r}"
    if len(set(permissions)) != len(permissions):
        return "Permissions must not repeat"
    granted = set(permissions)
    if granted & _TX_SHAPE and not granted & _TX_DIRECTION:
        return "ReadTransactionsBasic/Detail need ReadTransactionsCredits and/or Debits"
    if granted & _TX_DIRECTION and not granted & _TX_SHAPE:
        return "ReadTransactionsCredits/Debits need ReadTransactionsBasic and/or Detail"
    return None


PLAIN_WORDS: dict[str, str] = {
    "ReadAccountsBasic": "Your account names and types",
    "ReadAccountsDetail": "Your account names, types and account numbers",
    "ReadBalances": "Your account balances",
    "ReadTransactionsBasic": "Your transactions (amounts and dates)",
    "ReadTransactionsDetail": "Your transactions with merchant and payment details",
    "ReadTransactionsCredits": "Money coming into your accounts",
    "ReadTransactionsDebits": "Money going out of your accounts",
    "ReadPAN": "Your full card numbers",
}


def describe(permission: str) -> str:
    """A customer-facing description of an OBIE permission."""
    return PLAIN_WORDS.get(permission, permission)


# the account kinds (OBIE AccountSubType) as the approval page names them (msgids)
KINDS: dict[str, str] = {
    "CurrentAccount": "current account",
    "Savings": "savings account",
    "CreditCard": "credit card",
}

_BALANCES = "Balances, with only the last 4 digits of each account number"
_TRANSACTIONS = "Transactions: date, amount, merchant name and spending category"
_SUPPORT = (
    "Chats with our staff: what you write and their answers, with card and account numbers masked"
)
_CARDS = "Fraud alerts and card freezes: the card's last 4 digits, the merchant and the amount"


def platform_sees(permissions: Sequence[str], scopes: frozenset[str]) -> list[str]:
    """What the chat platform sees of what the broker receives (the design's minimized views):
    English msgids, in the order the page lists them."""
    granted = set(permissions)
    lines = ["Account names and types"]
    if "ReadBalances" in granted:
        lines.append(_BALANCES)
    if granted & (_TX_SHAPE | _TX_DIRECTION):
        lines.append(_TRANSACTIONS)
    if "cards" in scopes:
        lines.append(_CARDS)
    if "support" in scopes:
        lines.append(_SUPPORT)
    return lines
