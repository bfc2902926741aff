"""Account handles under a consent: stable opaque handles for bank account ids (sealed in the
database, kept in memory until the consent ends) and the consent's token refresh."""

from __future__ import annotations

import asyncio
from typing import Protocol

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import (
    BankCallError,
    BankClient,
    BankRefusedError,
    Credentials,
    TokenSet,
)
from consent.domain.handles import new_handle
from consent.service.broker import Broker
from consent.service.errors import BrokerError
from consent.service.reauth import needs_reauthorization
from consent.service.registration import with_registration
from consent.store import secrets as sealed
from consent.store.locks import lock_across_processes
from consent.store.tables import AccountHandle
from consent.vault.envelope import open_sealed, seal


class ConsentRef(Protocol):
    """What the token and handle helpers need to know about a consent."""

    @property
    def consent_id(self) -> str: ...

    @property
    def bank_id(self) -> str: ...


# how long a refused refresh waits for another process's rotated tokens to be committed
ROTATED_ELSEWHERE_WAIT_S = (0.05, 0.1, 0.2, 0.4)


async def refreshed_token(
    broker: Broker, session: AsyncSession, bank: BankClient, row: ConsentRef, key: bytes
) -> str:
    """A new access token from the consent's refresh token, sealed in ``session`` (the caller
    commits). The bank rotates refresh tokens and refuses a used one, so one refresh per consent
    runs at a time in this process and the others wait for its token; a refusal is first checked
    against the tokens another process may have just rotated before the consent is marked as
    needing re-authorization."""
    pending = broker.refreshing.get(row.consent_id)
    if pending is not None:
        return await asyncio.shield(pending)
    done: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    broker.refreshing[row.consent_id] = done
    try:
        token = await _refresh(broker, session, bank, row, key)
    except BaseException as e:
        done.set_exception(
            e
            if isinstance(e, Exception)
            else BrokerError(503, "bank_unavailable", "the token refresh was interrupted")
        )
        done.exception()  # the waiters (if any) get it; nobody else has to
        raise
    else:
        done.set_result(token)
        return token
    finally:
        broker.refreshing.pop(row.consent_id, None)


async def _rotated_elsewhere(broker: Broker, key: bytes, consent_id: str, spent: str) -> str | None:
    """The access token another process stored with a new refresh token, once committed."""
    for wait in ROTATED_ELSEWHERE_WAIT_S:
        async with broker.sessions() as fresh:
            current = await sealed.get_secret(fresh, key, consent_id, "refresh_token")
            if current is not None and current != spent:
                return await sealed.get_secret(fresh, key, consent_id, "access_token")
        await asyncio.sleep(wait)
    return None


async def _refresh(
    broker: Broker, session: AsyncSession, bank: BankClient, row: ConsentRef, key: bytes
) -> str:
    gone = BrokerError(409, "consent_not_authorized", "the bank no longer accepts this consent")
    refresh = await sealed.get_secret(session, key, row.consent_id, "refresh_token")
    if refresh is None:
        raise gone

    async def renew(bank: BankClient, cred: Credentials) -> TokenSet:
        return await bank.refresh(cred, refresh)

    try:
        tokens = await with_registration(broker, row.bank_id, renew)
    except BankRefusedError as e:  # invalid_grant: used elsewhere, or no longer honoured
        rotated = await _rotated_elsewhere(broker, key, row.consent_id, refresh)
        if rotated is not None:
            return rotated
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


async def known_handles(broker: Broker, session: AsyncSession, row: ConsentRef) -> dict[str, str]:
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
    handle = (await known_handles(broker, session, row)).get(account_id)
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
        # another broker process may be creating this consent's handles right now: wait for it
        # and read what it made, so an account never gets two handles
        if await lock_across_processes(session, f"handles:{row.consent_id}"):
            broker.handles.pop(row.consent_id, None)
        out = [await handle_for(broker, session, row, a) for a in account_ids]
        await session.commit()
    return out
