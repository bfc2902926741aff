"""The application keys shared by the Bot API and the test API handlers."""

from __future__ import annotations

from aiohttp import web

from localchat.settings import Settings
from localchat.store import Store

STORE = web.AppKey("store", Store)
SETTINGS = web.AppKey("settings", Settings)
