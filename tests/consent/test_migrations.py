"""The Alembic migrations build the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from alembic.command import downgrade as alembic_downgrade
from alembic.command import upgrade as alembic_upgrade
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel

import consent.store.tables as consent_tables
from consent.store.db import make_engine
from consent.store.migrate import alembic_config, upgrade


async def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    return names


async def test_upgrading_to_head_creates_every_table_and_is_repeatable(database_url: str) -> None:
    await asyncio.to_thread(upgrade, database_url)
    await asyncio.to_thread(upgrade, database_url)  # a second run changes nothing
    tables = await _tables(database_url)
    # only the broker's own tables: SQLModel's shared metadata also holds the bot's and any
    # other package's that this test process happened to import
    broker = {
        model.__tablename__
        for model in vars(consent_tables).values()
        if isinstance(model, type) and issubclass(model, SQLModel) and hasattr(model, "__table__")
    }
    assert len(broker) >= 10
    assert broker <= tables
    assert "alembic_version" in tables


Statement = tuple[str, dict[str, object]]


async def _exec(url: str, *statements: str | Statement) -> list[tuple[object, ...]]:
    """Run ``statements`` (SQL, or SQL with bound values) in one transaction; the last one's
    rows."""
    engine = make_engine(url)
    rows: list[tuple[object, ...]] = []
    try:
        async with engine.begin() as conn:
            for statement in statements:
                sql, values = statement if isinstance(statement, tuple) else (statement, {})
                result = await conn.execute(text(sql), values)
                if result.returns_rows:
                    rows = [tuple(r) for r in result.all()]
    finally:
        await engine.dispose()
    return rows


NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
CONSENT = (
    "INSERT INTO consent (consent_id, subject_id, client_id, bank_id, scopes, purpose, status, "
    "created_at, expires_at, state, renewal_noticed, needs_reauthorization) VALUES (:id, 'sub_1', "
    "'cli_1', 'northwind', 'fraud_alerts', 'chat-service', 'authorized', :now, :now, :state, "
    ":no, :no)"
)
ALERT = "INSERT INTO fraud_alert (alert_id, handle, consent_id) VALUES (:alert, :handle, :consent)"


async def test_alerts_move_to_one_row_per_consent_and_back(database_url: str) -> None:
    """0007 keeps the alerts already stored (and their handles, so buttons in chats keep
    working), lets a second consent hold the same bank alert, and downgrades to one row per
    bank alert again."""
    await asyncio.to_thread(alembic_upgrade, alembic_config(database_url), "0006")
    await _exec(
        database_url,
        (
            "INSERT INTO platform_client (client_id, name, secret_hash, webhook_secret, "
            "kek_version, wrapped_key, created_at) VALUES ('cli_1', 'bot', 'h', :blob, 1, :blob, "
            ":now)",
            {"blob": b"\x00", "now": NOW},
        ),
        (
            "INSERT INTO subject (subject_id, client_id, created_at) "
            "VALUES ('sub_1', 'cli_1', :now)",
            {"now": NOW},
        ),
        (CONSENT, {"id": "con_a", "state": "s1", "now": NOW, "no": False}),
        (CONSENT, {"id": "con_b", "state": "s2", "now": NOW, "no": False}),
        (ALERT, {"alert": "fa-1", "handle": "alt_old", "consent": "con_a"}),
        "UPDATE fraud_alert SET answer = 'it_was_me'",
    )
    await asyncio.to_thread(upgrade, database_url)
    await _exec(database_url, (ALERT, {"alert": "fa-1", "handle": "alt_new", "consent": "con_b"}))
    rows = await _exec(
        database_url, "SELECT consent_id, alert_id, handle, answer FROM fraud_alert ORDER BY 1"
    )
    assert rows == [("con_a", "fa-1", "alt_old", "it_was_me"), ("con_b", "fa-1", "alt_new", None)]
    with pytest.raises(IntegrityError):  # still once per consent
        await _exec(database_url, (ALERT, {"alert": "fa-1", "handle": "x", "consent": "con_b"}))
    await asyncio.to_thread(alembic_downgrade, alembic_config(database_url), "0006")
    rows = await _exec(database_url, "SELECT consent_id, alert_id, handle FROM fraud_alert")
    assert rows == [("con_a", "fa-1", "alt_old")]
    await asyncio.to_thread(upgrade, database_url)  # and up again
