"""The SQLite audit writer finds each chain's last entry with one index step, however long the
chain: the cost of a batch does not grow with the access log."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine
from sqlmodel import SQLModel

from consent.store import audit_writer, fastread
from consent.store.audit_writer import PendingEntry, SqliteAppender, sqlite_chain_heads

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
