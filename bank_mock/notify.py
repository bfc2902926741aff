"""The seam between what happens at a bank and the events it pushes to its clients.

Views that change a consent or raise an alert call the :class:`EventSink` in
``app[EVENTS]``; the fraud/events package installs the real one (signed SETs, delivered with
retries). Until then a :class:`NullSink` records nothing, so the bank still works alone.
"""

from __future__ import annotations

from typing import Any, Protocol

from bank_mock.models import Consent, FraudAlert, Transaction
from bank_mock.state import BankState


class EventSink(Protocol):
    def consent_revoked(self, bank: BankState, consent: Consent) -> None:
        """The customer revoked ``consent`` at the bank: tell its client."""

    def consent_updated(self, bank: BankState, consent: Consent) -> None:
        """``consent`` changed (e.g. authorised): OBIE resource-update to its client."""

    def fraud_alert(self, bank: BankState, alert: FraudAlert, tx: Transaction) -> None:
        """The fraud engine raised ``alert``: tell every client with a consent on the account."""

    def support_event(self, bank: BankState, consent: Consent, payload: dict[str, Any]) -> None:
        """Something happened in a support conversation under ``consent`` (an agent joined,
        wrote, is typing, left): tell the consent's client."""

    def transactions_changed(self, bank: BankState, account_id: str, *, status_only: bool) -> None:
        """A card payment was booked on ``account_id`` (OBIE resource-update), or a pending one
        booked or was reversed (``status_only``: the bank's own transaction event)."""


class NullSink:
    """Pushes nothing (used until the event publisher is set up, and in some unit tests)."""

    def consent_revoked(self, bank: BankState, consent: Consent) -> None:
        return None

    def consent_updated(self, bank: BankState, consent: Consent) -> None:
        return None

    def fraud_alert(self, bank: BankState, alert: FraudAlert, tx: Transaction) -> None:
        return None

    def support_event(self, bank: BankState, consent: Consent, payload: dict[str, Any]) -> None:
        return None

    def transactions_changed(self, bank: BankState, account_id: str, *, status_only: bool) -> None:
        return None
