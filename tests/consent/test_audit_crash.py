"""A broker process killed outright (SIGKILL: no shutdown, no flush) right after it answered
reads has every one of them in the access log: a read is answered only once its entry is
committed (group commit), never from a queue that a crash would lose. So with the log synced to
disk at every commit (the default) and with ``CONSENT_AUDIT_SYNC=normal`` (synced at
checkpoints: what a power cut, not a crash, may take)."""

from __future__ import annotations

import asyncio
import base64
import multiprocessing as mp
import os
import secrets
import signal
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bench.bank_transactions import _free_port, _wait_up
from bench.broker_balances import FAST
from bench.services import ADMIN, link, serve_bank, serve_broker
from consent.domain.audit import verify_chain
from consent.store.audit import entry_of


@pytest.mark.parametrize("sync", ["full", "normal"])
@pytest.mark.parametrize("together", [4, 1], ids=["batched", "one-at-a-time"])
async def test_every_answered_read_survives_a_kill_of_the_broker(
    tmp_path: Path, sync: str, together: int
) -> None:
    """``together`` readers per subject at once: 16 requests in flight commit in batches on
    the writer's thread; one request at a time commits on the event loop's thread."""
    ctx = mp.get_context("spawn")
    ring = f"1:{base64.b64encode(secrets.token_bytes(32)).decode()}"
    bank_port, broker_port = _free_port(), _free_port()
    bank_url, broker_url = f"http://127.0.0.1:{bank_port}", f"http://127.0.0.1:{broker_port}"
    db_path = tmp_path / "consent.db"
    bank = ctx.Process(target=serve_bank, args=(bank_port, 3), daemon=True)
    bank.start()
    broker = ctx.Process(
        target=serve_broker,
        args=(
            broker_port,
            bank_port,
            f"sqlite+aiosqlite:///{db_path}",
            ring,
            {**FAST, "audit_sync": sync},
        ),
        daemon=True,
    )
    try:
        await _wait_up(f"{bank_url}/banks")
        broker.start()
        await _wait_up(f"{broker_url}/openapi.json")
        answered: dict[str, int] = {}
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{broker_url}/admin/v1/platform-clients",
                json={"name": "crash"},
                headers={"Authorization": f"Bearer {ADMIN}"},
            ) as resp:
                credential = (await resp.json())["credential"]
            headers = {"Authorization": f"Bearer {credential}", "X-Purpose": "chat-service"}
            subjects = []
            for _ in range(4):
                async with http.post(f"{broker_url}/v1/subjects", headers=headers) as resp:
                    subjects.append((await resp.json())["subject_id"])
                await link(http, broker_url, bank_url, headers, subjects[-1], ["balances"])

            async def reader(subject: str) -> None:
                for _ in range(12):
                    url = f"{broker_url}/v1/subjects/{subject}/balances"
                    async with http.get(url, headers=headers) as resp:
                        assert resp.status == 200, await resp.text()
                        assert (await resp.json())["balances"]
                    answered[subject] = answered.get(subject, 0) + 1

            if together > 1:  # 16 readers at once, so that entries are committed in batches
                await asyncio.gather(*(reader(s) for s in subjects for _ in range(together)))
            else:  # one request in flight at a time
                for s in subjects:
                    for _ in range(4):
                        await reader(s)
            assert broker.pid is not None
            os.kill(broker.pid, signal.SIGKILL)  # at once: nothing is flushed on the way out
        broker.join(10)
        conn = sqlite3.connect(db_path)
        try:
            for subject in subjects:
                rows = conn.execute(
                    "SELECT subject_id, seq, client_id, action, scope, purpose, fields, outcome,"
                    " reason, at, prev_hash, entry_hash FROM audit_entry WHERE subject_id = ?"
                    " ORDER BY seq",
                    (subject,),
                ).fetchall()
                entries = [entry_of(r) for r in rows]
                reads = [e for e in entries if e.action == "read.balances"]
                assert len(reads) == answered[subject] == 48
                assert all(e.outcome == "allowed" for e in reads)
                assert verify_chain(entries).ok
        finally:
            conn.close()
    finally:
        for proc in (broker, bank):
            if proc.is_alive():
                proc.kill()
            if proc.pid is not None:
                proc.join(10)


@pytest.mark.parametrize(("sync", "pragma"), [("full", 2), ("normal", 1)])
async def test_the_writer_syncs_as_configured(tmp_path: Path, sync: str, pragma: int) -> None:
    from sqlalchemy import create_engine
    from sqlmodel import SQLModel

    from consent.settings import BrokerSettings
    from consent.store.audit_writer import PendingEntry, SqliteAppender, appender_for

    path = tmp_path / "consent.db"
    engine = create_engine(f"sqlite:///{path}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    settings = BrokerSettings(database_url=f"sqlite+aiosqlite:///{path}", audit_sync=sync)
    appender = appender_for(settings.database_url, settings.audit_sync)
    assert isinstance(appender, SqliteAppender)
    try:
        at = datetime(2026, 11, 20, tzinfo=UTC)
        entry = PendingEntry(
            "sub_a", "pc_1", "read.balances", None, "chat-service", (), "allowed", "ok", at
        )
        await appender.append({"sub_a": [entry]})
        conn = appender._conn
        assert conn is not None
        setting = await asyncio.get_running_loop().run_in_executor(
            appender._executor, lambda: conn.execute("PRAGMA synchronous").fetchone()[0]
        )
        assert setting == pragma
        assert appender.append_now({"sub_a": [entry]}) is not None  # on this (the loop's) thread
        inline = appender._inline
        assert inline is not None
        assert inline.execute("PRAGMA synchronous").fetchone()[0] == pragma
    finally:
        await appender.close()


def test_the_default_is_full_and_nothing_else_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from consent.settings import BrokerSettings
    from consent.store.audit_writer import SqliteAppender

    assert BrokerSettings().audit_sync == "full"
    monkeypatch.setenv("CONSENT_AUDIT_SYNC", "normal")
    assert BrokerSettings().audit_sync == "normal"
    monkeypatch.setenv("CONSENT_AUDIT_SYNC", "off")
    with pytest.raises(ValidationError):
        BrokerSettings()
    with pytest.raises(ValueError, match="full or normal"):
        SqliteAppender("x.db", "off")
