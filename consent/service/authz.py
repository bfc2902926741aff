"""The one authorization step every platform request passes: look up what the request names,
ask :func:`consent.domain.access.decide`, record a refusal in exactly one log, then the limits.

A refusal concerning a subject the caller owns goes to that subject's access log (which the
user reads). Anything else — no or a wrong credential, a probe of another client's resource or
of one that does not exist, a purpose refused before any subject, a client over its limit —
goes to the operator's security log, and the caller learns nothing about other clients.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import select

from consent.domain import decisions
from consent.domain.access import READS, AccessRequest, Action, Owned, decide
from consent.domain.decisions import Decision
from consent.domain.policy import BankPolicy
from consent.domain.scopes import Scope
from consent.service import platform
from consent.service.broker import Broker
from consent.service.errors import BrokerError
from consent.service.linking import to_domain
from consent.service.reads import pending_entry
from consent.store import security_log
from consent.store.tables import AccountHandle, AlertRow, ConsentRow, PlatformClient, Subject


@dataclass(frozen=True, slots=True)
class Ask:
    """A platform request as the authorization step sees it: who, why, and what it names."""

    action: Action
    method: str
    route: str  # the route template, e.g. /v1/subjects/{subject_id}/balances
    credential: str | None  # the bearer credential, None when absent
    purpose: str
    subject_id: str | None = None
    consent_id: str | None = None
    handle: str | None = None
    alert_id: str | None = None
    bank_id: str | None = None
    scopes: frozenset[Scope] = frozenset()
    duration_days: int | None = None
    log_scope: str | None = None  # the scope named in an access-log entry


@dataclass
class Grant:
    """What an allowed request may use, as loaded while deciding."""

    client: PlatformClient
    subject: Subject | None = None
    consent: ConsentRow | None = None
    handle: AccountHandle | None = None
    alert: AlertRow | None = None
    policy: BankPolicy | None = None
    kinds: list[str] = field(default_factory=list)


_STATUS: dict[str, tuple[int, str, str]] = {
    decisions.UNAUTHENTICATED: (
        401,
        "unauthenticated",
        "send Authorization: Bearer <client_id>.<secret>",
    ),
    decisions.PURPOSE_NOT_PERMITTED: (
        403,
        "purpose_not_permitted",
        "only the chat-service purpose is served",
    ),
    decisions.CONSENT_NOT_AUTHORIZED: (
        403,
        "consent_not_authorized",
        "this consent is not (or no longer) authorized",
    ),
    decisions.CONSENT_EXPIRED: (403, "consent_expired", "this consent has expired"),
    decisions.SCOPE_NOT_CONSENTED: (
        403,
        "scope_not_consented",
        "the user did not consent to this",
    ),
    decisions.SCOPE_NOT_ALLOWED_BY_BANK: (
        403,
        "scope_not_allowed_by_bank",
        "the bank does not share this with chat platforms",
    ),
    decisions.DURATION_NOT_ALLOWED_BY_BANK: (
        400,
        "invalid_duration",
        "the bank does not allow a consent that long",
    ),
}


def refusal(decision: Decision, kind: str = "resource") -> BrokerError:
    """The HTTP error for a refusal; a probe is exactly a missing ``kind``."""
    if decision.is_probe:
        return BrokerError(404, "not_found", f"{kind} not found")
    status, code, detail = _STATUS[decision.reason]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return BrokerError(status, code, detail, headers=headers)


def rate_limited(wait: int) -> BrokerError:
    return BrokerError(
        429,
        "rate_limited",
        f"too many requests; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


async def authorize(broker: Broker, ask: Ask) -> Grant:
    """Decide ``ask``; on a refusal, record it once and raise the typed error. An allowed read
    then spends one of the subject's reads (a refused request never does)."""
    assert broker.limits is not None
    now = broker.clock()
    client = await platform.authenticate(broker, ask.credential) if ask.credential else None
    if client is None:
        await _security(broker, ask, None, decisions.UNAUTHENTICATED)
        raise refusal(Decision.deny(decisions.UNAUTHENTICATED))
    wait = await broker.limits.clients.take(client.client_id, now)
    if wait is not None:
        await _security(broker, ask, client, decisions.CLIENT_RATE_LIMITED)
        raise rate_limited(wait)
    grant, owned = await _load(broker, ask, client)
    consent = to_domain(grant.consent) if grant.consent is not None else None
    policy = grant.policy
    if ask.bank_id is not None:
        policy = grant.policy = broker.policies.get(ask.bank_id)
    decision = decide(
        AccessRequest(
            action=ask.action,
            client_id=client.client_id,
            purpose=ask.purpose,
            resources=tuple(owned),
            consent=consent,
            scopes=ask.scopes,
            policy=policy,
            duration_days=ask.duration_days,
        ),
        broker.contract,
        now,
    )
    if not decision.allowed:
        await _record(broker, ask, grant, decision.reason)
        raise refusal(decision, _failed_kind(grant.kinds, owned, client.client_id))
    if ask.action in READS and grant.subject is not None:
        wait = await broker.limits.subjects.take(grant.subject.subject_id, now)
        if wait is not None:
            await _record(broker, ask, grant, decisions.RATE_LIMITED)
            raise rate_limited(wait)
    return grant


async def _load(broker: Broker, ask: Ask, client: PlatformClient) -> tuple[Grant, list[Owned]]:
    """The resources ``ask`` names, each with its owner, in the order they are checked (their
    kinds in ``grant.kinds``)."""
    grant = Grant(client)
    owned: list[Owned] = []
    if ask.subject_id is not None:
        grant.subject = await platform.find_subject(broker, ask.subject_id[:64])
        grant.kinds.append("subject")
        owned.append(Owned(grant.subject.client_id if grant.subject else None))
    named = [ask.consent_id, ask.handle, ask.alert_id]
    if all(n is None for n in named):
        return grant, owned
    subject_id = grant.subject.subject_id if grant.subject else None
    async with broker.sessions() as session:
        consent_id, kind = ask.consent_id, "consent"
        if ask.handle is not None:
            grant.handle = await session.get(AccountHandle, ask.handle[:40])
            consent_id, kind = (grant.handle.consent_id if grant.handle else None), "account"
        if ask.alert_id is not None:
            # the platform's opaque handle of the alert (the bank's id never leaves the broker)
            found = await session.exec(select(AlertRow).where(AlertRow.handle == ask.alert_id))
            grant.alert = found.first()
            consent_id, kind = (grant.alert.consent_id if grant.alert else None), "alert"
        row = await session.get(ConsentRow, consent_id[:64]) if consent_id else None
    grant.consent = row
    grant.kinds.append(kind)
    owned.append(Owned(row.client_id, row.subject_id == subject_id) if row else Owned(None))
    if row is not None:
        grant.policy = broker.policies.get(row.bank_id)
    return grant, owned


def _failed_kind(kinds: list[str], owned: list[Owned], client_id: str) -> str:
    for kind, resource in zip(kinds, owned, strict=False):
        if resource.owner != client_id or not resource.under_subject:
            return kind
    return "resource"


async def _record(broker: Broker, ask: Ask, grant: Grant, reason: str) -> None:
    """One entry for one refusal: the subject's access log if the caller owns the subject and
    the refusal is no probe; the security log otherwise."""
    subject = grant.subject
    if subject is None or subject.client_id != grant.client.client_id or reason in decisions.PROBES:
        await _security(broker, ask, grant.client, reason)
        return
    await broker.audit(
        [
            pending_entry(
                grant.client,
                subject.subject_id,
                action=ask.action.value,
                scope=ask.log_scope,
                purpose=ask.purpose,
                fields=[],
                outcome="denied",
                reason=reason,
                at=broker.clock(),
            )
        ]
    )


async def _security(broker: Broker, ask: Ask, client: PlatformClient | None, reason: str) -> None:
    await security_log.write(
        broker.sessions,
        security_log.Refusal(
            at=broker.clock(),
            client_id=client.client_id if client else None,
            method=ask.method,
            route=ask.route,
            reason=reason,
        ),
    )
