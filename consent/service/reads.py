"""Reads for the platform: every check, then the bank call, then minimization and the audit.

Order for each consent: purpose → consent status/expiry/scope/bank policy → rate limit → open the
sealed token → call the bank (refreshing the token once on 401) → minimize → audit (allowed or
denied, with the fields returned).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import BankCallError, BankClient, BankRefusedError
from consent.domain.consent import ConsentStatus, can_read
from consent.domain.handles import new_handle
from consent.domain.minimize import balance_view
from consent.domain.policy import allowed_fields
from consent.domain.purpose import check_purpose
from consent.domain.scopes import Scope
from consent.domain.views import View
from consent.service.broker import Broker
from consent.service.errors import BrokerError
from consent.service.linking import bank_error, to_domain
from consent.store import audit
from consent.store import secrets as sealed
from consent.store.locks import lock_subject
from consent.store.tables import AccountHandle, ConsentRow, PlatformClient, Subject
from consent.vault.envelope import open_sealed, seal


async def require_purpose(
    broker: Broker, client: PlatformClient, subject_id: str | None, purpose: str, action: str
) -> None:
    """Refuse (and log) any purpose but the chat service."""
    decision = check_purpose(purpose, None, broker.contract)
    if decision.allowed:
        return
    if subject_id is not None:
        async with broker.sessions() as session:
            await audit.record(
                session,
                subject_id=subject_id,
                client_id=client.client_id,
                action=action,
                scope=None,
                purpose=purpose or "(none)",
                fields=[],
                outcome="denied",
                reason=decision.reason,
                at=broker.clock(),
            )
            await session.commit()
    raise BrokerError(403, "purpose_not_permitted", "only the chat-service purpose is served")


async def _with_token(
    broker: Broker,
    session: AsyncSession,
    row: ConsentRow,
    call: Callable[[BankClient, str], Awaitable[Any]],
) -> Any:
    key = await broker.data_key(session, row.consent_id)
    token = await sealed.get_secret(session, key, row.consent_id, "access_token") if key else None
    if key is None or token is None:
        raise BrokerError(409, "consent_not_authorized", "this consent holds no usable bank token")
    bank = await broker.bank(row.bank_id)
    try:
        return await call(bank, token)
    except BankRefusedError as e:
        if e.status != 401:
            raise bank_error(e) from e
    except BankCallError as e:
        raise bank_error(e) from e
    refresh = await sealed.get_secret(session, key, row.consent_id, "refresh_token")
    if refresh is None:
        raise BrokerError(409, "consent_not_authorized", "the bank no longer accepts this consent")
    try:
        tokens = await bank.refresh(await broker.credentials(row.bank_id), refresh)
    except BankCallError as e:
        raise BrokerError(
            409, "consent_not_authorized", "the bank no longer accepts this consent"
        ) from e
    await sealed.put_secret(session, key, row.consent_id, "access_token", tokens.access_token)
    if tokens.refresh_token:
        await sealed.put_secret(session, key, row.consent_id, "refresh_token", tokens.refresh_token)
    try:
        return await call(bank, tokens.access_token)
    except BankCallError as e:
        raise bank_error(e) from e


async def handle_for(
    broker: Broker, session: AsyncSession, row: ConsentRow, account_id: str
) -> str:
    """The stable opaque handle of a bank account under a consent (created on first sight).

    The consent's handle map is decrypted once and kept in memory until the consent ends."""
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
    handle = known.get(account_id)
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


async def balances(
    broker: Broker, client: PlatformClient, subject: Subject, purpose: str
) -> list[View]:
    """Balance views of every account under the subject's consents that allow balances."""
    await require_purpose(broker, client, subject.subject_id, purpose, "read.balances")
    now = broker.clock()
    views: list[View] = []
    async with broker.sessions() as session:
        await lock_subject(session, subject.subject_id)  # one read per subject at a time
        rows = (
            await session.exec(
                select(ConsentRow).where(
                    ConsentRow.subject_id == subject.subject_id,
                    ConsentRow.status == ConsentStatus.AUTHORIZED.value,
                )
            )
        ).all()
        for row in rows:
            policy = broker.policy(row.bank_id)
            decision = can_read(to_domain(row), Scope.BALANCES, policy, now)
            if not decision.allowed:
                if Scope.BALANCES.value in row.scopes.split(","):
                    await audit.record(
                        session,
                        subject_id=subject.subject_id,
                        client_id=client.client_id,
                        action="read.balances",
                        scope="balances",
                        purpose=purpose,
                        fields=[],
                        outcome="denied",
                        reason=decision.reason,
                        at=now,
                    )
                continue
            fields = allowed_fields("balance", policy, broker.contract)

            async def fetch(
                bank: BankClient, token: str
            ) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
                accounts = (await bank.read(token, "/accounts"))["Data"]["Account"]
                pages = await bank.gather_reads(
                    token, [f"/accounts/{a['AccountId']}/balances" for a in accounts]
                )
                return [(a, p["Data"]["Balance"]) for a, p in zip(accounts, pages, strict=True)]

            for account, account_balances in await _with_token(broker, session, row, fetch):
                handle = await handle_for(broker, session, row, str(account["AccountId"]))
                views.append(
                    balance_view(
                        account,
                        account_balances,
                        bank_name=policy.display_name,
                        account_handle=handle,
                        fields=fields,
                    )
                )
            await audit.record(
                session,
                subject_id=subject.subject_id,
                client_id=client.client_id,
                action="read.balances",
                scope="balances",
                purpose=purpose,
                fields=sorted(fields),
                outcome="allowed",
                reason="ok",
                at=now,
            )
        await session.commit()
    return views
