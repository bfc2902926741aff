"""What a user can let the platform do, and how it maps to OBIE permissions and OAuth scopes."""

from __future__ import annotations

import enum
from collections.abc import Iterable


class Scope(enum.StrEnum):
    BALANCES = "balances"
    TRANSACTIONS = "transactions"
    FRAUD_ALERTS = "fraud_alerts"
    CARD_CONTROLS = "card_controls"
    SUPPORT = "support"  # talk to a person at the bank (the bank's OAuth scope ``support``)


_PERMISSIONS: dict[Scope, tuple[str, ...]] = {
    # Detail, so the broker can show the last four digits; it never passes the number on
    Scope.BALANCES: ("ReadAccountsDetail", "ReadBalances"),
    Scope.TRANSACTIONS: (
        "ReadAccountsBasic",
        "ReadTransactionsBasic",
        "ReadTransactionsDetail",
        "ReadTransactionsCredits",
        "ReadTransactionsDebits",
    ),
    Scope.FRAUD_ALERTS: ("ReadAccountsBasic",),
    Scope.CARD_CONTROLS: ("ReadAccountsBasic",),
    # OBIE has no permission for a conversation: the bank's extension OAuth scope ``support``
    # grants it (see oauth_scopes); the consent itself only names the accounts
    Scope.SUPPORT: ("ReadAccountsBasic",),
}


def obie_permissions(scopes: Iterable[Scope]) -> list[str]:
    """The OBIE permissions to ask the bank for (sorted, no duplicates)."""
    return sorted({p for s in scopes for p in _PERMISSIONS[s]})


def oauth_scopes(scopes: Iterable[Scope]) -> list[str]:
    """The OAuth scopes of the authorization request: card controls need ``cards``, a chat
    with the bank's staff ``support`` (both bank extensions outside OBIE)."""
    wanted = set(scopes)
    return [
        "openid",
        "accounts",
        *(["cards"] if Scope.CARD_CONTROLS in wanted else []),
        *(["support"] if Scope.SUPPORT in wanted else []),
    ]


def scopes_from_text(text: str) -> frozenset[Scope]:
    """Scopes as stored (comma-separated values); the one place the stored form is read."""
    return frozenset(Scope(s) for s in text.split(",") if s)


def scopes_to_text(scopes: Iterable[Scope]) -> str:
    """The stored form of ``scopes``: their values, sorted, comma-separated."""
    return ",".join(sorted(Scope(s).value for s in scopes))


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from their names; ``ValueError`` naming the first unknown one, or when empty."""
    out: set[Scope] = set()
    for value in values:
        try:
            out.add(Scope(value))
        except ValueError as e:
            raise ValueError(f"unknown scope {value[:40]!r}") from e
    if not out:
        raise ValueError("at least one scope is required")
    return frozenset(out)
