"""The SQLite audit writer finds each chain's last entry with one index step, however long the
chain: the cost of a batch does not grow with the access log."""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from consent.domain.audit import AuditEntry, verify_chain
from consent.store import audit_writer, fastread
from consent.store.audit import COLUMNS, entry_of
from consent.store.audit_writer import (
    PendingEntry,
    SqliteAppender,
    sqlite_append,
    sqlite_chain_heads,
)

AT = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)


def _pending(subject_id: str) -> PendingEntry:
    return PendingEntry(
        subject_id,
        "pc_1",
        "read.balances",
        "balances",
        "chat-service",
        ("currency",),
        "allowed",
        "ok",
        AT,
    )


async def test_the_heads_are_the_last_entries_of_chains_of_any_length(tmp_path: Path) -> None:
    path = str(tmp_path / "consent.db")
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    appender = SqliteAppender(path)
    try:
        lengths = {"sub_a": 1, "sub_b": 7, "sub_c": 40}
        last = {}
        for subject, n in lengths.items():
            for _ in range(n):
                last[subject] = (await appender.append({subject: [_pending(subject)]}))[subject][-1]
        conn = sqlite3.connect(path)
        try:
            heads = sqlite_chain_heads(conn, [*lengths, "sub_none"])
        finally:
            conn.close()
        assert set(heads) == set(lengths)  # a subject without entries has no head
        for subject, n in lengths.items():
            assert heads[subject] == last[subject] and heads[subject].seq == n
    finally:
        await appender.close()


def test_the_head_query_is_one_step_on_the_subject_seq_index(tmp_path: Path) -> None:
    path = str(tmp_path / "consent.db")
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    try:
        plan = " ".join(
            str(row[-1])
            for row in conn.execute(f"EXPLAIN QUERY PLAN {audit_writer._HEAD_SQL}", ("sub_a",))
        )
    finally:
        conn.close()
    assert "USING INDEX" in plan and "subject_id=?" in plan, plan
    assert "TEMP B-TREE" not in plan and "SCAN" not in plan, plan  # no sort, no scan
    assert "LIMIT 1" in audit_writer._HEAD_SQL


def test_the_balances_read_finds_the_subjects_consents_by_the_subject_index(
    tmp_path: Path,
) -> None:
    """Not by the status index: that would walk every authorized consent of every subject."""
    path = str(tmp_path / "consent.db")
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    conn = sqlite3.connect(path)
    try:
        plan = [
            str(row[-1])
            for row in conn.execute(f"EXPLAIN QUERY PLAN {fastread.AUTHORIZED_SQL}", ("sub_a",))
        ]
    finally:
        conn.close()
    assert "USING INDEX ix_consent_subject_id (subject_id=?)" in plan[0], plan
    assert not any("ix_consent_status" in step or "SCAN" in step for step in plan), plan


def _fresh_db(tmp_path: Path) -> str:
    path = str(tmp_path / "consent.db")
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    return path


def _other_connection_appends(path: str, subject: str) -> None:
    """Another connection (another process, the ORM) appends one entry to ``subject``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        sqlite_append(conn, {subject: [_pending(subject)]})
        conn.execute("COMMIT")
    finally:
        conn.close()


def _chain(path: str, subject: str) -> list[AuditEntry]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM audit_entry WHERE subject_id = ? ORDER BY seq",  # noqa: S608
            (subject,),
        ).fetchall()
    finally:
        conn.close()
    return [entry_of(r) for r in rows]


async def test_heads_the_appender_committed_are_reused_until_another_connection_commits(
    tmp_path: Path,
) -> None:
    """The appender remembers the heads it wrote and skips their query while nobody else
    commits; after another connection's commit it reads every head again, so the batch chains
    after the other's entry."""
    path = _fresh_db(tmp_path)
    appender = SqliteAppender(path)
    try:
        await appender.append({"sub_a": [_pending("sub_a")], "sub_b": [_pending("sub_b")]})
        assert appender.heads_reused == 0  # nothing remembered yet
        await appender.append({"sub_a": [_pending("sub_a")], "sub_b": [_pending("sub_b")]})
        assert appender.heads_reused == 2
        _other_connection_appends(path, "sub_a")
        got = await appender.append({"sub_a": [_pending("sub_a")], "sub_b": [_pending("sub_b")]})
        assert appender.heads_reused == 2  # both read again, not only the one that moved
        assert got["sub_a"][0].seq == 4 and got["sub_b"][0].seq == 3
        for subject, n in (("sub_a", 4), ("sub_b", 3)):
            chain = _chain(path, subject)
            assert len(chain) == n and verify_chain(chain).ok
    finally:
        await appender.close()


async def test_heads_are_not_reused_across_the_appenders_two_connections(tmp_path: Path) -> None:
    """A batch committed on the loop's thread (append_now, its own connection) and the next on
    the writer's thread: each connection sees the other's commit and reads the heads again."""
    path = _fresh_db(tmp_path)
    appender = SqliteAppender(path)
    try:
        for _ in range(3):
            assert appender.append_now({"sub_a": [_pending("sub_a")]}) is not None
            await appender.append({"sub_a": [_pending("sub_a")]})
        assert appender.heads_reused == 0
        chain = _chain(path, "sub_a")
        assert [e.seq for e in chain] == [1, 2, 3, 4, 5, 6] and verify_chain(chain).ok
    finally:
        await appender.close()


async def test_a_failed_batch_forgets_every_remembered_head(tmp_path: Path) -> None:
    """A batch that did not commit (here an entry the chain refuses; any failure in the
    transaction) leaves no head in memory: the next batch reads them all."""
    path = _fresh_db(tmp_path)
    appender = SqliteAppender(path)
    both = {"sub_a": [_pending("sub_a")], "sub_b": [_pending("sub_b")]}
    try:
        await appender.append(both)
        await appender.append(both)
        assert appender.heads_reused == 2  # remembered
        bad = replace(_pending("sub_b"), outcome="x")
        with pytest.raises(ValueError, match="outcome"):  # the chain refuses it: nothing written
            await appender.append({"sub_a": [_pending("sub_a")], "sub_b": [bad]})
        await appender.append(both)
        assert appender.heads_reused == 2  # forgotten: this batch read them again
        for subject in ("sub_a", "sub_b"):
            chain = _chain(path, subject)
            assert [e.seq for e in chain] == [1, 2, 3] and verify_chain(chain).ok
    finally:
        await appender.close()


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["writer", "inline", "other"]), st.sampled_from(["s1", "s2"])),
        min_size=1,
        max_size=30,
    )
)
def test_any_mix_of_writers_keeps_every_chain_linear_and_complete(
    steps: list[tuple[str, str]],
) -> None:
    """Batches from the writer's thread, the loop's thread and another connection, in any
    order: every chain verifies and holds every entry once, whatever heads were remembered."""

    async def run(path: str) -> None:
        appender = SqliteAppender(path)
        try:
            for who, subject in steps:
                batch = {subject: [_pending(subject)]}
                if who == "writer":
                    await appender.append(batch)
                elif who == "inline":
                    assert appender.append_now(batch) is not None
                else:
                    _other_connection_appends(path, subject)
        finally:
            await appender.close()

    with tempfile.TemporaryDirectory() as tmp:
        path = _fresh_db(Path(tmp))
        asyncio.run(run(path))
        for subject in ("s1", "s2"):
            chain = _chain(path, subject)
            assert verify_chain(chain).ok
            assert [e.seq for e in chain] == list(range(1, 1 + sum(s == subject for _, s in steps)))
