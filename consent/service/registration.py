"""Healing a registration the bank forgot: a token endpoint answering ``invalid_client`` (the
bank lost its data, or was replaced) leads to one new registration and one retry.

A refused client-credentials token (401 at the consent endpoints) is first just dropped and
fetched again; only the token endpoint's ``invalid_client`` means the registration is gone.
Several broker processes may heal at once: the stored registration is replaced only if it is
still the one that failed, otherwise the one another process stored is used.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from consent.banks.client import BankClient, BankRefusedError, Credentials, UnknownClientError
from consent.service.broker import Broker
from consent.store.tables import BankRegistration

log = logging.getLogger(__name__)
T = TypeVar("T")
Call = Callable[[BankClient, Credentials], Awaitable[T]]


async def forget_registration(broker: Broker, bank_id: str, stale: Credentials) -> None:
    """Delete the stored registration if it is still ``stale`` (so the next use registers)."""
    async with broker.sessions() as session:
        row = await session.get(BankRegistration, bank_id)
        if row is not None and row.client_id == stale.client_id:
            await session.delete(row)
            await session.commit()
            log.warning("bank %s no longer knows the broker's client; registering again", bank_id)


async def with_registration(broker: Broker, bank_id: str, call: Call[T]) -> T:
    """``call(bank, credentials)``; if the bank has forgotten the broker's client, register
    again once and call once more. Other failures pass through."""
    bank = await broker.bank(bank_id)
    cred = await broker.credentials(bank_id)
    try:
        return await call(bank, cred)
    except UnknownClientError:
        pass
    except BankRefusedError as e:
        if e.status != 401:
            raise
        bank.forget_client_token()  # a stale client-credentials token: fetch a new one
        try:
            return await call(bank, cred)
        except UnknownClientError:
            pass
    await forget_registration(broker, bank_id, cred)
    bank.forget_client_token()
    return await call(bank, await broker.credentials(bank_id))
