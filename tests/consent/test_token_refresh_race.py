"""Two users of one consent's bank token at once after it expired (a chat read and the receipt
worker, a card freeze, a support message; or two broker processes). The bank rotates refresh
tokens and refuses a used one: a second refresh with the same token would be refused, and the
consent wrongly marked as needing re-authorization (the user told to link the bank again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consent.api.keys import BROKER
from consent.app import create_app as create_broker
from consent.banks.client import BankClient
from consent.service.broker import Broker
from consent.service.reads import _with_token
from consent.store import secrets as sealed
from consent.store.tables import ConsentRow
from tests.consent.broker_env import Env, free_port, start, stop


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _accounts(broker: Broker, consent_id: str) -> Any:
    async def call(bank: BankClient, token: str) -> Any:
        return await bank.read(token, "/accounts")

    async with broker.sessions() as session:
        row = await session.get(ConsentRow, consent_id)
        assert row is not None
        result = await _with_token(broker, session, row, call)
        await session.commit()
    return result


async def _status(broker: Broker, consent_id: str) -> str:
    async with broker.sessions() as session:
        row = await session.get(ConsentRow, consent_id)
        assert row is not None
        return str(row.status)


async def test_two_users_of_an_expired_token_in_one_process_refresh_it_once(env: Env) -> None:
    subject = await env.subject()
    consent_id = await env.link(subject)
    broker: Broker = env.broker.app[BROKER]
    env.clock.now += timedelta(minutes=10)  # the bank's 5-minute access token has expired
    results = await asyncio.gather(*(_accounts(broker, consent_id) for _ in range(3)))
    assert all(results)
    assert await _status(broker, consent_id) == "authorized"
    # and the consent still reads afterwards, with the one new refresh token
    env.clock.now += timedelta(minutes=10)
    assert await _accounts(broker, consent_id)


async def test_a_refresh_token_another_process_already_rotated_is_not_a_revocation(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another broker process refreshed first: this one read the refresh token just before, so
    the bank refuses it as used. That is no reason to ask the user to link again: the other
    process's new tokens are in the database."""
    subject = await env.subject()
    consent_id = await env.link(subject)
    first: Broker = env.broker.app[BROKER]
    other = TestClient(
        TestServer(create_broker(env.broker_settings, clock=env.clock), port=free_port())
    )
    await other.start_server()
    try:
        second: Broker = other.app[BROKER]
        key = await _key(second, consent_id)
        async with second.sessions() as session:  # what it read just before the rotation
            stale = {
                field: await sealed.get_secret(session, key, consent_id, field)
                for field in ("access_token", "refresh_token")
            }
        env.clock.now += timedelta(minutes=10)
        assert await _accounts(first, consent_id)  # the first process rotates the tokens
        real = sealed.get_secret

        async def read_before_the_rotation(
            session: Any, key: bytes, consent: str, field: str
        ) -> str | None:
            return stale.pop(field) if field in stale else await real(session, key, consent, field)

        monkeypatch.setattr(sealed, "get_secret", read_before_the_rotation)
        assert await _accounts(second, consent_id)
        assert await _status(first, consent_id) == "authorized"
    finally:
        await other.close()


async def _key(broker: Broker, consent_id: str) -> bytes:
    async with broker.sessions() as session:
        key = await broker.data_key(session, consent_id)
    assert key is not None
    return key
