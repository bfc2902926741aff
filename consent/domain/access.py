"""One authorization decision for every platform action (pure: no I/O, ``now`` is passed in).

Order: credential → ownership of every resource the request names (another client's looks
exactly like a missing one) → purpose (and the bank's forbidden purposes) → for a new consent,
what the bank allows (scopes, duration) → for an action under a consent, its status, expiry,
scopes and the bank's policy. The rate limits come after, and only for requests allowed here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from consent.domain import decisions
from consent.domain.consent import Consent, can_act
from consent.domain.decisions import Decision
from consent.domain.policy import MAX_DURATION_DAYS, BankPolicy, PlatformContract
from consent.domain.purpose import check_purpose
from consent.domain.scopes import Scope


class Action(enum.StrEnum):
    """Every platform action; the value is what the access log calls it."""

    BANKS_LIST = "banks.list"
    SUBJECT_CREATE = "subject.create"
    CONSENT_CREATE = "consent.create"
    CONSENT_LIST = "consent.list"
    CONSENT_REVOKE = "consent.revoke"
    READ_BALANCES = "read.balances"
    READ_TRANSACTIONS = "read.transactions"
    READ_ACCOUNTS = "read.accounts"
    READ_SPENDING = "read.spending"
    READ_INSIGHTS = "read.insights"
    READ_CARDS = "read.cards"
    CARD_FREEZE = "card.freeze"
    CARD_UNFREEZE = "card.unfreeze"
    ALERT_ANSWER = "alert.answer"
    SUPPORT_SEND = "support.send"
    SUPPORT_RATE = "support.rate"
    SUPPORT_CLOSE = "support.close"
    ACCESS_LOG_READ = "access_log.read"
    SUBJECT_EXPORT = "subject.export"
    SUBJECT_DELETE = "subject.delete"
    RECEIPTS_READ = "receipts.read"
    RECEIPTS_SET = "receipts.set"
    QUIET_HOURS_SET = "receipts.quiet_hours"


# reads spend the subject's budget (only once they are allowed)
# (card actions too: each is a bank call a human makes at a human's pace)
READS = frozenset(
    {
        Action.READ_BALANCES,
        Action.READ_TRANSACTIONS,
        Action.READ_ACCOUNTS,
        Action.READ_SPENDING,
        Action.READ_INSIGHTS,
        Action.READ_CARDS,
        Action.CARD_FREEZE,
        Action.CARD_UNFREEZE,
        Action.SUPPORT_SEND,
    }
)
# actions that go to the bank under one consent: it must be authorized, unexpired, in scope
# (receipts are the transactions view pushed: turning them on for an account needs the same)
UNDER_CONSENT = frozenset(
    {
        Action.READ_TRANSACTIONS,
        Action.ALERT_ANSWER,
        Action.SUPPORT_SEND,
        Action.SUPPORT_RATE,
        Action.SUPPORT_CLOSE,
        Action.RECEIPTS_SET,
    }
)


@dataclass(frozen=True, slots=True)
class Owned:
    """A resource named by the request: the client that owns it (None: it does not exist) and
    whether it sits under the subject named in the same request."""

    owner: str | None
    under_subject: bool = True


@dataclass(frozen=True, slots=True)
class AccessRequest:
    action: Action
    client_id: str | None  # None: no credential, or a wrong one
    purpose: str
    resources: tuple[Owned, ...] = ()
    consent: Consent | None = None
    # what the action needs from its consent, or (consent.create) asks the bank for
    scopes: frozenset[Scope] = frozenset()
    policy: BankPolicy | None = None
    duration_days: int | None = None


def decide(req: AccessRequest, contract: PlatformContract, now: datetime) -> Decision:
    """May this platform request go ahead? The reason says why not."""
    if req.client_id is None:
        return Decision.deny(decisions.UNAUTHENTICATED)
    for resource in req.resources:
        if resource.owner is None:
            return Decision.deny(decisions.UNKNOWN_RESOURCE)
        if resource.owner != req.client_id:
            return Decision.deny(decisions.OTHER_CLIENTS_RESOURCE)
        if not resource.under_subject:
            return Decision.deny(decisions.UNKNOWN_RESOURCE)
    purpose = check_purpose(req.purpose, req.policy, contract)
    if not purpose.allowed:
        return purpose
    if req.action is Action.CONSENT_CREATE and req.policy is not None:
        return may_grant(req.scopes, req.duration_days, req.policy, contract)
    if req.action in UNDER_CONSENT:
        if req.consent is None:
            return Decision.deny(decisions.UNKNOWN_RESOURCE)
        if req.policy is None:  # the bank no longer has a policy: it shares nothing
            return Decision.deny(decisions.SCOPE_NOT_ALLOWED_BY_BANK)
        return can_act(req.consent, req.scopes, req.policy, now)
    return Decision.allow()


def may_grant(
    scopes: frozenset[Scope], days: int | None, policy: BankPolicy, contract: PlatformContract
) -> Decision:
    """Can a consent for ``scopes`` (and ``days``, if asked) be created at this bank?"""
    if not scopes <= policy.allowed_scopes & contract.allowed_scopes:
        return Decision.deny(decisions.SCOPE_NOT_ALLOWED_BY_BANK)
    if days is not None and days > min(policy.max_duration_days, MAX_DURATION_DAYS):
        return Decision.deny(decisions.DURATION_NOT_ALLOWED_BY_BANK)
    return Decision.allow()
