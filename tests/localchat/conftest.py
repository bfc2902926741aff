"""Fixtures shared by the localchat tests (``sqlite_url`` for the whole-system browser test)."""

from tests.consent.conftest import sqlite_url
from tests.localchat.browser import page, shots

__all__ = ["page", "shots", "sqlite_url"]
