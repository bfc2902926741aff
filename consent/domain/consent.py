"""A consent and its lifecycle: awaiting authorization → authorized → revoked / expired, or
rejected. Transitions are pure functions returning a new consent."""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from consent.domain import decisions
from consent.domain.decisions import Decision
from consent.domain.policy import MAX_DURATION_DAYS, BankPolicy
from consent.domain.scopes import Scope

DEFAULT_DURATION_DAYS = 90
RENEWAL_NOTICE_DAYS = 7


class ConsentStatus(enum.StrEnum):
    AWAITING_AUTHORIZATION = "awaiting_authorization"
    AUTHORIZED = "authorized"
    REJECTED = "rejected"
    REVOKED = "revoked"
    EXPIRED = "expired"


ENDED = frozenset({ConsentStatus.REJECTED, ConsentStatus.REVOKED, ConsentStatus.EXPIRED})


class InvalidTransitionError(ValueError):
    """The consent cannot go from its status to the one asked for."""


InvalidTransition = InvalidTransitionError  # the name the shared API brief uses


@dataclass(frozen=True, slots=True)
class Consent:
    consent_id: str
    subject_id: str
    client_id: str
    bank_id: str
    scopes: frozenset[Scope]
    purpose: str
    status: ConsentStatus
    created_at: datetime
    expires_at: datetime
    authorized_at: datetime | None = None
    ended_at: datetime | None = None


def _move(
    c: Consent, allowed_from: frozenset[ConsentStatus], to: ConsentStatus, **changes: object
) -> Consent:
    if c.status not in allowed_from:
        raise InvalidTransitionError(f"cannot go from {c.status.value} to {to.value}")
    return replace(c, status=to, **changes)  # type: ignore[arg-type]


def authorize(c: Consent, now: datetime) -> Consent:
    """The user approved at the bank (only while awaiting, and before expiry)."""
    if c.status == ConsentStatus.AWAITING_AUTHORIZATION and is_expired(c, now):
        raise InvalidTransitionError("the consent expired before it was authorized")
    return _move(
        c,
        frozenset({ConsentStatus.AWAITING_AUTHORIZATION}),
        ConsentStatus.AUTHORIZED,
        authorized_at=now,
    )


def reject(c: Consent, now: datetime) -> Consent:
    """The user declined at the bank, or the authorization failed."""
    return _move(
        c, frozenset({ConsentStatus.AWAITING_AUTHORIZATION}), ConsentStatus.REJECTED, ended_at=now
    )


def revoke(c: Consent, now: datetime) -> Consent:
    """The user withdrew consent (in the chat or at the bank)."""
    allowed = frozenset({ConsentStatus.AWAITING_AUTHORIZATION, ConsentStatus.AUTHORIZED})
    return _move(c, allowed, ConsentStatus.REVOKED, ended_at=now)


def expire(c: Consent, now: datetime) -> Consent:
    """The consent reached its end date."""
    if not is_expired(c, now):
        raise InvalidTransitionError("the consent has not reached its expiry")
    allowed = frozenset({ConsentStatus.AWAITING_AUTHORIZATION, ConsentStatus.AUTHORIZED})
    return _move(c, allowed, ConsentStatus.EXPIRED, ended_at=now)


def is_expired(c: Consent, now: datetime) -> bool:
    return now >= c.expires_at


def needs_renewal_notice(c: Consent, now: datetime, days: int = RENEWAL_NOTICE_DAYS) -> bool:
    """True in the last ``days`` before an authorized consent ends."""
    return (
        c.status == ConsentStatus.AUTHORIZED
        and not is_expired(c, now)
        and c.expires_at - now <= timedelta(days=days)
    )


def can_read(c: Consent, scope: Scope, policy: BankPolicy, now: datetime) -> Decision:
    """May the platform read ``scope`` under this consent right now?"""
    return can_act(c, frozenset({scope}), policy, now)


def can_act(c: Consent, scopes: frozenset[Scope], policy: BankPolicy, now: datetime) -> Decision:
    """May the platform act on all of ``scopes`` under this consent right now?"""
    if c.status != ConsentStatus.AUTHORIZED:
        return Decision.deny(decisions.CONSENT_NOT_AUTHORIZED)
    if is_expired(c, now):
        return Decision.deny(decisions.CONSENT_EXPIRED)
    if not scopes <= c.scopes:
        return Decision.deny(decisions.SCOPE_NOT_CONSENTED)
    if not scopes <= policy.allowed_scopes:
        return Decision.deny(decisions.SCOPE_NOT_ALLOWED_BY_BANK)
    return Decision.allow()


def expiry_for(now: datetime, requested_days: int | None, policy: BankPolicy) -> datetime:
    """When a new consent ends: the default 90 days capped by the bank, or what was asked.

    Asking for more than the bank's maximum (never above 365 days) or less than a day is refused.
    """
    cap = min(policy.max_duration_days, MAX_DURATION_DAYS)
    if requested_days is None:
        return now + timedelta(days=min(DEFAULT_DURATION_DAYS, cap))
    if requested_days < 1:
        raise ValueError("duration must be at least one day")
    if requested_days > cap:
        raise ValueError(f"{policy.display_name} allows at most {cap} days")
    return now + timedelta(days=requested_days)
