"""SQLite: the balances read answers with the rows it last read while the change counter
(migration 0013: triggers on consent, consent_key and sealed_secret) has not moved, and reads
them again after any change to them, by any connection. So a revocation, a shredded key or a
refreshed token is seen by the very next read, while access-log commits (which invalidate the
reader's page cache) no longer cost the query."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consent.api.keys import BROKER
from consent.store.audit_writer import PendingEntry, sqlite_append
from consent.store.fastread import AUTHORIZED_SQL, COUNTING_TRIGGERS, SqliteReader
from consent.store.migrate import alembic_config, upgrade
from tests.consent.broker_env import start, stop

SUBJECTS = ["sub_a", "sub_b"]
CONSENTS = [("c_a1", "sub_a"), ("c_a2", "sub_a"), ("c_b1", "sub_b")]


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database at the head revision with two subjects and three authorized consents."""
    path = tmp_path_factory.mktemp("counter") / "consent.db"
    upgrade(f"sqlite:///{path}")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "INSERT INTO platform_client (client_id, name, secret_hash, webhook_url,"
            " webhook_secret, kek_version, wrapped_key, created_at)"
            " VALUES ('pc_1', 'bot', 'x', NULL, x'00', 1, x'00', '2026-12-01 00:00:00.000000')"
        )
        for subject in SUBJECTS:
            conn.execute(
                "INSERT INTO subject VALUES (?, 'pc_1', '2026-12-01 00:00:00.000000')", (subject,)
            )
        for n, (consent, subject) in enumerate(CONSENTS):
            _insert_consent(conn, consent, subject, n)
    finally:
        conn.close()
    return path


def _insert_consent(conn: sqlite3.Connection, consent: str, subject: str, n: int) -> None:
    at = f"2026-12-01 00:00:0{n % 10}.000000"
    conn.execute(
        "INSERT INTO consent (consent_id, subject_id, client_id, bank_id, scopes, purpose,"
        " status, created_at, expires_at, state, renewal_noticed, needs_reauthorization)"
        " VALUES (?, ?, 'pc_1', 'northwind', 'balances', 'chat-service', 'authorized', ?,"
        " '2027-12-01 00:00:00.000000', ?, 0, 0)",
        (consent, subject, at, f"state_{consent}"),
    )
    conn.execute("INSERT INTO consent_key VALUES (?, 1, x'01')", (consent,))
    conn.execute(
        "INSERT INTO sealed_secret (consent_id, field, blob) VALUES (?, 'access_token', x'02')",
        (consent,),
    )


def _direct(path: Path, subject: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(AUTHORIZED_SQL, (subject,)).fetchall()]
    finally:
        conn.close()


def _write(path: Path, *statements: tuple[str, tuple[Any, ...]]) -> None:
    """Another connection (another process, the ORM) commits ``statements``."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        for sql, args in statements:
            conn.execute(sql, args)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _audit(path: Path, subject: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        at = datetime(2026, 12, 2, tzinfo=UTC)
        entry = PendingEntry(
            subject, "pc_1", "read.balances", "balances", "chat", (), "allowed", "ok", at
        )
        sqlite_append(conn, {subject: [entry]})
        conn.execute("COMMIT")
    finally:
        conn.close()


# each a change the next read must see, as another connection commits it
CHANGES: dict[str, Any] = {
    "revoke": lambda c: [("UPDATE consent SET status = 'revoked' WHERE consent_id = ?", (c,))],
    "reauthorize": lambda c: [
        ("UPDATE consent SET status = 'authorized' WHERE consent_id = ?", (c,))
    ],
    "shred": lambda c: [("DELETE FROM consent_key WHERE consent_id = ?", (c,))],
    "rekey": lambda c: [("INSERT OR REPLACE INTO consent_key VALUES (?, 2, x'03')", (c,))],
    "refresh": lambda c: [
        (
            "UPDATE sealed_secret SET blob = randomblob(8)"
            " WHERE consent_id = ? AND field = 'access_token'",
            (c,),
        )
    ],
    "drop_token": lambda c: [("DELETE FROM sealed_secret WHERE consent_id = ?", (c,))],
}


def test_the_head_revision_keeps_the_counter_and_every_trigger(migrated: Path) -> None:
    conn = sqlite3.connect(migrated)
    try:
        names = {
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        }
        assert names >= COUNTING_TRIGGERS
        before = conn.execute("SELECT n FROM consent_change").fetchone()[0]
    finally:
        conn.close()
    _write(migrated, ("UPDATE consent SET purpose = purpose WHERE consent_id = 'c_a1'", ()))
    _audit(migrated, "sub_a")  # not counted: the access log is not what the read returns
    conn = sqlite3.connect(migrated)
    try:
        assert conn.execute("SELECT n FROM consent_change").fetchone()[0] == before + 1
    finally:
        conn.close()


async def test_rows_are_reused_until_a_counted_table_changes(
    migrated: Path, tmp_path: Path
) -> None:
    path = tmp_path / "consent.db"
    shutil.copy(migrated, path)
    reader = SqliteReader(str(path))
    await reader.open()
    try:
        first = await reader.authorized("sub_a")
        _audit(path, "sub_a")  # another connection's commit to another table
        assert await reader.authorized("sub_a") == first and reader.reused == 1
        for name, change in CHANGES.items():
            _write(path, *change("c_a1"))
            got = [tuple(r) for r in await reader.authorized("sub_a")]
            assert got == _direct(path, "sub_a"), name
        assert reader.reused == 1  # every change was read afresh
        _write(path, *CHANGES["revoke"]("c_a1"))
        assert [r[0] for r in await reader.authorized("sub_a")] == ["c_a2"]
    finally:
        await reader.close()


async def test_a_database_without_the_counter_reads_every_time(tmp_path: Path) -> None:
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    path = tmp_path / "consent.db"
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)  # the tables without the migrations' triggers
    engine.dispose()
    reader = SqliteReader(str(path))
    await reader.open()
    try:
        for _ in range(3):
            assert await reader.authorized("sub_a") == []
        assert reader.reused == 0
    finally:
        await reader.close()


async def test_a_missing_trigger_turns_the_reuse_off(migrated: Path, tmp_path: Path) -> None:
    """A later migration that rebuilds a counted table drops its triggers: then nothing is
    reused, rather than a revocation missed."""
    path = tmp_path / "consent.db"
    shutil.copy(migrated, path)
    _write(path, ("DROP TRIGGER tr_consent_update_counts", ()))
    reader = SqliteReader(str(path))
    await reader.open()
    try:
        await reader.authorized("sub_a")
        _write(path, *CHANGES["revoke"]("c_a1"))
        assert [r[0] for r in await reader.authorized("sub_a")] == ["c_a2"]
        assert reader.reused == 0
    finally:
        await reader.close()


def test_the_downgrade_removes_the_counter(tmp_path: Path) -> None:
    from alembic.command import downgrade

    url = f"sqlite:///{tmp_path / 'consent.db'}"
    upgrade(url)
    downgrade(alembic_config(url), "0012")
    conn = sqlite3.connect(tmp_path / "consent.db")
    try:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    finally:
        conn.close()
    assert "consent_change" not in names and not names & COUNTING_TRIGGERS
    upgrade(url)  # and it comes back


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("read"), st.sampled_from(SUBJECTS)),
            st.tuples(st.just("audit"), st.sampled_from(SUBJECTS)),
            st.tuples(st.sampled_from(sorted(CHANGES)), st.sampled_from([c for c, _ in CONSENTS])),
            st.tuples(st.just("link"), st.sampled_from(SUBJECTS)),
        ),
        max_size=25,
    )
)
def test_every_read_equals_the_query_whatever_was_committed_between(
    migrated: Path, steps: list[tuple[str, str]]
) -> None:
    """Reads, access-log commits and changes by other connections in any order: every read
    gives exactly what the query gives at that moment."""

    async def run(path: Path) -> None:
        reader = SqliteReader(str(path))
        await reader.open()
        try:
            linked = 0
            for what, arg in steps:
                if what == "read":
                    got = [tuple(r) for r in await reader.authorized(arg)]
                    assert got == _direct(path, arg)
                elif what == "audit":
                    _audit(path, arg)
                elif what == "link":
                    linked += 1
                    conn = sqlite3.connect(path, isolation_level=None)
                    try:
                        _insert_consent(conn, f"c_new{linked}", arg, linked)
                    finally:
                        conn.close()
                else:
                    _write(path, *CHANGES[what](arg))
            for subject in SUBJECTS:
                assert [tuple(r) for r in await reader.authorized(subject)] == _direct(
                    path, subject
                )
        finally:
            await reader.close()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "consent.db"
        shutil.copy(migrated, path)
        asyncio.run(run(path))


async def test_the_broker_reuses_the_rows_and_still_sees_a_revocation_at_once(
    tmp_path: Path,
) -> None:
    """Through the broker on a migrated SQLite database: repeated reads reuse the rows, and a
    revocation is seen by the next read."""
    env = await start(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'broker.db'}")
    try:
        broker = env.broker.app[BROKER]
        assert isinstance(broker.reader, SqliteReader)
        subject = await env.subject()
        consent = await env.link(subject)
        for _ in range(3):
            resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
            assert resp.status == 200 and (await resp.json())["balances"]
        assert broker.reader.reused >= 1
        resp = await env.broker.delete(
            f"/v1/subjects/{subject}/consents/{consent}", headers=env.auth()
        )
        assert resp.status == 200
        resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
        assert resp.status == 200
        assert await resp.json() == {"balances": [], "errors": [], "unavailable": []}
    finally:
        await stop(env)
