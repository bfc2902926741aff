"""What the customer does to a consent at the bank: authorise, reject, revoke."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from bank_mock.auth.grants import GrantStore
from bank_mock.errors import BankError
from bank_mock.models import Consent, ConsentStatus, Customer
from bank_mock.notify import EventSink
from bank_mock.state import BankState

ALLOWED_SCOPES = frozenset({"openid", "accounts", "cards", "support"})


def authorise(
    bank: BankState,
    consent: Consent,
    customer: Customer,
    account_ids: Sequence[str],
    scopes: frozenset[str],
    now: datetime,
    events: EventSink,
) -> None:
    """The customer approves ``consent`` for some of their own accounts."""
    if consent.status != ConsentStatus.AWAITING_AUTHORISATION:
        raise BankError(
            400, f"Consent is {consent.status.value}", code="UK.OBIE.Resource.InvalidConsentStatus"
        )
    if consent.expires_at is not None and consent.expires_at <= now:
        raise BankError(400, "Consent has expired", code="UK.OBIE.Resource.InvalidConsentStatus")
    chosen = list(dict.fromkeys(account_ids))
    if not chosen:
        raise BankError(400, "Choose at least one account", path="account_ids")
    foreign = [a for a in chosen if a not in customer.account_ids]
    if foreign:
        raise BankError(400, "Unknown account", path="account_ids")
    consent.status = ConsentStatus.AUTHORISED
    consent.status_updated_at = now
    consent.customer_id = customer.customer_id
    consent.account_ids = chosen
    bank.index_consent(consent)
    consent.scopes = sorted(scopes & ALLOWED_SCOPES - {"openid"})
    bank.keep("consent", consent.consent_id, consent)
    events.consent_updated(bank, consent)


def reject(consent: Consent, now: datetime) -> None:
    """The customer declines ``consent`` on the approval page."""
    if consent.status == ConsentStatus.AWAITING_AUTHORISATION:
        consent.status = ConsentStatus.REJECTED
        consent.status_updated_at = now


def revoke_by_customer(
    bank: BankState, consent: Consent, now: datetime, events: EventSink, grants: GrantStore
) -> bool:
    """The customer revokes an authorised consent at the bank: its tokens die and its client is
    told. True if it changed."""
    if consent.status != ConsentStatus.AUTHORISED:
        return False
    consent.status = ConsentStatus.REVOKED
    consent.status_updated_at = now
    bank.keep("consent", consent.consent_id, consent)
    grants.revoke_consent(consent.consent_id)
    events.consent_revoked(bank, consent)
    return True
