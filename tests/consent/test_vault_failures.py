"""A sealed value moved to another consent's row spoils that consent only: a typed per-consent
error in the balances answer, one log line without a traceback, an access-log entry, and the
subject's other banks still answered."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, select

from consent.api.keys import BROKER
from consent.store.db import make_engine, session_factory
from consent.store.tables import ConsentKey, SealedSecret
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _swap(env: Env, table: type[ConsentKey] | type[SealedSecret], a: str, b: str) -> None:
    """Move consent ``a``'s sealed bytes into consent ``b``'s row (an insider with database
    access), then drop the broker's cached keys as a restart would."""
    engine = make_engine(env.broker_settings.database_url)
    try:
        async with session_factory(engine)() as session:
            if table is ConsentKey:
                key_a, key_b = await session.get(ConsentKey, a), await session.get(ConsentKey, b)
                assert key_a is not None and key_b is not None
                key_b.wrapped, key_b.kek_version = key_a.wrapped, key_a.kek_version
                session.add(key_b)
            else:
                rows = (
                    await session.exec(
                        select(SealedSecret).where(
                            col(SealedSecret.consent_id).in_([a, b]),
                            SealedSecret.field == "access_token",
                        )
                    )
                ).all()
                by_consent = {r.consent_id: r for r in rows}
                by_consent[b].blob = by_consent[a].blob
                session.add(by_consent[b])
            await session.commit()
    finally:
        await engine.dispose()
    broker = env.broker.app[BROKER]
    broker.forget_consent(a)
    broker.forget_consent(b)


@pytest.mark.parametrize("table", [SealedSecret, ConsentKey], ids=["token", "data_key"])
async def test_a_ciphertext_moved_between_consents_fails_that_consent_only(
    env: Env,
    table: type[ConsentKey] | type[SealedSecret],
    caplog: pytest.LogCaptureFixture,
) -> None:
    subject = await env.subject()
    good = await env.link(subject, "northwind")
    spoiled = await env.link(subject, "libertas")
    before = await (
        await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    ).json()
    assert before["errors"] == []
    banks = {b["bank_name"] for b in before["balances"]}
    assert len(banks) == 2
    await _swap(env, table, good, spoiled)

    with caplog.at_level(logging.DEBUG):
        resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["errors"] == [
        {
            "consent_id": spoiled,
            "bank_id": "libertas",
            "error": "vault_error",
            "detail": body["errors"][0]["detail"],
        }
    ]
    assert body["balances"] and {b["bank_name"] for b in body["balances"]} < banks
    vault_lines = [r for r in caplog.records if "vault" in r.getMessage()]
    assert len(vault_lines) == 1
    assert vault_lines[0].levelno == logging.WARNING and vault_lines[0].exc_info is None
    assert not [r for r in caplog.records if r.exc_info]

    log = await (
        await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    ).json()
    last_read = {e["reason"]: e["outcome"] for e in log["entries"][-2:]}
    assert last_read == {"vault_error": "denied", "ok": "allowed"}
    assert log["integrity"]["ok"]
