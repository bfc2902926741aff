"""The group-commit audit writer: concurrent appends land in order per subject with intact
chains, a failed commit fails every waiting request, a locked subject does not stall the others,
and shutdown flushes what is queued."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import select

from consent.api.keys import BROKER
from consent.domain.audit import verify_chain
from consent.store import audit, audit_writer
from consent.store.audit_writer import (
    AuditNotRecordedError,
    AuditWriter,
    PendingEntry,
    SqliteAppender,
)
from consent.store.db import make_engine, session_factory
from consent.store.fastread import sqlite_path
from consent.store.locks import lock_subject, registry
from consent.store.migrate import upgrade_async
from consent.store.tables import AuditRow
from tests.consent.broker_env import start, stop

T0 = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def pending(subject_id: str, n: int) -> PendingEntry:
    return PendingEntry(
        subject_id=subject_id,
        client_id="bot",
        action="read.balances",
        scope="balances",
        purpose="chat-service",
        fields=("available", f"n{n}"),
        outcome="allowed",
        reason="ok",
        at=T0 + timedelta(microseconds=n),
    )


class Store:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        path = sqlite_path(url)
        self.writer = AuditWriter(
            self.engine,
            registry(self.sessions),
            sqlite=SqliteAppender(path) if path is not None else None,
        )

    async def chain(self, subject_id: str) -> list[Any]:
        async with self.sessions() as session:
            return await audit.chain(session, subject_id)

    async def dispose(self) -> None:
        await self.writer.close()
        await self.engine.dispose()


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    await upgrade_async(database_url)
    s = Store(database_url)
    s.writer.start()
    yield s
    await s.dispose()


async def test_concurrent_appends_land_in_submission_order_per_subject(store: Store) -> None:
    subjects = [f"sub_{i}" for i in range(5)]

    async def request(i: int) -> None:
        await asyncio.sleep(0.001 * (i % 3))
        await store.writer.append(pending(subjects[i % 5], i))

    await asyncio.gather(*(request(i) for i in range(60)))
    assert store.writer.batches < 60  # requests shared transactions
    for k, subject_id in enumerate(subjects):
        entries = await store.chain(subject_id)
        assert verify_chain(entries).ok
        numbers = [int(e.fields[1][1:]) for e in entries]
        assert sorted(numbers) == list(range(k, 60, 5))
        # within one subject the chain follows submission order: the entries of requests that
        # slept the same time were submitted in order of i
        for delay in range(3):
            same_delay = [n for n in numbers if n % 3 == delay]
            assert same_delay == sorted(same_delay)


async def test_entries_of_one_request_stay_together_and_in_order(store: Store) -> None:
    await store.writer.append(pending("sub_a", 0))
    entries = await store.writer.append_all([pending("sub_a", n) for n in (1, 2, 3)])
    assert [e.seq for e in entries] == [2, 3, 4]
    chain = await store.chain("sub_a")
    assert [e.entry_hash for e in chain[1:]] == [e.entry_hash for e in entries]
    assert verify_chain(chain).ok


async def test_a_failed_commit_fails_every_waiting_request_and_writes_nothing(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, real_sqlite = audit_writer.chain_heads, audit_writer.sqlite_chain_heads
    calls = 0

    def fail_first() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")

    async def failing_once(conn: AsyncConnection, subject_ids: Any) -> Any:
        fail_first()
        return await real(conn, subject_ids)

    def failing_once_sqlite(conn: Any, subject_ids: Any) -> Any:
        fail_first()
        return real_sqlite(conn, subject_ids)

    monkeypatch.setattr(audit_writer, "chain_heads", failing_once)
    monkeypatch.setattr(audit_writer, "sqlite_chain_heads", failing_once_sqlite)
    results = await asyncio.gather(
        *(store.writer.append(pending(f"sub_{i % 2}", i)) for i in range(8)),
        return_exceptions=True,
    )
    assert all(isinstance(r, AuditNotRecordedError) for r in results)
    assert await store.chain("sub_0") == []
    assert await store.chain("sub_1") == []
    # the writer keeps going: the next request is audited
    entry = await store.writer.append(pending("sub_0", 99))
    assert entry.seq == 1
    assert [e.entry_hash for e in await store.chain("sub_0")] == [entry.entry_hash]


async def test_a_subject_locked_elsewhere_waits_without_stalling_the_others(store: Store) -> None:
    async with store.sessions() as session:
        await lock_subject(session, "sub_busy")  # e.g. a consent being revoked
        busy = asyncio.ensure_future(store.writer.append(pending("sub_busy", 1)))
        other = await asyncio.wait_for(store.writer.append(pending("sub_free", 2)), timeout=5)
        assert other.seq == 1
        await asyncio.sleep(0.02)
        assert not busy.done()
        await audit.record_action(
            session, subject_id="sub_busy", client_id="bot", action="consent.revoke", at=T0
        )
        await session.commit()
    entry = await asyncio.wait_for(busy, timeout=5)
    chain = await store.chain("sub_busy")
    assert [e.action for e in chain] == ["consent.revoke", "read.balances"]
    assert chain[-1].entry_hash == entry.entry_hash
    assert verify_chain(chain).ok


async def test_shutdown_flushes_queued_entries_then_refuses_new_ones(store: Store) -> None:
    waiting = [asyncio.ensure_future(store.writer.append(pending("sub_z", i))) for i in range(20)]
    await asyncio.sleep(0)  # all queued
    await store.writer.close()
    chain = await store.chain("sub_z")  # committed by the time close() returned
    assert len(chain) == 20
    assert verify_chain(chain).ok
    entries = await asyncio.wait_for(asyncio.gather(*waiting), timeout=1)
    assert [e.entry_hash for e in entries] == [e.entry_hash for e in chain]
    with pytest.raises(AuditNotRecordedError):
        await store.writer.append(pending("sub_z", 21))


async def test_a_cancelled_request_is_still_audited(store: Store) -> None:
    task = asyncio.ensure_future(store.writer.append(pending("sub_c", 1)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(100):
        if await store.chain("sub_c"):
            break
        await asyncio.sleep(0.01)
    assert len(await store.chain("sub_c")) == 1


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["s1", "s2", "s3"]), st.integers(0, 3)), min_size=1, max_size=40
    )
)
def test_any_interleaving_of_concurrent_requests_keeps_every_chain_valid(
    plan: list[tuple[str, int]],
) -> None:
    """Requests (subject, delay in ms) submitted concurrently, some with entries already in the
    chain: every chain verifies and holds exactly its requests' entries."""

    async def run(url: str) -> None:
        await upgrade_async(url)
        s = Store(url)
        s.writer.start()
        try:
            await s.writer.append(pending("s1", 1000))  # an existing head to chain after

            async def request(i: int, subject_id: str, delay: int) -> None:
                await asyncio.sleep(delay / 1000)
                await s.writer.append(pending(subject_id, i))

            await asyncio.gather(*(request(i, sid, d) for i, (sid, d) in enumerate(plan)))
            for subject_id in ("s1", "s2", "s3"):
                chain = await s.chain(subject_id)
                assert verify_chain(chain).ok
                expected = sorted(i for i, (sid, _) in enumerate(plan) if sid == subject_id)
                got = sorted(int(e.fields[1][1:]) for e in chain)
                assert got == expected + ([1000] if subject_id == "s1" else [])
        finally:
            await s.dispose()

    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(f"sqlite+aiosqlite:///{Path(tmp) / 'audit.db'}"))


async def test_a_read_whose_audit_fails_answers_an_error_not_data(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = await start(tmp_path, database_url)
    try:
        subject = await env.subject()
        await env.link(subject)
        url = f"/v1/subjects/{subject}/balances"
        assert (await env.broker.get(url, headers=env.auth())).status == 200

        async def broken(conn: AsyncConnection, subject_ids: Any) -> Any:
            raise RuntimeError("database gone")

        def broken_sqlite(conn: Any, subject_ids: Any) -> Any:
            raise RuntimeError("database gone")

        monkeypatch.setattr(audit_writer, "chain_heads", broken)
        monkeypatch.setattr(audit_writer, "sqlite_chain_heads", broken_sqlite)
        resp = await env.broker.get(url, headers=env.auth())
        assert resp.status == 500
        body = await resp.json()
        assert "balances" not in body
        monkeypatch.undo()
        async with env.broker.app[BROKER].sessions() as session:
            rows = (
                await session.exec(select(AuditRow).where(AuditRow.subject_id == subject))
            ).all()
        assert sum(r.action == "read.balances" for r in rows) == 1
    finally:
        await stop(env)
