"""Expiry, renewal notices, export, deletion and KEK rotation, through the real service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from consent.api.keys import BROKER
from consent.service.lifecycle import sweep
from consent.store.db import make_engine, session_factory
from consent.store.secrets import rewrap_all
from consent.store.tables import ConsentKey, OutboxRow
from consent.vault.keyring import KeyRing, parse_keyring
from consent.vault.source import KeySource
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _kinds(env: Env) -> list[str]:
    broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        return [r.kind for r in (await session.exec(select(OutboxRow))).all()]


async def test_a_consent_gets_one_renewal_notice_then_expires_and_is_shredded(env: Env) -> None:
    subject = await env.subject()
    consent_id = await env.link(
        subject, "wisla", scopes=["balances"], username="demo1"
    )  # 30 days at Wisła
    broker = env.broker.app[BROKER]
    env.clock.now += timedelta(days=24)
    assert await sweep(broker) == {"expired": 0, "renewal_notices": 1}
    assert await sweep(broker) == {"expired": 0, "renewal_notices": 0}  # only once
    env.clock.now += timedelta(days=7)
    assert await sweep(broker) == {"expired": 1, "renewal_notices": 0}
    kinds = await _kinds(env)
    assert "consent_expiring" in kinds
    assert "consent_expired" in kinds
    async with broker.sessions() as session:
        assert await session.get(ConsentKey, consent_id) is None
    listed = await (
        await env.broker.get(f"/v1/subjects/{subject}/consents", headers=env.auth())
    ).json()
    assert listed["consents"][0]["status"] == "expired"


async def test_export_holds_handles_and_log_but_no_secrets_and_delete_removes_everything(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject)
    await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    exported = await (
        await env.broker.get(f"/v1/subjects/{subject}/export", headers=env.auth())
    ).json()
    assert exported["subject_id"] == subject
    assert exported["account_handles"]
    assert {e["action"] for e in exported["access_log"]} >= {"consent.create", "read.balances"}
    text = str(exported)
    assert "token" not in text
    assert "aac-" not in text  # the bank's consent id stays inside the broker
    gone = await env.broker.delete(f"/v1/subjects/{subject}", headers=env.auth())
    assert gone.status == 204
    after = await env.broker.get(f"/v1/subjects/{subject}/export", headers=env.auth())
    assert after.status == 404


async def test_rotating_the_kek_rewraps_keys_and_reads_keep_working(
    env: Env, tmp_path: Path
) -> None:
    subject = await env.subject()
    await env.link(subject)
    old_ring = parse_keyring(env.broker_settings.keyring.get_secret_value())
    new_ring = old_ring.with_new_key()
    engine = make_engine(env.broker_settings.database_url)
    try:
        async with session_factory(engine)() as session:
            assert await rewrap_all(session, new_ring) >= 1
            await session.commit()
        async with session_factory(engine)() as session:
            versions = {k.kek_version for k in (await session.exec(select(ConsentKey))).all()}
        assert versions == {2}
    finally:
        await engine.dispose()
    broker = env.broker.app[BROKER]
    broker.keys = KeySource(spec=KeyRing({2: new_ring.keys[2]}, 2).spec())  # the old KEK is retired
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["balances"]
    assert (await broker.credentials("northwind")).client_id  # the bank registration re-wrapped too
    env.clock.now += timedelta(minutes=10)  # force a token refresh, which needs those credentials
    refreshed = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert refreshed.status == 200
