"""The Alembic migrations build the same schema on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlmodel import SQLModel

import consent.store.tables as consent_tables
from consent.store.db import make_engine
from consent.store.migrate import upgrade


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
