"""The simulated banks: who they are, where, in which currency, and how accounts are numbered.

Test credentials: every bank has customers ``demo1`` … ``demoN`` (N = ``BANK_CUSTOMERS_PER_BANK``)
whose password is ``pass-<n>`` (``demo1`` / ``pass-1``). They are listed by the sandbox endpoint
``GET /sandbox/banks/{bank_id}/customers`` and printed by ``chatbank up``.
"""

from __future__ import annotations

from bank_mock.models import BankProfile

BANKS: tuple[BankProfile, ...] = (
    BankProfile(
        bank_id="northwind",
        name="Northwind Bank",
        country="GB",
        currency="GBP",
        scheme="UK.OBIE.SortCodeAccountNumber",
        locale="en_GB",
        timezone="Europe/London",
    ),
    BankProfile(
        bank_id="libertas",
        name="Libertas Federal",
        country="US",
        currency="USD",
        scheme="US.RoutingNumberAccountNumber",
        locale="en_US",
        timezone="America/New_York",
    ),
    BankProfile(
        bank_id="wisla",
        name="Bank Wisła",
        country="PL",
        currency="PLN",
        scheme="UK.OBIE.IBAN",
        locale="pl_PL",
        timezone="Europe/Warsaw",
    ),
    BankProfile(
        bank_id="nakheel",
        name="Nakheel Bank",
        country="SA",
        currency="SAR",
        scheme="UK.OBIE.IBAN",
        locale="ar_SA",
        timezone="Asia/Riyadh",
    ),
)

BANKS_BY_ID: dict[str, BankProfile] = {b.bank_id: b for b in BANKS}


def username(index: int) -> str:
    """The test username of a bank's ``index``-th customer (1-based)."""
    return f"demo{index}"


def password(index: int) -> str:
    """The test password of a bank's ``index``-th customer (1-based); a sandbox value."""
    return f"pass-{index}"
