"""Two broker processes on one PostgreSQL database, reading one subject's balances for the first
time at the same moment, give each account one handle: the handles are created under a lock
that holds across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlmodel import select

from consent.api.keys import BROKER
from consent.app import create_app as create_broker
from consent.store.tables import AccountHandle
from tests.consent.broker_env import Env, start, stop

pytestmark = pytest.mark.postgres


@pytest.fixture
async def env(tmp_path: Path, postgres_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, postgres_url)
    yield e
    await stop(e)


async def test_concurrent_first_reads_on_two_processes_share_one_handle_per_account(
    env: Env,
) -> None:
    other = TestClient(TestServer(create_broker(env.broker_settings, clock=env.clock)))
    await other.start_server()
    try:
        subjects = [await env.subject() for _ in range(3)]
        accounts = 0
        for i, subject in enumerate(subjects):
            await env.link(subject, scopes=["balances"], username=f"demo{i + 1}")
        for subject in subjects:
            answers = await asyncio.gather(
                *(
                    client.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
                    for client in (env.broker, other, env.broker, other)
                )
            )
            handles = []
            for resp in answers:
                assert resp.status == 200, await resp.text()
                body = await resp.json()
                handles.append(sorted(b["account_handle"] for b in body["balances"]))
            assert all(h == handles[0] for h in handles), handles
            accounts += len(handles[0])
        async with env.broker.app[BROKER].sessions() as session:
            rows = (await session.exec(select(AccountHandle))).all()
        assert accounts > 0 and len(rows) == accounts  # one handle per account, no strays
    finally:
        await other.close()
