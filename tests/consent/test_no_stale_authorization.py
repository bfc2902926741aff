"""Nothing a broker process keeps in memory outlives a consent's end: two broker processes on
one database (on SQLite and on PostgreSQL), the second one warmed up (its cached client,
subject, data key and account handles), and the first one revokes, or the consent expires, or
a narrower consent replaces it. The second one's very next request sees it.

Why it holds: the consent's status, scopes, expiry and sealed keys are read from the database
by every request (one indexed query: consent.store.fastread), never cached across requests.
What is cached (the client, the subject, an unwrapped data key, the handle map) only opens what
that read returns, so a consent the read no longer returns is not served. And every read, in
either process, is in the subject's access log, whose chain verifies.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from consent.app import create_app as create_broker
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def two(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[Env, TestClient[Any, Any]]]:
    env = await start(tmp_path, database_url)
    other: TestClient[Any, Any] = TestClient(
        TestServer(create_broker(env.broker_settings, clock=env.clock, migrate=False))
    )
    await other.start_server()
    try:
        yield env, other
    finally:
        await other.close()
        await stop(env)


async def _balances(client: TestClient[Any, Any], env: Env, subject: str) -> dict[str, Any]:
    resp = await client.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def _log(env: Env, subject: str) -> dict[str, Any]:
    resp = await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


async def test_a_revocation_in_one_process_stops_the_next_read_in_the_other(
    two: tuple[Env, TestClient[Any, Any]],
) -> None:
    env, other = two
    subject = await env.subject()
    consent = await env.link(subject)
    warm = await _balances(other, env, subject)  # the other process's caches are warm now
    assert warm["balances"], warm
    handle = warm["balances"][0]["account_handle"]
    tx = f"/v1/subjects/{subject}/accounts/{handle}/transactions"
    assert (await other.get(tx, headers=env.auth())).status == 200

    resp = await env.broker.delete(f"/v1/subjects/{subject}/consents/{consent}", headers=env.auth())
    assert resp.status == 200, await resp.text()

    after = await _balances(other, env, subject)
    assert after["balances"] == [] and after["unavailable"] == [], after
    refused = await other.get(tx, headers=env.auth())
    assert refused.status == 403, await refused.text()
    assert (await refused.json())["error"] == "consent_not_authorized"
    log = await _log(env, subject)
    assert log["integrity"]["ok"], log["integrity"]
    reads = [e for e in log["entries"] if e["action"] == "read.balances"]
    assert [e["outcome"] for e in reads] == ["allowed"]  # the read after revocation read nothing
    denied = [e for e in log["entries"] if e["action"] == "read.transactions"]
    assert [e["outcome"] for e in denied] == ["allowed", "denied"]


async def test_an_expiry_stops_the_next_read_in_a_warmed_up_process(
    two: tuple[Env, TestClient[Any, Any]],
) -> None:
    env, other = two
    subject = await env.subject()
    await env.link(subject, duration_days=1)
    assert (await _balances(other, env, subject))["balances"]
    env.clock.now += timedelta(days=1, minutes=1)  # expired, and not swept yet
    after = await _balances(other, env, subject)
    assert after["balances"] == [], after
    log = await _log(env, subject)
    last = [e for e in log["entries"] if e["action"] == "read.balances"][-1]
    assert (last["outcome"], last["reason"]) == ("denied", "consent_expired")


async def test_a_narrower_consent_in_place_of_a_revoked_one_is_read_as_narrow(
    two: tuple[Env, TestClient[Any, Any]],
) -> None:
    env, other = two
    subject = await env.subject()
    wide = await env.link(subject, scopes=["balances", "transactions"])
    assert (await _balances(other, env, subject))["balances"]
    resp = await env.broker.delete(f"/v1/subjects/{subject}/consents/{wide}", headers=env.auth())
    assert resp.status == 200
    await env.link(subject, scopes=["transactions"])  # the user now shares transactions only
    after = await _balances(other, env, subject)
    assert after["balances"] == [], after


async def test_every_read_through_either_process_is_in_the_access_log(
    two: tuple[Env, TestClient[Any, Any]],
) -> None:
    env, other = two
    subject = await env.subject()
    await env.link(subject)
    for i in range(10):
        await _balances(env.broker if i % 2 else other, env, subject)
    log = await _log(env, subject)
    assert log["integrity"]["ok"], log["integrity"]
    reads = [e for e in log["entries"] if e["action"] == "read.balances"]
    assert len(reads) == 10 and all(e["outcome"] == "allowed" for e in reads)
