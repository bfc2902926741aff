"""The consent broker's application factory."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import text

from consent.api import badhttp, callback, events, outbox, platform
from consent.api.errors import InFlight, broker_middleware
from consent.api.keys import BROKER, JWKS, RECEIPTS, RELAY
from consent.events.batch import EventWriter, SqliteEventWriter
from consent.events.pgbatch import PostgresEventWriter
from consent.events.verify import JwksCache
from consent.metrics import BankUrls, refresher, url_call_observer
from consent.outbox.purge import purge_forever
from consent.outbox.relay import Relay
from consent.receipts.worker import ReceiptWorker
from consent.service.broker import Broker
from consent.service.lifecycle import sweep_forever
from consent.service.ratelimit import Limits, TokenBuckets
from consent.settings import BrokerSettings
from consent.store.audit_writer import AuditWriter, appender_for
from consent.store.db import make_engine, session_factory
from consent.store.fastread import PostgresReader, SqliteReader, sqlite_path
from consent.store.locks import registry
from consent.store.migrate import upgrade_async
from consent.store.pgpool import postgres_dsn
from consent.store.ratelimit_pg import PostgresRateLimiter
from consent.vault.source import KeySource
from ops.health import Check, add_health_routes
from ops.metrics import metrics_handler

_OPENAPI = Path(__file__).with_name("openapi.json")
AUDIT_LINGER_S = 0.002  # SQLite (measured there; PostgreSQL keeps batching without a wait)


def key_source(settings: BrokerSettings) -> KeySource:
    """The KEK ring from settings, or from the key file (created on first run)."""
    if settings.keyring.get_secret_value():
        return KeySource(spec=settings.keyring.get_secret_value())
    return KeySource(path=Path(settings.keyring_file))


def create_app(
    settings: BrokerSettings,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    migrate: bool = True,
) -> web.Application:
    """Build the broker: storage (migrated on start), vault, bank clients, routes."""
    badhttp.install()
    inflight = InFlight()
    app = web.Application(middlewares=[broker_middleware(inflight)], client_max_size=64 * 1024)
    keys = key_source(settings)
    keys.ring  # noqa: B018 - fail at start-up, not at the first request, if the ring is unusable

    async def resources(app: web.Application) -> AsyncIterator[None]:
        if migrate:
            await upgrade_async(settings.database_url)
        engine = make_engine(settings.database_url)
        path = sqlite_path(settings.database_url)
        dsn = postgres_dsn(settings.database_url)
        bank_urls = BankUrls(lambda: broker.bank_clients())
        # no TraceConfig on this session: the bank clients count their own calls (consent.metrics)
        async with aiohttp.ClientSession() as http:
            sessions = session_factory(engine)
            # the one choice of rate-limit backend: on PostgreSQL several broker processes may
            # serve one subject, so the subjects' buckets live in the database
            shared_limiter: PostgresRateLimiter | None = None
            if dsn is not None:
                shared_limiter = PostgresRateLimiter(dsn, settings.reads_per_minute)
                await shared_limiter.open()
            limits = Limits(
                subjects=shared_limiter or TokenBuckets(settings.reads_per_minute),
                clients=TokenBuckets(settings.client_requests_per_minute),
            )
            broker = Broker(settings, keys, engine, sessions, http, clock, limits=limits)
            # the hot paths skip SQLAlchemy on both databases (consent.store.fastread and
            # consent.store.audit_writer)
            broker.audit_writer = AuditWriter(
                appender_for(settings.database_url, settings.audit_sync),
                registry(sessions),
                # a lone request's entries are committed on the loop's thread (see
                # consent.store.audit_writer): nothing else waits for the loop meanwhile
                inline=lambda: inflight.count <= 1,
                # under concurrent load, a batch waits this long for the others' entries (one
                # sync for several requests: bench.broker_wrk, 64 connections, CPU per request
                # 1.28 -> 1.10 and 0.97 -> 0.91 ms in two runs; 4 ms gained less)
                linger_s=AUDIT_LINGER_S if path is not None else 0.0,
            )
            await broker.audit_writer.start()
            if path is not None:
                broker.reader = SqliteReader(path)
            elif dsn is not None:
                broker.reader = PostgresReader(dsn)
            if broker.reader is not None:
                await broker.reader.open()
            event_writer: EventWriter | None = None
            if path is not None:
                event_writer = SqliteEventWriter(broker, path)
            elif dsn is not None:
                event_writer = PostgresEventWriter(broker, dsn)
            if event_writer is not None:
                broker.event_writer = event_writer
                event_writer.start()
            app[BROKER] = broker
            app[JWKS] = JwksCache(http, observe=url_call_observer(bank_urls))
            app[RELAY] = relay = Relay(broker)
            app[RECEIPTS] = worker = ReceiptWorker(broker, relay.wake.set)
            tasks = [
                asyncio.create_task(relay.run_forever(settings.relay_idle_s)),
                asyncio.create_task(worker.run_forever()),
                asyncio.create_task(sweep_forever(broker, settings.sweep_interval_s)),
                asyncio.create_task(
                    purge_forever(
                        broker,
                        timedelta(hours=settings.outbox_retention_hours),
                        settings.sweep_interval_s,
                    )
                ),
            ]
            yield
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if event_writer is not None:
                await event_writer.close()
            await broker.audit_writer.close()  # flushes what is queued
            if broker.reader is not None:
                await broker.reader.close()
            if shared_limiter is not None:
                await shared_limiter.close()
        await engine.dispose()

    app.cleanup_ctx.append(resources)
    app.router.add_routes(platform.routes)
    app.router.add_routes(callback.routes)
    app.router.add_routes(events.routes)
    app.router.add_routes(outbox.routes)
    app.router.add_get("/openapi.json", _openapi)
    add_health_routes(app, "consent", readiness_checks)
    app.router.add_get("/metrics", metrics_handler(lambda: _refresh(app)))
    return app


async def _refresh(app: web.Application) -> None:
    broker = app.get(BROKER)
    if broker is not None:
        await refresher(broker.bank_clients, broker.sessions, broker.clock)()


def readiness_checks(app: web.Application) -> dict[str, Check]:
    """The database answers, the key ring opens, the bank directory is reachable."""

    def broker() -> Broker:
        found = app.get(BROKER)
        if found is None:
            raise LookupError("not started")
        return found

    async def database() -> None:
        async with broker().engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def keys() -> None:
        broker().ring  # noqa: B018 - opening the ring is the check

    async def bank_directory() -> None:
        b = broker()
        async with b.http.get(b.settings.bank_directory_url) as resp:
            resp.raise_for_status()

    return {"database": database, "keys": keys, "bank_directory": bank_directory}


async def _openapi(request: web.Request) -> web.FileResponse:
    return web.FileResponse(_OPENAPI, headers={"Content-Type": "application/json"})
