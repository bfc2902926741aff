"""Typed application slots shared by the mock-bank modules."""

from __future__ import annotations

from aiohttp import web

from bank_mock.auth.grants import GrantStore
from bank_mock.clock import Clock
from bank_mock.notify import EventSink
from bank_mock.settings import BankSettings
from bank_mock.state import BankState

SETTINGS = web.AppKey("settings", BankSettings)
BANKS = web.AppKey("banks", dict[str, BankState])
GRANTS = web.AppKey("grants", GrantStore)


def bank_of(request: web.Request) -> BankState:
    """The bank named by the ``{bank_id}`` path segment, or a 404."""
    from bank_mock.errors import BankError

    bank_id = request.match_info.get("bank_id", "")
    bank = request.app[BANKS].get(bank_id)
    if bank is None:
        raise BankError(404, f"Unknown bank {bank_id[:40]!r}", path="bank_id")
    return bank


CLOCK: web.AppKey[Clock] = web.AppKey("clock")
EVENTS: web.AppKey[EventSink] = web.AppKey("events")
