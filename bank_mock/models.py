"""The raw records a bank holds. Everything here is bank-internal: the platform must never see
most of these fields (see DESIGN.md, "What the platform may see").

Money is integer minor units; times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime


class AccountKind(enum.StrEnum):
    """OBIE AccountSubType values the mock banks issue."""

    CURRENT = "CurrentAccount"
    SAVINGS = "Savings"
    CREDIT_CARD = "CreditCard"


class Direction(enum.StrEnum):
    """OBIE CreditDebitIndicator."""

    CREDIT = "Credit"
    DEBIT = "Debit"


class TxStatus(enum.StrEnum):
    BOOKED = "Booked"
    PENDING = "Pending"


class CardStatus(enum.StrEnum):
    ACTIVE = "Active"
    FROZEN = "Frozen"


class ConsentStatus(enum.StrEnum):
    """OBIE account-access-consent status (v3.1.11)."""

    AWAITING_AUTHORISATION = "AwaitingAuthorisation"
    AUTHORISED = "Authorised"
    REJECTED = "Rejected"
    REVOKED = "Revoked"


@dataclass(frozen=True, slots=True)
class BankProfile:
    """Static description of one simulated bank."""

    bank_id: str  # url-safe, e.g. "northwind"
    name: str  # display name, e.g. "Northwind Bank"
    country: str  # ISO 3166 alpha-2
    currency: str  # ISO 4217 of most accounts
    scheme: str  # OBIE SchemeName used for account identification
    locale: str  # Babel/Faker locale for generated people, e.g. "en_GB"
    timezone: str  # IANA zone of the bank's customers


@dataclass(slots=True)
class Customer:
    customer_id: str
    bank_id: str
    username: str  # test credential shown by `chatbank up`
    password: str  # test credential (mock bank only; never a real secret)
    full_name: str
    address: str
    date_of_birth: date
    email: str
    phone: str
    account_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Card:
    card_id: str
    account_id: str
    pan: str  # full 16-digit, Luhn-valid; never leaves the bank unmasked without ReadPAN
    network: str  # "Visa" | "Mastercard"
    expiry: str  # "MM/YY"
    status: CardStatus = CardStatus.ACTIVE


@dataclass(slots=True)
class Account:
    account_id: str  # the bank's own AccountId
    bank_id: str
    customer_id: str
    kind: AccountKind
    nickname: str
    currency: str
    scheme: str  # OBIE SchemeName, e.g. "UK.OBIE.SortCodeAccountNumber"
    identification: str  # sort code + account number, routing + account number, or IBAN
    account_number: str
    sort_code: str | None  # UK sort code, or US routing number, or None
    iban: str | None
    holder_name: str
    opened_on: date
    opening_balance_minor: int  # balance before the first generated transaction
    credit_limit_minor: int = 0  # credit cards only
    card_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Transaction:
    transaction_id: str
    account_id: str
    booked_at: datetime  # BookingDateTime (UTC)
    value_at: datetime  # ValueDateTime (UTC)
    amount_minor: int  # always positive; the direction says which way
    currency: str
    direction: Direction
    status: TxStatus
    merchant_name: str | None  # clean display name ("Tesco"); None for transfers
    raw_descriptor: str  # "TESCO STORES 2345 LONDON GB"
    mcc: str | None  # ISO 18245 merchant category code
    category: str  # spending category derived from MCC or kind ("groceries", "salary", ...)
    transaction_code: str  # OBIE ProprietaryBankTransactionCode-ish, e.g. "CardPayment"
    card_id: str | None
    counterparty_account: str | None  # for transfers: the other side's account identification
    country: str  # ISO 3166 alpha-2 where it happened
    latitude: float | None  # geolocation: raw, never for the platform
    longitude: float | None
    terminal_id: str | None
    device_id: str | None
    ip_address: str | None
    bank_reference: str
    balance_after_minor: int  # running booked balance after this transaction
    instructed_amount_minor: int | None = None  # foreign-currency original, if any
    instructed_currency: str | None = None
    risk_score: int = 0  # 0..100, internal


@dataclass(slots=True)
class Consent:
    """An OBIE account-access-consent plus what the bank needs to enforce it."""

    consent_id: str
    bank_id: str
    client_id: str
    permissions: list[str]
    status: ConsentStatus
    created_at: datetime
    status_updated_at: datetime
    expires_at: datetime | None
    transaction_from: datetime | None
    transaction_to: datetime | None
    customer_id: str | None = None  # set when the customer authorises
    account_ids: list[str] = field(default_factory=list)  # the accounts the customer picked
    scopes: list[str] = field(default_factory=list)  # OAuth scopes granted ("accounts", "cards")


@dataclass(slots=True)
class Client:
    """A third party registered at a bank (dynamic client registration, RFC 7591 subset)."""

    client_id: str
    bank_id: str
    client_secret_hash: str  # sha256 hex of the secret; the secret is shown once
    client_name: str
    redirect_uris: list[str]
    event_notification_url: str | None  # where SETs are POSTed


@dataclass(slots=True)
class FraudAlert:
    """A fraud alert the bank's engine raised; pushed to clients as a SET."""

    alert_id: str
    bank_id: str
    account_id: str
    transaction_id: str
    card_id: str | None
    rule_ids: list[str]
    # reason category: "unusual_amount" | "unusual_country" | "rapid_repeats" | "card_testing"
    reason: str
    risk_score: int
    raised_at: datetime
    resolution: str | None = None  # None | "Genuine" | "Fraud"
