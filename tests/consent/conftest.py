"""Fixtures for the broker: databases (SQLite always, PostgreSQL when configured)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatbank.scratch_db import scratch_databases

PG_ENV = "CHATBANK_TEST_POSTGRES_URL"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}"


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database, dropped afterwards; skipped when not configured."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (CI sets it); PostgreSQL tests skipped")
    async with scratch_databases(base, 1) as (url,):
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on SQLite and on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url
