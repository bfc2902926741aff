"""The running bot: database, broker client, the PTB Application (polling or webhook) and the
bot's own HTTP server (broker events, and the Telegram webhook in webhook mode)."""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from telegram import Update

from bot import redact
from bot.app import build_application
from bot.broker import BrokerClient, Observer
from bot.context import ChatApp, Services, utc_now
from bot.events import BrokerEvents
from bot.settings import BotSettings
from bot.store.db import make_engine, session_factory, upgrade_async
from ops.health import CHECK_TIMEOUT_S, Check, add_health_routes
from ops.metrics import metrics_handler, metrics_middleware

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name


class BotRuntime:
    """Start and stop everything the bot needs; used by ``python -m bot`` and ``chatbank up``."""

    def __init__(
        self,
        settings: BotSettings,
        *,
        clock: Callable[[], datetime] = utc_now,
        observe: Observer | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.observe = observe
        self.application: ChatApp | None = None
        self.events: BrokerEvents | None = None
        self._runner: web.AppRunner | None = None
        self._engine: Any = None
        self.port = settings.port

    async def start(self) -> None:
        redact.install()
        settings = self.settings
        await upgrade_async(settings.database_url)
        self._engine = make_engine(settings.database_url)
        broker = BrokerClient(
            settings.broker_url,
            settings.broker_credential.get_secret_value(),
            timeout_s=settings.broker_timeout_s,
            observe=self.observe,
        )
        services = Services(settings, broker, session_factory(self._engine), self.clock)
        self.application = application = build_application(services)
        await application.initialize()
        if application.post_init is not None:  # run_polling() would call it; we start by hand
            await application.post_init(application)
        await application.start()
        self.events = BrokerEvents(services, application.bot)
        await self.events.open()
        self._runner = web.AppRunner(self._web_app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, settings.host, settings.port)
        await site.start()
        if settings.port == 0:
            self.port = int(self._runner.addresses[0][1])
        if settings.mode == "webhook":
            await application.bot.set_webhook(
                self.telegram_webhook_url(),
                secret_token=settings.telegram_secret_token.get_secret_value(),
                allowed_updates=["message", "callback_query"],
            )
        else:
            assert application.updater is not None
            await application.bot.delete_webhook()
            await application.updater.start_polling(
                poll_interval=0.0,
                timeout=settings.poll_timeout_s,
                allowed_updates=["message", "callback_query"],
            )

    def base_url(self) -> str:
        s = self.settings
        return (s.public_url or f"http://{s.host}:{self.port}").rstrip("/")

    def events_url(self) -> str:
        return f"{self.base_url()}/broker/events"

    def telegram_webhook_url(self) -> str:
        return f"{self.base_url()}/telegram"

    def _web_app(self) -> web.Application:
        assert self.events is not None
        app = web.Application(client_max_size=1024 * 1024, middlewares=[metrics_middleware("bot")])
        app.router.add_post("/broker/events", self.events.handle)
        add_health_routes(app, "bot", self._readiness, lambda: {"mode": self.settings.mode})
        app.router.add_get("/metrics", metrics_handler())
        if self.settings.mode == "webhook":
            app.router.add_post("/telegram", self._telegram)
        return app

    def _readiness(self, app: web.Application) -> dict[str, Check]:
        """The bot's database answers and the broker is reachable."""

        async def database() -> None:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        async def broker() -> None:
            timeout = aiohttp.ClientTimeout(total=CHECK_TIMEOUT_S)
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.get(f"{self.settings.broker_url.rstrip('/')}/healthz") as resp,
            ):
                resp.raise_for_status()

        return {"database": database, "broker": broker}

    async def _telegram(self, request: web.Request) -> web.Response:
        """Telegram's webhook call: check the secret token, queue the update."""
        assert self.application is not None
        expected = self.settings.telegram_secret_token.get_secret_value().encode()
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):
            return web.json_response({"error": "forbidden"}, status=403)
        try:
            body = json.loads(await request.read())
            if not isinstance(body, dict) or type(body.get("update_id")) is not int:
                raise ValueError("not an update")
            update = Update.de_json(body, self.application.bot)
        except (ValueError, KeyError, TypeError, AttributeError):
            return web.json_response({"error": "bad_update"}, status=400)
        await self.application.update_queue.put(update)
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        application = self.application
        if application is not None:
            if application.updater is not None and application.updater.running:
                await application.updater.stop()
            if application.running:
                await application.stop()
            await application.shutdown()
            services = application.bot_data.get("chatbank.services")
            if services is not None:
                await services.broker.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self.events is not None:
            await self.events.close()
        if self._engine is not None:
            await self._engine.dispose()
