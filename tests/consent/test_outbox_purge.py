"""Delivered outbox payloads do not stay in clear: the purge deletes each delivered message once
it is older than the retention, leaves undelivered ones to the relay, and on SQLite leaves no
copy of the payload in the database file or its WAL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from consent.api.keys import BROKER
from consent.outbox.purge import purge_delivered
from consent.settings import BrokerSettings
from consent.store.tables import OutboxRow
from tests.consent.broker_env import Env, start, stop

RETENTION = timedelta(hours=24)


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


def _row(name: str, created: datetime, delivered: datetime | None) -> OutboxRow:
    payload = {"merchant": f"Merchant {name}", "amount": "123.45", "card_last4": "4242"}
    return OutboxRow(
        id=f"msg_{name}",
        client_id="pc_x",
        subject_id="sub_x",
        kind="fraud_alert",
        payload=json.dumps(payload),
        next_attempt_at=created,
        delivered_at=delivered,
        created_at=created,
    )


async def test_delivered_messages_older_than_the_retention_are_deleted(
    env: Env, database_url: str, tmp_path: Path
) -> None:
    broker = env.broker.app[BROKER]
    now = env.clock.now
    async with broker.sessions() as session:
        for row in [
            _row("old", now - timedelta(days=3), now - timedelta(hours=25)),
            _row("recent", now - timedelta(days=3), now - timedelta(hours=23)),
            _row("pending", now - timedelta(days=3), None),  # still the relay's to deliver
        ]:
            session.add(row)
        await session.commit()

    # the broker's own periodic purge (first run at start-up) may get to "old" first on a busy
    # machine, so what counts is what is left, not which of the two purges deleted it
    assert await purge_delivered(broker, RETENTION) in (0, 1)
    async with broker.sessions() as session:
        left = sorted(r.id for r in (await session.exec(select(OutboxRow))).all())
    assert left == ["msg_pending", "msg_recent"]
    assert await purge_delivered(broker, RETENTION) == 0

    env.clock.now = now + timedelta(hours=2)
    assert await purge_delivered(broker, RETENTION) == 1
    if database_url.startswith("sqlite"):
        db = tmp_path / "consent.db"
        files = [db, db.with_name(db.name + "-wal")]
        on_disk = b"".join(f.read_bytes() for f in files if f.exists())
        assert b"Merchant old" not in on_disk and b"Merchant recent" not in on_disk
        assert b"Merchant pending" in on_disk


def test_the_retention_is_bounded() -> None:
    assert BrokerSettings().outbox_retention_hours == 24
    with pytest.raises(ValueError, match="less than or equal"):
        BrokerSettings(outbox_retention_hours=24 * 31)
    with pytest.raises(ValueError, match="greater than"):
        BrokerSettings(outbox_retention_hours=0)
