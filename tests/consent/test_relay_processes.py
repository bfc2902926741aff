"""Several broker processes on one PostgreSQL database share the outbox: each relay claims rows
with ``FOR UPDATE SKIP LOCKED``, so every message is posted once even when all relays run at
the same moment."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from consent.api.keys import BROKER, RELAY
from consent.app import create_app as create_broker
from consent.store.tables import OutboxRow
from tests.consent.broker_env import ADMIN, Env, start, stop

pytestmark = pytest.mark.postgres
MESSAGES = 60


@pytest.fixture
async def env(tmp_path: Path, postgres_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, postgres_url)
    yield e
    await stop(e)


async def test_three_relays_post_every_outbox_row_exactly_once(env: Env) -> None:
    received: Counter[str] = Counter()

    async def webhook(request: web.Request) -> web.Response:
        received[json.loads(await request.read())["id"]] += 1
        await asyncio.sleep(0.005)  # a webhook that takes a moment: the relays overlap
        return web.json_response({"status": "shown"})

    hook_app = web.Application()
    hook_app.router.add_post("/broker/events", webhook)
    hook = TestServer(hook_app, host="127.0.0.1")
    await hook.start_server()
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot", "webhook_url": str(hook.make_url("/broker/events"))},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    client_id = (await resp.json())["client_id"]
    others = [TestServer(create_broker(env.broker_settings, clock=env.clock)) for _ in range(2)]
    apps: list[Any] = [env.broker.app]
    try:
        for server in others:
            await server.start_server()
            apps.append(server.app)
        for app in apps:  # a relay posts at most 8 at once: the 40 subjects' heads are shared
            app[RELAY].max_in_flight = 8
        broker = env.broker.app[BROKER]
        now = env.clock()
        async with broker.sessions() as session:
            for i in range(MESSAGES):
                session.add(
                    OutboxRow(
                        id=f"m{i:03d}",
                        client_id=client_id,
                        subject_id=f"s{i % 40}",  # more heads than one relay's 32 slots
                        kind="consent_expiring",
                        payload="{}",
                        next_attempt_at=now,
                        created_at=now,
                    )
                )
            await session.commit()
        relays = [app[RELAY] for app in apps]
        for _ in range(40):  # the relays' own loops run too; all of them commit what they post
            await asyncio.gather(*(relay.run_once() for relay in relays))
            if sum(relay.delivered for relay in relays) >= MESSAGES:
                break
            await asyncio.sleep(0.05)
        assert len(received) == MESSAGES
        assert max(received.values()) == 1, received.most_common(3)
        assert sum(relay.delivered for relay in relays) == MESSAGES
        assert sum(1 for relay in relays if relay.delivered) >= 2  # the work was shared
    finally:
        for server in others:
            await server.close()
        await hook.close()
