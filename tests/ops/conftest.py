"""Fixtures for the operability tests: the bot's whole system on SQLite."""

from __future__ import annotations

from tests.bot.conftest import system
from tests.consent.conftest import sqlite_url

__all__ = ["sqlite_url", "system"]
