"""The PostgreSQL group-commit writer of fraud alerts (consent.events.pgbatch): a burst is
committed in shared transactions with the same outcome as one by one (each alert once, in its
subject's outbox and access log, the chain verifying), replays are duplicates per bank, two
broker processes ingesting the same subject's alerts at once keep one linear chain, and a
subject locked by another transaction is put off, never forked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import col, func, select

from bank_mock.fraud.publisher import FRAUD_ALERT, PUBLISHER
from bank_mock.fraud.signing import SIGNERS
from bank_mock.keys import BANKS
from consent.api.keys import BROKER
from consent.app import create_app as create_broker
from consent.events.ingest import ingest
from consent.events.pgbatch import PostgresEventWriter
from consent.outbox.write import NOTIFY_CHANNEL
from consent.service.account_handles import known_handles
from consent.store import audit
from consent.store.locks import SubjectLocks
from consent.store.pgpool import postgres_dsn
from consent.store.tables import AccountHandle, AlertRow, ConsentRow, OutboxRow, ProcessedEvent
from tests.consent.broker_env import Env, start, stop

pytestmark = pytest.mark.postgres


@pytest.fixture
async def env(tmp_path: Path, postgres_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, postgres_url)
    yield e
    await stop(e)


async def _count(env: Env, subject: str) -> int:
    async with env.broker.app[BROKER].sessions() as session:
        found: int = (
            await session.exec(
                select(func.count())
                .select_from(OutboxRow)
                .where(col(OutboxRow.subject_id) == subject, col(OutboxRow.kind) == "fraud_alert")
            )
        ).one()
    return found


async def _linked(env: Env) -> tuple[str, str, dict[str, Any]]:
    """A subject with an alert consent, the bank's consent id and account of demo1."""
    subject = await env.subject()
    await env.link(subject, scopes=["fraud_alerts", "card_controls"])
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    customer = env.bank_app[BANKS]["northwind"].customers_by_username["demo1"]
    broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        row = (await session.exec(select(ConsentRow).where(ConsentRow.subject_id == subject))).one()
    return subject, customer.account_ids[0], {"consent_id": row.bank_consent_id}


async def test_a_burst_of_alerts_commits_in_batches_each_once_with_the_audit_chain_intact(
    env: Env,
) -> None:
    broker = env.broker.app[BROKER]
    writer = broker.event_writer
    assert isinstance(writer, PostgresEventWriter)
    subject, account, _ = await _linked(env)
    notified: list[str] = []  # what another broker process's relay hears
    listener = await asyncpg.connect(writer.dsn)
    await listener.add_listener(NOTIFY_CHANNEL, lambda *a: notified.append(a[2]))
    try:
        await env.pay_flagged(account, "Shop 0")  # the account's handle not in memory yet: put off
        await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
        await asyncio.gather(*(env.pay_flagged(account, f"Shop {i}") for i in range(1, 13)))
        await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
        await asyncio.sleep(0.1)
    finally:
        await listener.close()
    assert 1 <= len(notified) <= writer.batches
    assert writer.batches >= 2
    assert writer.handed_back == 0
    assert await _count(env, subject) == 13
    async with broker.sessions() as session:
        entries, report = await audit.verify(session, subject)
        alerts = (await session.exec(select(func.count()).select_from(AlertRow))).one()
    assert alerts == 13
    # the handle maps the writer loads in bulk are those loaded one consent at a time
    async with broker.sessions() as session:
        row = (await session.exec(select(ConsentRow).where(ConsentRow.subject_id == subject))).one()
        broker.handles.clear()
        await writer._warm([row.consent_id, "no-such-consent"])
        bulk = dict(broker.handles)
        broker.handles.clear()
        one = await known_handles(broker, session, row)
    assert bulk == {row.consent_id: one}
    assert account in one
    assert len([e for e in entries if e.action == "push.fraud_alert"]) == 13
    assert report.ok
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))


def _token(env: Env, audience: str, event: dict[str, Any]) -> str:
    token: str = env.bank_app[SIGNERS]["northwind"].make_set(
        audience=audience, subject="x", events={FRAUD_ALERT: event}, now=env.clock.now
    )
    return token


async def _post(env: Env, token: str) -> str:
    resp = await env.broker.post(
        "/events/northwind", data=token, headers={"Content-Type": "application/jwt"}
    )
    assert resp.status == 202
    return str((await resp.json())["status"])


async def test_a_replay_in_the_same_batch_and_a_later_one_are_duplicates(env: Env) -> None:
    broker = env.broker.app[BROKER]
    subject, account, consent = await _linked(env)
    await env.pay_flagged(account, "warm")  # the account's handle in memory
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    cred = await broker.credentials("northwind")
    event = {**consent, "alert_id": "fa-replay", "account_id": account, "amount": "1.00"}
    token = _token(env, cred.client_id, event)
    outcomes = await asyncio.gather(*(_post(env, token) for _ in range(3)))
    assert sorted(outcomes) == ["duplicate", "duplicate", "processed"]
    assert await _post(env, token) == "duplicate"
    # the same bank alert under a new jti: stored once already, so nothing more is pushed
    again = _token(env, cred.client_id, event)
    assert await _post(env, again) == "ignored"
    assert await _count(env, subject) == 2
    async with broker.sessions() as session:
        _, report = await audit.verify(session, subject)
    assert report.ok


async def test_two_writers_on_one_subject_keep_one_linear_chain(env: Env) -> None:
    """A second broker process (here: a second writer on its own connection) ingesting the
    same subject's alerts at the same time: every alert once, one linear chain."""
    broker = env.broker.app[BROKER]
    first = broker.event_writer
    assert isinstance(first, PostgresEventWriter)
    # its own in-process locks, as another process has: only the subject's row lock orders them
    second = PostgresEventWriter(broker, first.dsn, locks=SubjectLocks())
    second.start()
    try:
        subject, account, consent = await _linked(env)
        await env.pay_flagged(account, "warm")
        await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)

        def claims(n: int) -> dict[str, Any]:
            ev = {**consent, "alert_id": f"fa-{n}", "account_id": account, "amount": "1.00"}
            return {"jti": f"j-{n}", "events": {FRAUD_ALERT: ev}}

        outcomes = await asyncio.gather(
            *((first if n % 2 else second).ingest("northwind", claims(n)) for n in range(40))
        )
        handed = [n for n, o in enumerate(outcomes) if o is None]

        for n in handed:  # handed back: the usual path, as events.py does
            outcomes[n] = await ingest(broker, "northwind", claims(n))
        assert outcomes == ["processed"] * 40
        # the same 40 again, through the other writer each: all duplicates
        replays = await asyncio.gather(
            *((second if n % 2 else first).ingest("northwind", claims(n)) for n in range(40))
        )
        assert set(replays) <= {"duplicate", None}
    finally:
        await second.close()
    assert await _count(env, subject) == 41
    async with broker.sessions() as session:
        entries, report = await audit.verify(session, subject)
        jtis = (await session.exec(select(func.count()).select_from(ProcessedEvent))).one()
    assert report.ok
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert len([e for e in entries if e.action == "push.fraud_alert"]) == 41
    assert jtis >= 41
    assert first.batches + second.batches >= 2


async def test_jti_de_duplication_is_per_bank(env: Env) -> None:
    broker = env.broker.app[BROKER]
    writer = broker.event_writer
    assert isinstance(writer, PostgresEventWriter)
    claims = {"jti": "same-jti", "events": {FRAUD_ALERT: {"alert_id": "fa-none"}}}
    assert await writer.ingest("northwind", claims) == "ignored"
    assert await writer.ingest("northwind", claims) == "duplicate"
    assert await writer.ingest("southbank", claims) == "ignored"  # another bank's jti


async def test_a_subject_locked_by_another_transaction_is_put_off_then_handed_back(
    env: Env,
) -> None:
    broker = env.broker.app[BROKER]
    writer = broker.event_writer
    assert isinstance(writer, PostgresEventWriter)
    subject, account, consent = await _linked(env)
    await env.pay_flagged(account, "warm")
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    before = await _count(env, subject)
    dsn = postgres_dsn(str(env.broker.app[BROKER].settings.database_url))
    other = await asyncpg.connect(dsn)
    try:
        await other.execute("BEGIN")
        await other.execute("SELECT 1 FROM subject WHERE subject_id = $1 FOR UPDATE", subject)
        ev = {**consent, "alert_id": "fa-locked", "account_id": account, "amount": "1.00"}
        claims = {"jti": "j-locked", "events": {FRAUD_ALERT: ev}}
        skips = writer.subject_skips
        # never waits for the lock: put off, then handed back to the usual path
        assert await asyncio.wait_for(writer.ingest("northwind", claims), 5) is None
        assert writer.subject_skips > skips
        await other.execute("ROLLBACK")
    finally:
        await other.close()
    assert await _count(env, subject) == before  # nothing written for it
    async with broker.sessions() as session:
        assert (
            await session.get(ProcessedEvent, {"bank_id": "northwind", "jti": "j-locked"}) is None
        )


async def test_two_broker_processes_give_a_first_seen_account_one_handle(env: Env) -> None:
    """Two broker processes (two apps on one database) each get an alert for an account
    neither has seen: the account gets one handle, and both alerts carry it."""
    subject, account, consent = await _linked(env)
    other = TestServer(create_broker(env.broker_settings, clock=env.clock))
    await other.start_server()
    try:
        brokers = [env.broker.app[BROKER], other.app[BROKER]]
        for broker in brokers:
            broker.handles.clear()

        def claims(n: int) -> dict[str, Any]:
            ev = {**consent, "alert_id": f"fa-first-{n}", "account_id": account, "amount": "1"}
            return {"jti": f"j-first-{n}", "events": {FRAUD_ALERT: ev}}

        writers = [b.event_writer for b in brokers]
        assert all(isinstance(w, PostgresEventWriter) for w in writers)
        outcomes = await asyncio.gather(
            *(writers[n % 2].ingest("northwind", claims(n)) for n in range(8))
        )
        for n, outcome in enumerate(outcomes):  # handed back: the usual path, as events.py
            if outcome is None:
                outcomes[n] = await ingest(brokers[n % 2], "northwind", claims(n))
        assert outcomes == ["processed"] * 8
    finally:
        await other.close()
    async with brokers[0].sessions() as session:
        row = (await session.exec(select(ConsentRow).where(ConsentRow.subject_id == subject))).one()
        handles = (
            await session.exec(
                select(AccountHandle).where(AccountHandle.consent_id == row.consent_id)
            )
        ).all()
        pushed = (
            await session.exec(select(OutboxRow).where(col(OutboxRow.subject_id) == subject))
        ).all()
    assert len(handles) == 1
    alerts = [json.loads(o.payload)["alert"] for o in pushed if o.kind == "fraud_alert"]
    assert len(alerts) == 8
    assert {a["account_handle"] for a in alerts} == {handles[0].handle}


async def test_alerts_still_go_in_once_after_the_database_drops_every_connection(
    env: Env,
) -> None:
    """A PostgreSQL restart (here: every backend of the broker's database terminated) between
    alerts: the writer's connection, the relay's and the ORM pool's are dead; the next alert is
    still stored once (the bank retries whatever failed), and the chain still verifies."""
    broker = env.broker.app[BROKER]
    writer = broker.event_writer
    assert isinstance(writer, PostgresEventWriter)
    subject, account, _ = await _linked(env)
    await env.pay_flagged(account, "Before 1")
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    assert await _count(env, subject) == 1
    admin = await asyncpg.connect(writer.dsn)
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    assert killed >= 1  # the writer's own connection at least
    for i in range(3):
        await env.pay_flagged(account, f"After {i}")
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 30)
    assert env.bank_app[PUBLISHER].stats.failed == 0
    assert await _count(env, subject) == 4
    async with broker.sessions() as session:
        entries, report = await audit.verify(session, subject)
    assert report.ok
    assert len([e for e in entries if e.action == "push.fraud_alert"]) == 4
