"""The group-commit audit writer: concurrent appends land in order per subject with intact
chains, a failed commit fails every waiting request, a locked subject does not stall the others,
and shutdown flushes what is queued."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import col, delete, select

from consent.api.keys import BROKER
from consent.domain.audit import verify_chain
from consent.store import audit, audit_writer
from consent.store.audit_writer import (
    AuditNotRecordedError,
    AuditWriter,
    PendingEntry,
    PostgresAppender,
    SqliteAppender,
    appender_for,
)
from consent.store.db import make_engine, session_factory
from consent.store.locks import lock_subject, registry
from consent.store.migrate import upgrade_async
from consent.store.tables import AuditRow, PlatformClient, Subject
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
    """A broker process's storage: its own engine, subject locks and audit writer (on the
    writer's own sqlite3 / asyncpg connection, as the app runs it)."""

    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = session_factory(self.engine)
        appender = appender_for(url)
        self.postgres = appender if isinstance(appender, PostgresAppender) else None
        self.writer = AuditWriter(appender, registry(self.sessions))

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
    await s.writer.start()
    yield s
    await s.dispose()


def test_the_backend_is_chosen_once_from_the_database_url() -> None:
    assert isinstance(appender_for("sqlite+aiosqlite:///data/x.db"), SqliteAppender)
    pg = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
    assert isinstance(appender_for(pg), PostgresAppender)
    with pytest.raises(ValueError, match="SQLite file or PostgreSQL"):
        appender_for("sqlite+aiosqlite:///:memory:")


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
    real_sqlite = audit_writer.sqlite_chain_heads
    real_pg = audit_writer.postgres_chain_heads
    calls = 0

    def fail_first() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")

    def failing_once_sqlite(conn: Any, subject_ids: Any) -> Any:
        fail_first()
        return real_sqlite(conn, subject_ids)

    async def failing_once_pg(conn: Any, subject_ids: Any) -> Any:
        fail_first()
        return await real_pg(conn, subject_ids)

    monkeypatch.setattr(audit_writer, "sqlite_chain_heads", failing_once_sqlite)
    monkeypatch.setattr(audit_writer, "postgres_chain_heads", failing_once_pg)
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


async def test_a_lone_request_is_committed_on_the_loops_thread_unless_the_database_is_busy(
    sqlite_url: str,
) -> None:
    """With ``inline`` saying nothing else waits for the loop, a batch is committed on the loop's
    own thread (no hand-off to the writer's thread); when another connection holds the write
    lock, the loop never waits for it: the batch goes to the writer's thread, which does."""
    await upgrade_async(sqlite_url)
    s = Store(sqlite_url)
    quiet = True
    s.writer.inline = lambda: quiet
    await s.writer.start()
    try:
        first = await s.writer.append(pending("sub_i", 1))
        assert (s.writer.batches, s.writer.inline_batches) == (1, 1)
        assert isinstance(s.writer.appender, SqliteAppender)
        other = sqlite3.connect(s.writer.appender.path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another writer holds the database
            waiting = asyncio.ensure_future(s.writer.append(pending("sub_i", 2)))
            await asyncio.sleep(0.05)
            assert not waiting.done()  # the writer's thread waits for the lock, the loop does not
            other.execute("COMMIT")
        finally:
            other.close()
        second = await asyncio.wait_for(waiting, timeout=5)
        assert (s.writer.batches, s.writer.inline_batches) == (2, 1)
        quiet = False  # other requests in progress: the writer's thread commits
        third = await s.writer.append(pending("sub_i", 3))
        assert (s.writer.batches, s.writer.inline_batches) == (3, 1)
        chain = await s.chain("sub_i")
        assert [e.entry_hash for e in chain] == [e.entry_hash for e in (first, second, third)]
        assert verify_chain(chain).ok
    finally:
        await s.dispose()


async def test_under_concurrent_load_a_batch_waits_for_the_others_entries(
    database_url: str,
) -> None:
    """With other requests in progress the writer lingers before taking a batch, so entries
    that arrive meanwhile share its commit; a lone request is committed without waiting."""
    await upgrade_async(database_url)
    s = Store(database_url)
    alone = False
    s.writer.inline = lambda: alone
    s.writer.linger_s = 0.2
    await s.writer.start()
    try:
        loop = asyncio.get_running_loop()
        first = asyncio.ensure_future(s.writer.append(pending("sub_l", 1)))
        await asyncio.sleep(0.05)  # another request reaches its audit while the writer lingers
        second = asyncio.ensure_future(s.writer.append(pending("sub_m", 2)))
        await asyncio.gather(first, second)
        assert s.writer.batches == 1  # one commit for both
        alone = True
        started = loop.time()
        await s.writer.append(pending("sub_l", 3))
        assert loop.time() - started < 0.2  # no linger for a lone request
        assert s.writer.batches == 2
        for subject_id in ("sub_l", "sub_m"):
            assert verify_chain(await s.chain(subject_id)).ok
    finally:
        await s.dispose()


async def test_commits_on_the_loops_thread_leave_checkpoints_to_the_writers_thread(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop's connection never checkpoints (that could hold the loop for a whole copy of
    the log); the writer's thread does, every CHECKPOINT_EVERY of its commits, so the log
    does not grow without bound."""
    await upgrade_async(sqlite_url)
    s = Store(sqlite_url)
    s.writer.inline = lambda: True
    appender = s.writer.appender
    assert isinstance(appender, SqliteAppender)
    monkeypatch.setattr(appender, "CHECKPOINT_EVERY", 5)
    checkpoints: list[str] = []
    real = appender._checkpoint

    def counted() -> None:
        checkpoints.append(threading.current_thread().name)
        real()

    monkeypatch.setattr(appender, "_checkpoint", counted)
    await s.writer.start()
    try:
        for n in range(10):
            await s.writer.append(pending("sub_k", n))
        assert s.writer.inline_batches == 10
        inline = appender._inline
        assert inline is not None
        assert inline.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        assert inline.execute("PRAGMA busy_timeout").fetchone()[0] == 0
        await asyncio.get_running_loop().run_in_executor(appender._executor, lambda: None)
        assert len(checkpoints) == 2
        assert all(name.startswith("audit-writer") for name in checkpoints)
        assert verify_chain(await s.chain("sub_k")).ok
    finally:
        await s.dispose()


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
        await s.writer.start()
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

        def broken(heads: Any, pendings: Any) -> Any:
            raise RuntimeError("database gone")

        # every path (including PostgreSQL's one-statement append) chains the batch here
        monkeypatch.setattr(audit_writer, "chained", broken)
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


# --- PostgreSQL: the writer's own connection, several processes on one database ---------------


async def add_subjects(store: Store, *subject_ids: str) -> None:
    """Subject rows (the writer row-locks them), under a platform client."""
    async with store.sessions() as session:
        session.add(
            PlatformClient(
                client_id="pc_test",
                name="bot",
                secret_hash="x",
                webhook_secret=b"x",
                kek_version=1,
                wrapped_key=b"x",
                created_at=T0,
            )
        )
        for subject_id in subject_ids:
            session.add(Subject(subject_id=subject_id, client_id="pc_test", created_at=T0))
        await session.commit()


@pytest.fixture
async def pg_stores(postgres_url: str) -> AsyncIterator[tuple[Store, Store]]:
    """Two broker processes' storage on one PostgreSQL database (nothing shared in memory)."""
    await upgrade_async(postgres_url)
    first, second = Store(postgres_url), Store(postgres_url)
    for s in (first, second):
        await s.writer.start()
    yield first, second
    for s in (first, second):
        await s.dispose()


def numbers(chain: list[Any]) -> list[int]:
    return [int(e.fields[1][1:]) for e in chain]


@pytest.mark.postgres
async def test_two_writers_appending_to_the_same_subjects_keep_one_chain_each(
    pg_stores: tuple[Store, Store],
) -> None:
    """Like two broker processes, each with a few clients sending one request after another:
    every chain is linear and complete, each client's entries are in its order, and no request
    fails although the chains keep moving under each writer's remembered heads."""
    first, second = pg_stores
    subjects = [f"sub_{i}" for i in range(4)]
    await add_subjects(first, *subjects)

    async def client(store: Store, c: int) -> None:
        for k in range(30):
            await store.writer.append(pending(subjects[(c + k) % 4], 1000 * c + k))

    await asyncio.gather(*(client(first if c < 5 else second, c) for c in range(10)))
    total = 0
    for subject_id in subjects:
        chain = await first.chain(subject_id)
        assert verify_chain(chain).ok
        total += len(chain)
        for c in range(10):
            mine = [n for n in numbers(chain) if n // 1000 == c]
            assert mine == sorted(mine)
            assert len(mine) == sum(1 for k in range(30) if (c + k) % 4 == int(subject_id[4:]))
    assert total == 300
    assert first.writer.batches > 1 and second.writer.batches > 1


@pytest.mark.postgres
async def test_a_writer_waits_for_a_subject_another_process_is_appending_to(
    pg_stores: tuple[Store, Store],
) -> None:
    """The other process holds the subject's row lock and appends while this writer's
    one-statement append waits for the lock with a head that is no longer the last: the insert
    collides, nothing of it is written, and the batch goes again after the other's entry."""
    writer, other = pg_stores
    await add_subjects(writer, "sub_x")
    await writer.writer.append(pending("sub_x", 1))  # the writer now remembers the head
    assert writer.postgres is not None
    short_ways = writer.postgres.one_statement
    async with other.sessions() as session:
        await audit.record_action(  # takes the row lock, reads the head, appends
            session, subject_id="sub_x", client_id="bot", action="consent.revoke", at=T0
        )
        waiting = asyncio.ensure_future(writer.writer.append(pending("sub_x", 2)))
        await asyncio.sleep(0.1)
        assert not waiting.done()  # blocked on the row lock
        await session.commit()
    entry = await asyncio.wait_for(waiting, timeout=5)
    chain = await writer.chain("sub_x")
    assert [e.action for e in chain] == ["read.balances", "consent.revoke", "read.balances"]
    assert entry.seq == 3 and chain[-1].entry_hash == entry.entry_hash
    assert verify_chain(chain).ok
    assert writer.postgres.one_statement == short_ways  # it went the locking way
    await writer.writer.append(pending("sub_x", 3))
    assert writer.postgres.one_statement == short_ways + 1  # and remembers the new head
    assert verify_chain(await writer.chain("sub_x")).ok


@pytest.mark.postgres
async def test_a_chain_that_moved_or_was_deleted_is_read_again(
    pg_stores: tuple[Store, Store],
) -> None:
    writer, other = pg_stores
    await add_subjects(writer, "sub_m", "sub_d")
    await writer.writer.append_all([pending("sub_m", 1), pending("sub_d", 2)])
    await other.writer.append(pending("sub_m", 3))  # committed behind the writer's back
    await writer.writer.append(pending("sub_m", 4))
    assert numbers(await writer.chain("sub_m")) == [1, 3, 4]
    assert verify_chain(await writer.chain("sub_m")).ok

    async with other.sessions() as session:  # the subject is deleted with its access log
        await session.exec(delete(AuditRow).where(col(AuditRow.subject_id) == "sub_d"))
        await session.exec(delete(Subject).where(col(Subject.subject_id) == "sub_d"))
        await session.commit()
    entry = await writer.writer.append(pending("sub_d", 5))
    assert entry.seq == 1  # a new chain, not a continuation of the deleted one
    assert verify_chain(await writer.chain("sub_d")).ok


@pytest.mark.postgres
@pytest.mark.parametrize("remembered", [False, True], ids=["locking-way", "one-statement"])
async def test_a_batch_the_server_refuses_is_not_recorded_at_all(
    pg_stores: tuple[Store, Store], remembered: bool
) -> None:
    """A failed commit fails every request of the batch, writes none of its entries (of any
    subject) and leaves the writer's connection usable."""
    store, _ = pg_stores
    await add_subjects(store, "sub_1", "sub_2")
    if remembered:
        await store.writer.append_all([pending("sub_1", 0), pending("sub_2", 0)])
    before = {s: await store.chain(s) for s in ("sub_1", "sub_2")}
    async with store.engine.begin() as conn:
        await conn.exec_driver_sql(
            "ALTER TABLE audit_entry ADD CONSTRAINT no_boom CHECK (reason <> 'boom') NOT VALID"
        )
    refused = replace(pending("sub_2", 2), reason="boom")
    results = await asyncio.gather(
        store.writer.append(pending("sub_1", 1)),
        store.writer.append(refused),
        return_exceptions=True,
    )
    assert all(isinstance(r, AuditNotRecordedError) for r in results)
    assert {s: await store.chain(s) for s in ("sub_1", "sub_2")} == before
    entry = await store.writer.append(pending("sub_1", 3))
    assert entry.seq == len(before["sub_1"]) + 1
    assert verify_chain(await store.chain("sub_1")).ok


@pytest.mark.postgres
@pytest.mark.parametrize("remembered", [False, True], ids=["locking-way", "one-statement"])
async def test_an_append_cancelled_while_waiting_for_a_lock_leaves_nothing_behind(
    pg_stores: tuple[Store, Store], remembered: bool
) -> None:
    store, other = pg_stores
    await add_subjects(store, "sub_w")
    appender = store.postgres
    assert appender is not None
    if remembered:
        await appender.append({"sub_w": [pending("sub_w", 0)]})
    before = numbers(await store.chain("sub_w"))
    async with other.sessions() as session:
        await lock_subject(session, "sub_w")  # another process holds the row lock
        task = asyncio.ensure_future(appender.append({"sub_w": [pending("sub_w", 1)]}))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        await session.commit()
    await asyncio.sleep(0.3)  # the statement was cancelled on the server, not left to commit
    assert numbers(await store.chain("sub_w")) == before
    # the interrupted connection was dropped; the next append goes on a new one
    entries = await asyncio.wait_for(appender.append({"sub_w": [pending("sub_w", 2)]}), 5)
    assert entries["sub_w"][0].seq == len(before) + 1
    assert numbers(await store.chain("sub_w")) == [*before, 2]


@pytest.mark.postgres
async def test_the_writer_reconnects_after_losing_its_connection(
    pg_stores: tuple[Store, Store], postgres_url: str
) -> None:
    """The batch in flight when the server goes away is not recorded (its requests fail); the
    next one is, on a new connection."""
    store, _ = pg_stores
    await add_subjects(store, "sub_r")
    await store.writer.append(pending("sub_r", 1))
    admin = await asyncpg.connect(postgres_url)
    try:
        async with admin.transaction():
            await admin.execute("LOCK TABLE audit_entry IN ACCESS EXCLUSIVE MODE")
            stuck = asyncio.ensure_future(store.writer.append(pending("sub_r", 2)))
            await asyncio.sleep(0.1)
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND wait_event_type = 'Lock'"
            )
            with pytest.raises(AuditNotRecordedError):
                await asyncio.wait_for(stuck, 5)
    finally:
        await admin.close()
    entry = await asyncio.wait_for(store.writer.append(pending("sub_r", 3)), 5)
    assert entry.seq == 2
    chain = await store.chain("sub_r")
    assert numbers(chain) == [1, 3] and verify_chain(chain).ok
