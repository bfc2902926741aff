"""Raw bank records → OBIE v3.1.11 JSON objects, shaped by the consent's permissions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bank_mock.identifiers import mask_pan
from bank_mock.models import Account, AccountKind, Card, Direction, Transaction


def iso(t: datetime) -> str:
    """OBIE ISODateTime with offset, second precision."""
    return t.isoformat(timespec="seconds")


def amount(minor: int, currency: str) -> dict[str, str]:
    """An OBIE ActiveOrHistoricCurrencyAndAmount from minor units (always non-negative)."""
    whole, frac = divmod(abs(minor), 100)
    return {"Amount": f"{whole}.{frac:02d}", "Currency": currency}


def account_json(account: Account, *, detail: bool) -> dict[str, Any]:
    """One ``OBAccount6``; identification only with ReadAccountsDetail."""
    out: dict[str, Any] = {
        "AccountId": account.account_id,
        "Status": "Enabled",
        "Currency": account.currency,
        "AccountType": "Personal",
        "AccountSubType": account.kind.value,
        "Nickname": account.nickname,
        "OpeningDate": f"{account.opened_on.isoformat()}T00:00:00+00:00",
    }
    if detail:
        out["Account"] = [
            {
                "SchemeName": account.scheme,
                "Identification": account.identification,
                "Name": account.holder_name[:70],
            }
        ]
    return out


def balances_json(
    account: Account, booked_minor: int, available_minor: int, at: datetime
) -> list[dict[str, Any]]:
    """``InterimBooked`` and ``InterimAvailable`` (with the credit line for credit cards)."""

    def one(kind: str, minor: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "AccountId": account.account_id,
            "CreditDebitIndicator": "Credit" if minor >= 0 else "Debit",
            "Type": kind,
            "DateTime": iso(at),
            "Amount": amount(minor, account.currency),
        }
        if account.kind == AccountKind.CREDIT_CARD:
            item["CreditLine"] = [
                {
                    "Included": kind == "InterimAvailable",
                    "Type": "Available",
                    "Amount": amount(account.credit_limit_minor, account.currency),
                }
            ]
        return item

    return [one("InterimBooked", booked_minor), one("InterimAvailable", available_minor)]


_SCHEME = {"Visa": "VISA", "Mastercard": "MasterCard"}


def transaction_json(
    tx: Transaction, card: Card | None, *, detail: bool, pan: bool
) -> dict[str, Any]:
    """One ``OBTransaction6``. Detail adds merchant, balance, information and counterparty."""
    out: dict[str, Any] = {
        "AccountId": tx.account_id,
        "TransactionId": tx.transaction_id,
        "TransactionReference": tx.bank_reference,
        "CreditDebitIndicator": tx.direction.value,
        "Status": tx.status.value,
        "TransactionMutability": "Mutable" if tx.status == "Pending" else "Immutable",
        "BookingDateTime": iso(tx.booked_at),
        "ValueDateTime": iso(tx.value_at),
        "Amount": amount(tx.amount_minor, tx.currency),
        "ProprietaryBankTransactionCode": {"Code": tx.transaction_code, "Issuer": "Bank"},
    }
    if tx.instructed_amount_minor is not None and tx.instructed_currency is not None:
        # OBIE types ExchangeRate as a JSON number; it is a rate, never an amount of money
        rate = round(tx.amount_minor / tx.instructed_amount_minor, 6)
        out["CurrencyExchange"] = {
            "SourceCurrency": tx.instructed_currency,
            "TargetCurrency": tx.currency,
            "UnitCurrency": tx.instructed_currency,
            "ExchangeRate": rate,
            "InstructedAmount": amount(tx.instructed_amount_minor, tx.instructed_currency),
        }
    if card is not None:
        out["CardInstrument"] = {
            "CardSchemeName": _SCHEME[card.network],
            "AuthorisationType": "ConsumerDevice" if tx.device_id else "Contactless",
            "Identification": card.pan if pan else mask_pan(card.pan),
        }
    if detail:
        out["TransactionInformation"] = tx.raw_descriptor
        out["Balance"] = {
            "CreditDebitIndicator": "Credit" if tx.balance_after_minor >= 0 else "Debit",
            "Type": "InterimBooked",
            "Amount": amount(tx.balance_after_minor, tx.currency),
        }
        if tx.merchant_name:
            merchant: dict[str, str] = {"MerchantName": tx.merchant_name}
            if tx.mcc:
                merchant["MerchantCategoryCode"] = tx.mcc
            out["MerchantDetails"] = merchant
        if tx.counterparty_account:
            side = "CreditorAccount" if tx.direction == Direction.DEBIT else "DebtorAccount"
            out[side] = {
                "SchemeName": "UK.OBIE.SortCodeAccountNumber",
                "Identification": tx.counterparty_account,
            }
    return out
