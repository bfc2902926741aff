"""The fast reads (SQLite: a dedicated sqlite3 connection, on the event loop's thread;
PostgreSQL: raw asyncpg connections) give exactly what the SQLAlchemy query gives."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import create_engine
from sqlmodel import SQLModel, col, delete

from consent.api.keys import BROKER
from consent.service.platform import find_subject
from consent.service.reads import authorized_consents
from consent.store.fastread import PostgresReader, SqliteReader, sqlite_path, utc
from consent.store.tables import ConsentKey
from tests.consent.broker_env import start, stop


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite+aiosqlite:////tmp/x/consent.db", "/tmp/x/consent.db"),
        ("sqlite:///data/consent.db", "data/consent.db"),
        ("sqlite+aiosqlite:///:memory:", None),
        ("sqlite://", None),
        ("postgresql://postgres@127.0.0.1/db", None),
    ],
)
def test_sqlite_path(url: str, path: str | None) -> None:
    assert sqlite_path(url) == path


def test_stored_timestamps_read_back_as_aware_utc() -> None:
    at = datetime(2026, 11, 20, 19, 0, 0, 123456, tzinfo=UTC)
    assert utc("2026-11-20 19:00:00.123456") == at
    assert utc("2026-11-20T21:00:00.123456+02:00") == at
    assert utc(at) == at
    assert utc(None) is None


async def test_the_fast_read_matches_the_sqlalchemy_query(
    tmp_path: Path, database_url: str
) -> None:
    env = await start(tmp_path, database_url)
    try:
        broker = env.broker.app[BROKER]
        kind = SqliteReader if database_url.startswith("sqlite") else PostgresReader
        assert isinstance(broker.reader, kind)
        subject = await env.subject()
        kept = await env.link(subject)
        shredded = await env.link(subject, "libertas")
        revoked = await env.link(subject, "wisla", scopes=["balances"])
        resp = await env.broker.delete(
            f"/v1/subjects/{subject}/consents/{revoked}", headers=env.auth()
        )
        assert resp.status == 200
        async with broker.sessions() as session:  # a key gone while the status still says so
            await session.exec(delete(ConsentKey).where(col(ConsentKey.consent_id) == shredded))
            await session.commit()

        fast = await authorized_consents(broker, subject)
        reader, broker.reader = broker.reader, None
        try:
            slow = await authorized_consents(broker, subject)
        finally:
            broker.reader = reader
        assert fast == slow
        assert sorted(c.consent_id for c in fast) == sorted([kept, shredded])  # same created_at
        by_id = {c.consent_id: c for c in fast}
        assert by_id[kept].wrapped_key is not None and by_id[kept].sealed_token is not None
        assert by_id[shredded].wrapped_key is None
        assert by_id[kept].consent.created_at.tzinfo is not None
    finally:
        await stop(env)


async def test_the_fast_subject_read_matches_the_sqlalchemy_one(
    tmp_path: Path, database_url: str
) -> None:
    env = await start(tmp_path, database_url)
    try:
        broker = env.broker.app[BROKER]
        assert broker.reader is not None and broker.subjects is not None
        subject_id = await env.subject()
        broker.subjects.drop(subject_id)
        fast = await find_subject(broker, subject_id)
        reader, broker.reader = broker.reader, None
        try:
            broker.subjects.drop(subject_id)
            slow = await find_subject(broker, subject_id)
            assert await find_subject(broker, "sub_nobody") is None
        finally:
            broker.reader = reader
        assert fast is not None and slow is not None
        assert fast.model_dump() == slow.model_dump()
        assert fast.created_at.tzinfo is not None
        assert await find_subject(broker, "sub_nobody") is None
    finally:
        await stop(env)


@pytest.mark.postgres
async def test_a_read_cancelled_mid_query_does_not_spoil_the_connections(
    tmp_path: Path, postgres_url: str
) -> None:
    env = await start(tmp_path, postgres_url)
    try:
        broker = env.broker.app[BROKER]
        subject = await env.subject()
        await env.link(subject)
        reader = broker.reader
        assert isinstance(reader, PostgresReader)
        blocker = await asyncpg.connect(postgres_url)
        try:
            async with blocker.transaction():
                await blocker.execute("LOCK TABLE consent IN ACCESS EXCLUSIVE MODE")
                reads = [asyncio.ensure_future(reader.authorized(subject)) for _ in range(3)]
                await asyncio.sleep(0.1)
                assert not any(r.done() for r in reads)  # all waiting for the table lock
                for r in reads:
                    r.cancel()
                await asyncio.gather(*reads, return_exceptions=True)
        finally:
            await blocker.close()
        for _ in range(2 * reader.connections.size):  # every connection handed out works
            assert len(await asyncio.wait_for(reader.authorized(subject), 5)) == 1
        resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
        assert resp.status == 200
    finally:
        await stop(env)


async def test_a_busy_database_moves_the_read_to_a_thread_and_the_loop_keeps_running(
    tmp_path: Path,
) -> None:
    """The SQLite read runs on the event loop's thread; when the file is locked all the same
    (here: another connection holds it exclusively), the loop waits at most a few milliseconds,
    then the read waits in a thread while the loop serves everything else."""
    path = str(tmp_path / "consent.db")
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("PRAGMA locking_mode=EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("DELETE FROM consent")  # holds the file until it closes
    reader = SqliteReader(path)
    await reader.open()
    try:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        beat = asyncio.ensure_future(ticker())
        read = asyncio.ensure_future(reader.authorized("sub_x"))
        await asyncio.sleep(0.3)
        assert not read.done()  # waiting for the lock, in a thread
        assert ticks >= 10  # while the loop went on
        assert reader.deferred == 1
        holder.execute("COMMIT")
        holder.close()
        assert await asyncio.wait_for(read, 10) == []
        assert await reader.authorized("sub_x") == []  # the next read is on the loop again
        assert reader.deferred == 1
        beat.cancel()
    finally:
        await reader.close()
