"""Reads for the platform: every check, then the bank call, then minimization and the audit.

The request was authorized before (credential, ownership, purpose, the subject's rate limit:
consent.service.authz). Then for each consent: status/expiry/scope/bank policy → open the sealed
token → call the bank (refreshing the token once on 401) → minimize → audit (allowed or denied,
with the fields returned).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, Table, and_, bindparam, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.engine import Row
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import BankCallError, BankClient, BankRefusedError
from consent.domain import consent as rules
from consent.domain import decisions
from consent.domain.consent import ConsentStatus, can_read
from consent.domain.decisions import Decision
from consent.domain.policy import BankPolicy
from consent.domain.scopes import Scope, scopes_from_text
from consent.domain.views import View
from consent.service.account_handles import ConsentRef as ConsentRef
from consent.service.account_handles import handle_for as handle_for
from consent.service.account_handles import handles_for as handles_for
from consent.service.account_handles import refreshed_token
from consent.service.balance_answer import consent_balances
from consent.service.broker import Broker
from consent.service.deadline import DEFAULT_MS, Deadline
from consent.service.errors import BrokerError
from consent.service.linking import bank_error
from consent.store import secrets as sealed
from consent.store.audit_writer import PendingEntry
from consent.store.fastread import utc
from consent.store.tables import (
    ConsentKey,
    ConsentRow,
    PlatformClient,
    SealedSecret,
    Subject,
)

_refreshed_token = refreshed_token  # the name the spending view imports


@dataclass(frozen=True, slots=True)
class AuthorizedConsent:
    """An authorized consent as the balances read loads it, with its sealed key and token."""

    consent: rules.Consent
    kek_version: int | None
    wrapped_key: bytes | None
    sealed_token: bytes | None

    @property
    def consent_id(self) -> str:
        return self.consent.consent_id

    @property
    def bank_id(self) -> str:
        return self.consent.bank_id


def pending_entry(
    client: PlatformClient,
    subject_id: str,
    *,
    action: str,
    scope: str | None,
    purpose: str,
    fields: frozenset[str] | list[str],
    outcome: str,
    reason: str,
    at: datetime,
) -> PendingEntry:
    return PendingEntry(
        subject_id=subject_id,
        client_id=client.client_id,
        action=action,
        scope=scope,
        purpose=purpose or "(none)",
        fields=tuple(sorted(fields)),
        outcome=outcome,
        reason=reason,
        at=at,
    )


_UNSET = object()


async def _call_unless_401(
    bank: BankClient, token: str, call: Callable[[BankClient, str], Awaitable[Any]]
) -> Any:
    """``call``'s result, or ``_UNSET`` if the bank refused the token with a 401 (time to
    refresh it); any other bank failure becomes the broker's 502/504."""
    try:
        return await call(bank, token)
    except BankRefusedError as e:
        if e.status != 401:
            raise bank_error(e) from e
    except BankCallError as e:
        raise bank_error(e) from e
    return _UNSET


async def _retry(
    bank: BankClient, token: str, call: Callable[[BankClient, str], Awaitable[Any]]
) -> Any:
    try:
        return await call(bank, token)
    except BankCallError as e:
        raise bank_error(e) from e


async def _with_token(
    broker: Broker,
    session: AsyncSession,
    row: ConsentRow,
    call: Callable[[BankClient, str], Awaitable[Any]],
) -> Any:
    """``call`` with the consent's access token, read in ``session``; on a 401, refresh the
    token once (the new tokens are sealed in ``session``, which the caller commits)."""
    key = await broker.data_key(session, row.consent_id)
    token = await sealed.get_secret(session, key, row.consent_id, "access_token") if key else None
    if key is None or token is None:
        raise BrokerError(409, "consent_not_authorized", "this consent holds no usable bank token")
    bank = await broker.bank(row.bank_id)
    result = await _call_unless_401(bank, token, call)
    if result is not _UNSET:
        return result
    return await _retry(bank, await refreshed_token(broker, session, bank, row, key), call)


async def _bank_call(
    broker: Broker,
    row: ConsentRef,
    key: bytes | None,
    token: str | None,
    call: Callable[[BankClient, str], Awaitable[Any]],
) -> Any:
    """``call`` with the consent's opened access token; on a 401, refresh the token once (the
    new tokens are sealed and committed before the retry)."""
    if key is None or token is None:
        raise BrokerError(409, "consent_not_authorized", "this consent holds no usable bank token")
    bank = await broker.bank(row.bank_id)
    result = await _call_unless_401(bank, token, call)
    if result is not _UNSET:
        return result
    async with broker.sessions() as session:
        fresh = await refreshed_token(broker, session, bank, row, key)
        await session.commit()
    return await _retry(bank, fresh, call)


_CONSENT: Table = ConsentRow.metadata.tables["consent"]
_KEY: Table = ConsentKey.metadata.tables["consent_key"]
_SEALED: Table = SealedSecret.metadata.tables["sealed_secret"]
# The subject's authorized consents with their wrapped data keys and sealed access tokens, in one
# query on one pooled connection (a shredded consent comes back without a key). Built once: the
# compiled form is cached by SQLAlchemy.
_AUTHORIZED = (
    core_select(
        _CONSENT.c.consent_id,
        _CONSENT.c.subject_id,
        _CONSENT.c.client_id,
        _CONSENT.c.bank_id,
        type_coerce(_CONSENT.c.scopes, String).label("scopes"),  # as the fast read has it
        _CONSENT.c.purpose,
        _CONSENT.c.status,
        _CONSENT.c.created_at,
        _CONSENT.c.expires_at,
        _CONSENT.c.authorized_at,
        _CONSENT.c.ended_at,
        _KEY.c.kek_version,
        _KEY.c.wrapped,
        _SEALED.c.blob,
    )
    .select_from(
        _CONSENT.outerjoin(_KEY, _KEY.c.consent_id == _CONSENT.c.consent_id).outerjoin(
            _SEALED,
            and_(
                _SEALED.c.consent_id == _CONSENT.c.consent_id,
                _SEALED.c.field == "access_token",
            ),
        )
    )
    .where(
        _CONSENT.c.subject_id == bindparam("subject_id"),
        _CONSENT.c.status == ConsentStatus.AUTHORIZED.value,
    )
    .order_by(_CONSENT.c.created_at, _CONSENT.c.consent_id)
)


PARSED_ROWS = 10_000  # rows whose parsed form a broker process keeps (one per consent)


async def authorized_consents(broker: Broker, subject_id: str) -> list[AuthorizedConsent]:
    """The subject's authorized consents, read from the database by every request (nothing of a
    consent's state is cached across requests). A row that reads back exactly as last time
    reuses its parsed form (the timestamps, scopes and status parsed once per change)."""
    rows: Sequence[Any]
    if broker.reader is not None:  # the query straight to the driver (consent.store.fastread)
        rows = await broker.reader.authorized(subject_id)
    else:
        async with broker.engine.connect() as conn:
            # one statement is one snapshot: no BEGIN / ROLLBACK round trips around it
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            rows = (await conn.execute(_AUTHORIZED, {"subject_id": subject_id})).all()
    memo = broker.parsed_rows
    out: list[AuthorizedConsent] = []
    for row in rows:
        values = tuple(row)
        seen = memo.get(values[0])  # the consent id is the first column
        if seen is not None and seen[0] == values:
            out.append(seen[1])
            continue
        parsed = _parsed(row._mapping if isinstance(row, Row) else row)
        if len(memo) >= PARSED_ROWS:
            memo.pop(next(iter(memo)))  # the oldest
        memo[values[0]] = (values, parsed)
        out.append(parsed)
    return out


async def readable_consents(
    broker: Broker,
    client: PlatformClient,
    subject_id: str,
    scope: Scope,
    *,
    action: str,
    purpose: str,
    now: datetime,
    denied: list[PendingEntry],
    bank_id: str | None = None,
) -> list[tuple[AuthorizedConsent, BankPolicy]]:
    """The subject's consents that may be read for ``scope`` now (``bank_id``: that bank's
    only), each with its bank's policy. A consent that holds the scope but may not use it now
    (expired, the bank's policy refuses it, a bank no longer in the directory) adds a "denied"
    entry to ``denied`` and is left out; the others still answer."""
    readable: list[tuple[AuthorizedConsent, BankPolicy]] = []
    for row in await authorized_consents(broker, subject_id):
        if bank_id is not None and row.bank_id != bank_id:
            continue
        policy = broker.policies.get(row.bank_id)
        decision = (
            can_read(row.consent, scope, policy, now)
            if policy is not None
            else Decision.deny(decisions.SCOPE_NOT_ALLOWED_BY_BANK)  # no policy: no sharing
        )
        if policy is None or not decision.allowed:
            if scope in row.consent.scopes:
                denied.append(
                    pending_entry(
                        client,
                        subject_id,
                        action=action,
                        scope=scope.value,
                        purpose=purpose,
                        fields=[],
                        outcome="denied",
                        reason=decision.reason,
                        at=now,
                    )
                )
            continue
        readable.append((row, policy))
    return readable


def _parsed(r: Any) -> AuthorizedConsent:
    return AuthorizedConsent(
        rules.Consent(
            consent_id=r["consent_id"],
            subject_id=r["subject_id"],
            client_id=r["client_id"],
            bank_id=r["bank_id"],
            scopes=scopes_from_text(r["scopes"]),
            purpose=r["purpose"],
            status=ConsentStatus(r["status"]),
            created_at=_utc(r["created_at"]),
            expires_at=_utc(r["expires_at"]),
            authorized_at=utc(r["authorized_at"]),
            ended_at=utc(r["ended_at"]),
        ),
        r["kek_version"],
        r["wrapped"],
        r["blob"],
    )


def _utc(value: Any) -> datetime:
    parsed = utc(value)
    assert parsed is not None
    return parsed


def vault_failure(row: ConsentRef) -> dict[str, str]:
    """The typed per-consent error of a balances answer when the vault refuses its data."""
    return {
        "consent_id": row.consent_id,
        "bank_id": row.bank_id,
        "error": "vault_error",
        "detail": "this consent's stored credentials could not be opened; link the bank again",
    }


@dataclass(frozen=True, slots=True)
class BalanceAnswer:
    """The balances answer: account views (fresh or last known, each saying which) and the
    consents whose bank left something out, with the typed reason."""

    views: list[View]
    unavailable: list[dict[str, str]]
    errors: list[dict[str, str]]  # consents whose sealed data the vault refused (vault_error)


async def balances(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    purpose: str,
    deadline: Deadline | None = None,
) -> BalanceAnswer:
    """Balance views of every account under the subject's consents that allow balances,
    answered inside ``deadline``: the consents' banks are called at once, and each account
    carries fresh data, its last known balance, or its consent a typed reason (the request was
    authorized before: consent.service.authz).

    One query reads the consents with their sealed tokens; the access-log entries (what was
    actually served) go to the audit writer and the answer waits until they are committed. An
    answer that could not be ready in time is logged as not served and refused with 504."""
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    now = broker.clock()
    answer = BalanceAnswer([], [], [])
    entries: list[PendingEntry] = []
    async with broker.read_lock(subject.subject_id):  # one read per subject at a time
        readable = await readable_consents(
            broker,
            client,
            subject.subject_id,
            Scope.BALANCES,
            action="read.balances",
            purpose=purpose,
            now=now,
            denied=entries,
        )
        banks = deadline.for_banks()
        if len(readable) == 1:  # (most subjects: one bank) no task and no gather for it
            served = [await consent_balances(broker, *readable[0], banks)]
        else:
            served = await asyncio.gather(
                *(consent_balances(broker, row, policy, banks) for row, policy in readable)
            )
        late = deadline.expired()
        for (row, policy), one in zip(readable, served, strict=True):
            answer.views.extend(one.views)
            if one.missing == "vault_error":
                answer.errors.append(vault_failure(row))
            elif one.missing is not None:
                answer.unavailable.append(
                    {
                        "consent_id": row.consent_id,
                        "bank_id": row.bank_id,
                        "bank_name": policy.display_name,
                        "reason": one.missing,
                    }
                )
            entries.append(
                pending_entry(
                    client,
                    subject.subject_id,
                    action="read.balances",
                    scope="balances",
                    purpose=purpose,
                    fields=one.fields if one.served and not late else [],
                    outcome="allowed" if one.served and not late else "denied",
                    reason="deadline_exceeded" if late else one.audit_reason,
                    at=now,
                )
            )
        await broker.audit(entries)  # committed before anything is answered
    if late:
        raise BrokerError(504, "deadline_exceeded", "the answer was not ready in time")
    return answer
