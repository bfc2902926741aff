"""The mock-bank application factory: every simulated bank in one aiohttp app."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from bank_mock import (
    agent,
    cards,
    dashboard,
    directory,
    faults,
    pages,
    payments,
    sandbox,
    sandbox_events,
    support,
)
from bank_mock.auth import authorize, clients, consents, token
from bank_mock.auth.grants import GrantStore
from bank_mock.auth.store import AUTH, AuthStore
from bank_mock.clock import Clock, utc_now
from bank_mock.disk import Disk
from bank_mock.errors import error_middleware
from bank_mock.fraud import publisher, signing
from bank_mock.generate import build_banks
from bank_mock.keys import BANKS, CLOCK, EVENTS, GRANTS, SETTINGS
from bank_mock.notify import NullSink
from bank_mock.obie import accounts
from bank_mock.obie.fapi import fapi_middleware
from bank_mock.settings import BankSettings
from ops.health import Check, add_health_routes
from ops.metrics import metrics_handler, metrics_middleware

_OPENAPI = Path(__file__).with_name("openapi.json")


async def serve_openapi(request: web.Request) -> web.FileResponse:
    """The service's own OpenAPI file (the non-OBIE extensions)."""
    return web.FileResponse(_OPENAPI, headers={"Content-Type": "application/json"})


def create_app(settings: BankSettings, *, clock: Clock = utc_now) -> web.Application:
    """Build the service: seeded banks, their APIs, pages, events and sandbox."""
    app = web.Application(
        middlewares=[metrics_middleware("bank_mock"), fapi_middleware, error_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    disk = Disk(Path(settings.data_dir)) if settings.data_dir else None
    app[GRANTS] = GrantStore(disk)
    app[AUTH] = AuthStore(disk)
    app[BANKS] = build_banks(settings)
    if disk is not None:
        for bank in app[BANKS].values():
            bank.restore(disk)

        async def close_disk(app: web.Application) -> None:
            disk.close()

        app.on_cleanup.append(close_disk)
    app[EVENTS] = NullSink()  # replaced by the event publisher's setup below
    pages.setup(app)
    directory.setup(app)
    signing.setup(app)
    publisher.setup(app)  # replaces the NullSink with signed, retried event delivery
    sandbox.setup(app)  # before faults: the sandbox guard must see requests first
    faults.setup(app)
    for module in (clients, token, consents, authorize, accounts, cards, dashboard, sandbox_events):
        module.setup(app)
    support.setup(app, disk)
    agent.setup(app)
    payments.setup(app)
    app.router.add_get("/openapi.json", serve_openapi)
    add_health_routes(app, "bank_mock", readiness_checks)
    app.router.add_get("/metrics", metrics_handler())
    return app


def readiness_checks(app: web.Application) -> dict[str, Check]:
    """The banks are generated and each has its event-signing key."""

    async def banks() -> None:
        if not app[BANKS]:
            raise LookupError("no banks")

    async def keys() -> None:
        signers: dict[str, signing.Signer] = app[signing.SIGNERS]
        if any(bank_id not in signers for bank_id in app[BANKS]):
            raise LookupError("a bank has no signing key")

    return {"banks": banks, "signing_keys": keys}
