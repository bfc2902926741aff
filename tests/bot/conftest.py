"""Fixtures for the bot: the whole system on SQLite; PostgreSQL for the storage tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bot.system import System, start_system, stop_system
from tests.consent.conftest import database_url, postgres_url, sqlite_url

__all__ = ["database_url", "postgres_url", "sqlite_url"]


@pytest.fixture
async def system(tmp_path: Path, sqlite_url: str) -> AsyncIterator[System]:
    s = await start_system(tmp_path, sqlite_url)
    yield s
    await stop_system(s)
