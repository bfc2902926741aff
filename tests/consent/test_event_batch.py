"""The SQLite group-commit writer of bank events (consent.events.batch): a burst of alerts is
committed in shared transactions with the same outcome as one by one: each alert once, in its
subject's outbox and access log (the chain verifies), replays recognised within a batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import col, func, select

from bank_mock.fraud.publisher import FRAUD_ALERT, PUBLISHER
from bank_mock.fraud.signing import SIGNERS
from bank_mock.keys import BANKS
from consent.api.keys import BROKER
from consent.events.batch import SqliteEventWriter
from consent.store import audit
from consent.store.tables import OutboxRow
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    env = await start(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}")
    yield env
    await stop(env)


async def test_a_burst_of_alerts_commits_in_batches_each_once_with_the_audit_chain_intact(
    env: Env,
) -> None:
    broker = env.broker.app[BROKER]
    writer = broker.event_writer
    assert isinstance(writer, SqliteEventWriter)
    subject = await env.subject()
    await env.link(subject, scopes=["fraud_alerts", "card_controls"])
    account = env.bank_app[BANKS]["northwind"].customers_by_username["demo1"].account_ids[0]
    # the first: put off (subject and handle not known yet) to the next batch, not handed back
    await env.pay_flagged(account, "Shop 0")
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    await asyncio.gather(*(env.pay_flagged(account, f"Shop {i}") for i in range(1, 13)))
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    assert writer.batches >= 2
    assert writer.handed_back == 0
    async with broker.sessions() as session:
        alerts = (
            await session.exec(
                select(func.count())
                .select_from(OutboxRow)
                .where(col(OutboxRow.subject_id) == subject, col(OutboxRow.kind) == "fraud_alert")
            )
        ).one()
        entries, report = await audit.verify(session, subject)
    assert alerts == 13
    pushed = [e for e in entries if e.action == "push.fraud_alert"]
    assert len(pushed) == 13
    assert report.ok
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


async def test_a_replay_in_the_same_batch_is_a_duplicate(env: Env) -> None:
    broker = env.broker.app[BROKER]
    subject = await env.subject()
    await env.link(subject)
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    cred = await broker.credentials("northwind")
    token = env.bank_app[SIGNERS]["northwind"].make_set(
        audience=cred.client_id,
        subject="x",
        events={FRAUD_ALERT: {"alert_id": "fa-x"}},
        now=env.clock.now,
    )

    async def post() -> str:
        resp = await env.broker.post(
            "/events/northwind", data=token, headers={"Content-Type": "application/jwt"}
        )
        assert resp.status == 202
        return str((await resp.json())["status"])

    assert sorted(await asyncio.gather(post(), post(), post())) == [
        "duplicate",
        "duplicate",
        "ignored",
    ]


async def test_events_waiting_when_the_writer_stops_are_handed_back(env: Env) -> None:
    broker = env.broker.app[BROKER]
    writer = broker.event_writer
    assert isinstance(writer, SqliteEventWriter)
    claims = {"jti": "j-stop", "events": {FRAUD_ALERT: {"alert_id": "fa-stop"}}}
    async with broker.writes():  # the writer cannot take the gate: its batch waits
        waiting = asyncio.create_task(writer.ingest("northwind", claims))
        await asyncio.sleep(0.05)
        await writer.close()
        assert await asyncio.wait_for(waiting, 5) is None
