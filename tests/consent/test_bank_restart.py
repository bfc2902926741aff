"""The broker and a bank that restarts: with its data kept nothing changes; a bank that lost its
data is healed with one new registration; a consent whose refresh token the bank refuses is
flagged as needing re-authorization and the platform is told."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from bank_mock.app import create_app as create_bank
from bank_mock.keys import BANKS, GRANTS
from bank_mock.settings import BankSettings
from consent.api.keys import BROKER
from consent.service.reauth import NOTICE
from consent.store.tables import AuditRow, BankRegistration, ConsentRow, OutboxRow
from tests.consent.broker_env import Env, start, stop


async def restart_bank(env: Env, data_dir: str) -> None:
    """Stop the bank and start a new one on the same port with ``data_dir``."""
    port = env.bank.port
    assert port is not None
    await env.bank.close()
    settings = BankSettings(
        port=port, customers_per_bank=3, anchor_date=date(2026, 11, 20), data_dir=data_dir
    )
    env.bank_app = create_bank(settings, clock=env.clock)
    env.bank = TestClient(TestServer(env.bank_app, port=port))
    await env.bank.start_server()


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    env = await start(tmp_path, database_url, bank_data_dir=str(tmp_path / "bank"))
    yield env
    await stop(env)


async def _balances(env: Env, subject: str) -> tuple[int, dict[str, Any]]:
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    return resp.status, await resp.json()


async def _registration(env: Env) -> str:
    async with env.broker.app[BROKER].sessions() as session:
        row = await session.get(BankRegistration, "northwind")
        assert row is not None
        return str(row.client_id)


async def test_after_a_bank_restart_linked_consents_read_and_new_links_work(
    env: Env, tmp_path: Path
) -> None:
    first = await env.subject()
    await env.link(first)
    assert (await _balances(env, first))[0] == 200
    registered = await _registration(env)
    await restart_bank(env, str(tmp_path / "bank"))
    status, body = await _balances(env, first)
    assert status == 200, body
    second = await env.subject()
    await env.link(second)
    assert (await _balances(env, second))[0] == 200
    assert await _registration(env) == registered  # nothing to heal


async def test_a_bank_that_lost_its_data_gets_one_new_registration_and_links_work(
    env: Env, tmp_path: Path
) -> None:
    old = await env.subject()
    await env.link(old)
    registered = await _registration(env)
    await restart_bank(env, str(tmp_path / "wiped"))
    fresh = await env.subject()
    await env.link(fresh)  # invalid_client → one registration → the link goes through
    assert (await _balances(env, fresh))[0] == 200
    assert await _registration(env) != registered
    assert len(env.bank_app[BANKS]["northwind"].clients) == 1
    # the consent linked before is gone at the bank: it needs approving again
    status, body = await _balances(env, old)
    assert (status, [u["reason"] for u in body["unavailable"]]) == (200, ["reauthorization_needed"])
    assert len(env.bank_app[BANKS]["northwind"].clients) == 1


async def test_a_refused_refresh_token_flags_the_consent_and_tells_the_platform_once(
    env: Env,
) -> None:
    subject = await env.subject()
    consent_id = await env.link(subject)
    bank_consent = next(iter(env.bank_app[BANKS]["northwind"].consents))
    env.bank_app[GRANTS].revoke_consent(bank_consent)  # the bank drops both tokens
    for _ in range(2):
        status, body = await _balances(env, subject)
        assert (status, [u["reason"] for u in body["unavailable"]]) == (
            200,
            ["reauthorization_needed"],
        )
    resp = await env.broker.get(f"/v1/subjects/{subject}/consents", headers=env.auth())
    [listed] = (await resp.json())["consents"]
    assert (listed["status"], listed["needs_reauthorization"]) == ("authorized", True)
    async with env.broker.app[BROKER].sessions() as session:
        notices = (await session.exec(select(OutboxRow).where(OutboxRow.kind == NOTICE))).all()
        actions = (
            await session.exec(select(AuditRow.action).where(AuditRow.subject_id == subject))
        ).all()
        row = await session.get(ConsentRow, consent_id)
    assert len(notices) == 1
    assert list(actions).count("consent.needs_reauth") == 1
    assert row is not None and row.needs_reauthorization
