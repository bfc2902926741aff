"""Data-loss prevention for the bank's support chat: card numbers, IBANs and account numbers are
masked before a message leaves the bank (and in what the customer sends, before an agent sees it).

What counts:

- a **card number**: 13 to 19 digits, optionally grouped by single spaces or dashes, that pass the
  Luhn check;
- an **IBAN**: two letters, two check digits and 11 to 30 letters or digits (spaces allowed
  between groups) that pass the ISO 13616 mod-97 check;
- an **account number**: any other run of 8 to 12 digits with no separators (UK account numbers
  are 8, US ones 8 to 12), and a UK sort code and account number written together
  (``12-34-56 12345678``).

A masked number keeps only its last four characters (``•••• 1234``), the PCI DSS display rule.
Amounts (``1,250.00``), dates and phone numbers written with separators are left alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bank_mock.identifiers import iban_valid, luhn_valid

CARD, IBAN, ACCOUNT = "card_number", "iban", "account_number"
DOTS = "••••"

# a digit run of 13-19 digits grouped by single spaces/dashes, not touching other digits
_CARD = re.compile(r"(?<![\dA-Za-z])\d(?:[ -]?\d){12,18}(?![\dA-Za-z])")
_IBAN = re.compile(r"(?<![A-Za-z\d])[A-Z]{2}\d{2}(?: ?[A-Z\d]){11,30}")
_SORT_AND_ACCOUNT = re.compile(r"(?<!\d)\d{2}-\d{2}-\d{2}[ ]?\d{8}(?!\d)")
_ACCOUNT = re.compile(r"(?<![\d.,])\d{8,12}(?![\d]|[.,]\d)")


@dataclass(frozen=True, slots=True)
class Masked:
    """The text as it may leave the bank, and what was masked in it (kinds, in order found)."""

    text: str
    found: tuple[str, ...]

    @property
    def changed(self) -> bool:
        return bool(self.found)


def _tail(raw: str) -> str:
    plain = re.sub(r"[ -]", "", raw)
    return f"{DOTS} {plain[-4:]}"


def mask(text: str) -> Masked:
    """``text`` with every card number, IBAN and account number masked to its last four."""
    found: list[str] = []

    def card(m: re.Match[str]) -> str:
        if luhn_valid(re.sub(r"[ -]", "", m.group(0))):
            found.append(CARD)
            return _tail(m.group(0))
        return m.group(0)

    def iban(m: re.Match[str]) -> str:
        raw = m.group(0)
        for end in range(len(raw), 14, -1):  # the longest valid IBAN the match starts with
            head = raw[:end]
            if head[-1] != " " and iban_valid(head):
                found.append(IBAN)
                return _tail(head) + raw[end:]
        return raw

    def account(m: re.Match[str]) -> str:
        found.append(ACCOUNT)
        return _tail(m.group(0))

    out = _IBAN.sub(iban, text)
    out = _CARD.sub(card, out)
    out = _SORT_AND_ACCOUNT.sub(account, out)
    out = _ACCOUNT.sub(account, out)
    return Masked(out, tuple(found))


def has_card_number(text: str) -> bool:
    """Does ``text`` hold a full (Luhn-valid, 13-19 digit) card number?"""
    return any(luhn_valid(re.sub(r"[ -]", "", m.group(0))) for m in _CARD.finditer(text))
