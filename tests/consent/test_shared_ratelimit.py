"""The per-subject rate limit on PostgreSQL is one limit for every broker process: two limiters
on one database (two processes) spend from the same buckets, and decide as the in-process
limiter does."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from consent.api.keys import BROKER
from consent.service.ratelimit import RateLimiter, TokenBuckets
from consent.store.migrate import upgrade_async
from consent.store.ratelimit_pg import PostgresRateLimiter
from tests.consent.broker_env import start, stop

pytestmark = pytest.mark.postgres
T0 = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture
async def limiters(postgres_url: str) -> AsyncIterator[list[PostgresRateLimiter]]:
    await upgrade_async(postgres_url)
    pair = [PostgresRateLimiter(postgres_url, per_minute=3) for _ in range(2)]
    for limiter in pair:
        await limiter.open()
    yield pair
    for limiter in pair:
        await limiter.close()


async def allowed(limiter: RateLimiter, subject: str, now: datetime) -> bool:
    wait = await limiter.take(subject, now)
    assert wait is None or wait >= 1
    return wait is None


async def test_two_processes_share_one_subjects_allowance(
    limiters: list[PostgresRateLimiter],
) -> None:
    a, b = limiters
    assert [await allowed(x, "s1", T0) for x in (a, b, a)] == [True, True, True]
    assert not await allowed(b, "s1", T0)  # the fourth read in the minute, on the other process
    assert await allowed(b, "s2", T0)  # other subjects are unaffected
    assert not await allowed(a, "s1", T0 + timedelta(seconds=5))  # a refusal spends nothing …
    assert await allowed(a, "s1", T0 + timedelta(seconds=21))  # … and a token came back


async def test_concurrent_reads_from_two_processes_never_exceed_the_limit(
    limiters: list[PostgresRateLimiter],
) -> None:
    results = await asyncio.gather(*(allowed(limiters[i % 2], "s1", T0) for i in range(12)))
    assert sum(results) == 3


async def test_the_shared_limit_decides_as_the_in_process_one(
    limiters: list[PostgresRateLimiter],
) -> None:
    rng = random.Random(20261202)
    model = TokenBuckets(per_minute=30)  # half a token a second: exact in binary floating point
    for limiter in limiters:
        limiter.per_minute = 30
    now = T0
    for _ in range(300):
        now += timedelta(seconds=rng.choice([0, 0, 0, 1, 2, 7]))
        subject = rng.choice(["s1", "s2"])
        expected = await allowed(model, subject, now)
        assert await allowed(rng.choice(limiters), subject, now) == expected


async def test_reads_arriving_together_share_a_round_trip(
    limiters: list[PostgresRateLimiter], monkeypatch: pytest.MonkeyPatch
) -> None:
    limiter = limiters[0]
    statements: list[int] = []
    spend = limiter._spend

    async def counted(batch: list[Any]) -> None:
        statements.append(len(batch))
        await spend(batch)

    monkeypatch.setattr(limiter, "_spend", counted)
    subjects = [f"s{i}" for i in range(20)] + ["s0", "s0"]
    results = await asyncio.gather(*(allowed(limiter, s, T0) for s in subjects))
    assert all(results)
    assert sum(statements) == len(subjects) and len(statements) <= 4, statements


async def test_a_lost_database_fails_the_read_instead_of_hanging(
    limiters: list[PostgresRateLimiter],
) -> None:
    limiter = limiters[0]
    await limiter.connections.close()
    with pytest.raises(asyncpg.InterfaceError):
        async with asyncio.timeout(5):
            await limiter.take("s1", T0)


async def test_the_broker_on_postgres_spends_the_shared_budget_only_for_allowed_reads(
    tmp_path: Path, postgres_url: str
) -> None:
    env = await start(tmp_path, postgres_url, reads_per_minute=3)
    try:
        limits = env.broker.app[BROKER].limits
        assert limits is not None and isinstance(limits.subjects, PostgresRateLimiter)
        subject = await env.subject()
        url = f"/v1/subjects/{subject}/balances"
        refused = await env.broker.get(url, headers=env.auth(purpose="marketing"))
        assert refused.status == 403  # refused before the limit: spends nothing
        other = PostgresRateLimiter(postgres_url, per_minute=3)  # another broker process
        await other.open()
        try:
            assert await other.take(subject, env.clock()) is None
        finally:
            await other.close()
        statuses = [(await env.broker.get(url, headers=env.auth())).status for _ in range(3)]
        assert statuses == [200, 200, 429]
    finally:
        await stop(env)
