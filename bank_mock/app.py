"""The mock-bank application factory: every simulated bank in one aiohttp app."""

from __future__ import annotations

from aiohttp import web

from bank_mock.auth.grants import GrantStore
from bank_mock.clock import Clock, utc_now
from bank_mock.errors import error_middleware
from bank_mock.keys import BANKS, CLOCK, EVENTS, GRANTS, SETTINGS
from bank_mock.notify import NullSink
from bank_mock.settings import BankSettings


def create_app(settings: BankSettings, *, clock: Clock = utc_now) -> web.Application:
    """Build the service: seeded banks, their APIs, pages, events and sandbox."""
    from bank_mock.generate import build_banks

    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[GRANTS] = GrantStore()
    app[BANKS] = build_banks(settings)
    app[EVENTS] = NullSink()  # replaced by the event publisher's setup below
    # Feature modules register their routes (and cleanup contexts) here, one line each.
    # --- feature setup: begin ---
    # --- feature setup: end ---
    return app
