"""Reads for the platform: every check, then the bank call, then minimization and the audit.

The request was authorized before (credential, ownership, purpose, the subject's rate limit:
consent.service.authz). Then for each consent: status/expiry/scope/bank policy → open the sealed
token → call the bank (refreshing the token once on 401) → minimize → audit (allowed or denied,
with the fields returned).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import String, Table, and_, bindparam, type_coerce
from sqlalchemy import select as core_select
from sqlalchemy.engine import Row
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import (
    BankCallError,
    BankClient,
    BankRefusedError,
    Credentials,
    TokenSet,
)
from consent.domain import consent as rules
from consent.domain.consent import ConsentStatus, can_read
from consent.domain.handles import new_handle
from consent.domain.minimize import balance_view
from consent.domain.policy import allowed_fields
from consent.domain.scopes import Scope, scopes_from_text
from consent.domain.views import View
from consent.service.broker import Broker
from consent.service.errors import BrokerError
from consent.service.linking import bank_error
from consent.service.reauth import needs_reauthorization
from consent.service.registration import with_registration
from consent.store import secrets as sealed
from consent.store.audit_writer import PendingEntry
from consent.store.fastread import utc
from consent.store.tables import (
    AccountHandle,
    ConsentKey,
    ConsentRow,
    PlatformClient,
    SealedSecret,
    Subject,
)
from consent.vault.envelope import open_sealed, seal
from consent.vault.keyring import VaultError

log = logging.getLogger(__name__)


class ConsentRef(Protocol):
    """What the token and handle helpers need to know about a consent."""

    @property
    def consent_id(self) -> str: ...

    @property
    def bank_id(self) -> str: ...


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


async def _refreshed_token(
    broker: Broker, session: AsyncSession, bank: BankClient, row: ConsentRef, key: bytes
) -> str:
    """A new access token from the consent's refresh token, sealed in ``session`` (the caller
    commits)."""
    gone = BrokerError(409, "consent_not_authorized", "the bank no longer accepts this consent")
    refresh = await sealed.get_secret(session, key, row.consent_id, "refresh_token")
    if refresh is None:
        raise gone

    async def renew(bank: BankClient, cred: Credentials) -> TokenSet:
        return await bank.refresh(cred, refresh)

    try:
        tokens = await with_registration(broker, row.bank_id, renew)
    except BankRefusedError as e:  # invalid_grant: the bank no longer honours this consent
        await needs_reauthorization(broker, row.consent_id)
        raise BrokerError(
            409, "consent_needs_reauthorization", "link this bank again to keep reading it"
        ) from e
    except BankCallError as e:
        raise gone from e
    await sealed.put_secret(session, key, row.consent_id, "access_token", tokens.access_token)
    if tokens.refresh_token:
        await sealed.put_secret(session, key, row.consent_id, "refresh_token", tokens.refresh_token)
    return tokens.access_token


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
    return await _retry(bank, await _refreshed_token(broker, session, bank, row, key), call)


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
        fresh = await _refreshed_token(broker, session, bank, row, key)
        await session.commit()
    return await _retry(bank, fresh, call)


async def _known_handles(broker: Broker, session: AsyncSession, row: ConsentRef) -> dict[str, str]:
    """The consent's handle map (bank account id -> handle), decrypted once and kept in memory
    until the consent ends."""
    known = broker.handles.get(row.consent_id)
    if known is None:
        key = await broker.data_key(session, row.consent_id)
        if key is None:
            raise BrokerError(409, "consent_not_authorized", "this consent has ended")
        rows = (
            await session.exec(
                select(AccountHandle).where(AccountHandle.consent_id == row.consent_id)
            )
        ).all()
        known = {
            open_sealed(
                key, h.account_ref, consent_id=row.consent_id, field="account_id"
            ).decode(): h.handle
            for h in rows
        }
        broker.handles[row.consent_id] = known
    return known


async def handle_for(
    broker: Broker, session: AsyncSession, row: ConsentRef, account_id: str
) -> str:
    """The stable opaque handle of a bank account under a consent (created on first sight, in
    ``session``)."""
    handle = (await _known_handles(broker, session, row)).get(account_id)
    if handle is not None:
        return handle
    key = await broker.data_key(session, row.consent_id)
    if key is None:
        raise BrokerError(409, "consent_not_authorized", "this consent has ended")
    handle = new_handle("acc")
    ref = seal(key, account_id.encode(), consent_id=row.consent_id, field="account_id")
    session.add(AccountHandle(handle=handle, consent_id=row.consent_id, account_ref=ref))
    broker.handles.pop(row.consent_id, None)  # reloaded from the database once this commits
    return handle


async def handles_for(broker: Broker, row: ConsentRef, account_ids: list[str]) -> list[str]:
    """Handles of these accounts; from memory once known, new ones are committed here. Callers
    hold the subject's read lock, so two reads never give one account two handles."""
    known = broker.handles.get(row.consent_id)
    if known is not None and all(a in known for a in account_ids):
        return [known[a] for a in account_ids]
    async with broker.sessions() as session:
        out = [await handle_for(broker, session, row, a) for a in account_ids]
        await session.commit()
    return out


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


async def authorized_consents(broker: Broker, subject_id: str) -> list[AuthorizedConsent]:
    rows: Sequence[Any]
    if broker.reader is not None:  # the query straight to the driver (consent.store.fastread)
        rows = await broker.reader.authorized(subject_id)
    else:
        async with broker.engine.connect() as conn:
            # one statement is one snapshot: no BEGIN / ROLLBACK round trips around it
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            rows = (await conn.execute(_AUTHORIZED, {"subject_id": subject_id})).all()
    return [
        AuthorizedConsent(
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
        for r in (row._mapping if isinstance(row, Row) else row for row in rows)
    ]


def _utc(value: Any) -> datetime:
    parsed = utc(value)
    assert parsed is not None
    return parsed


async def _fetch_balances(
    bank: BankClient, token: str
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    accounts = (await bank.read(token, "/accounts"))["Data"]["Account"]
    pages = await bank.gather_reads(
        token, [f"/accounts/{a['AccountId']}/balances" for a in accounts]
    )
    return [(a, p["Data"]["Balance"]) for a, p in zip(accounts, pages, strict=True)]


def _open_token(broker: Broker, row: AuthorizedConsent) -> tuple[bytes | None, str | None]:
    """The consent's data key and access token (None once shredded); ``VaultError`` if a
    sealed value does not open for this consent."""
    key = token = None
    if row.kek_version is not None and row.wrapped_key is not None:
        key = broker.open_data_key(row.consent_id, row.kek_version, row.wrapped_key)
        if row.sealed_token is not None:
            token = open_sealed(
                key, row.sealed_token, consent_id=row.consent_id, field="access_token"
            ).decode()
    return key, token


def vault_failure(row: ConsentRef) -> dict[str, str]:
    """The typed per-consent error of a balances answer when the vault refuses its data."""
    return {
        "consent_id": row.consent_id,
        "bank_id": row.bank_id,
        "error": "vault_error",
        "detail": "this consent's stored credentials could not be opened; link the bank again",
    }


async def balances(
    broker: Broker, client: PlatformClient, subject: Subject, purpose: str
) -> tuple[list[View], list[dict[str, str]]]:
    """Balance views of every account under the subject's consents that allow balances, and a
    typed error for each consent whose sealed data the vault refused.

    One query reads the consents with their sealed tokens; the access-log entries go to the
    audit writer and the answer waits until they are committed."""
    now = broker.clock()
    views: list[View] = []
    failures: list[dict[str, str]] = []
    entries: list[PendingEntry] = []
    async with broker.read_lock(subject.subject_id):  # one read per subject at a time
        for row in await authorized_consents(broker, subject.subject_id):
            policy = broker.policy(row.bank_id)
            decision = can_read(row.consent, Scope.BALANCES, policy, now)
            if not decision.allowed:
                if Scope.BALANCES in row.consent.scopes:
                    entries.append(
                        pending_entry(
                            client,
                            subject.subject_id,
                            action="read.balances",
                            scope="balances",
                            purpose=purpose,
                            fields=[],
                            outcome="denied",
                            reason=decision.reason,
                            at=now,
                        )
                    )
                continue
            fields = allowed_fields("balance", policy, broker.contract)
            try:
                key, token = _open_token(broker, row)
                pairs = await _bank_call(broker, row, key, token, _fetch_balances)
                handles = await handles_for(broker, row, [str(a["AccountId"]) for a, _ in pairs])
            except VaultError:
                # A sealed value that does not open (moved from another consent's row, or
                # tampered with) spoils this consent only: one line in the log, a typed error
                # in the answer, an access-log entry, and the other consents are still served.
                log.warning("vault refused a sealed value of consent %s", row.consent_id)
                broker.forget_consent(row.consent_id)
                failures.append(vault_failure(row))
                entries.append(
                    pending_entry(
                        client,
                        subject.subject_id,
                        action="read.balances",
                        scope="balances",
                        purpose=purpose,
                        fields=[],
                        outcome="denied",
                        reason="vault_error",
                        at=now,
                    )
                )
                continue
            for (account, account_balances), handle in zip(pairs, handles, strict=True):
                views.append(
                    balance_view(
                        account,
                        account_balances,
                        bank_name=policy.display_name,
                        account_handle=handle,
                        fields=fields,
                    )
                )
            entries.append(
                pending_entry(
                    client,
                    subject.subject_id,
                    action="read.balances",
                    scope="balances",
                    purpose=purpose,
                    fields=fields,
                    outcome="allowed",
                    reason="ok",
                    at=now,
                )
            )
        await broker.audit(entries)  # committed before anything is answered
    return views, failures
