"""The aiohttp app: Bot API methods under /bot<token>/ (``botapi``), a test API under /api
(``testapi``), the chat page at / and a webhook deliverer running alongside."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from localchat import testapi
from localchat.botapi import bot_method
from localchat.flood import FloodControl
from localchat.keys import SETTINGS, STORE
from localchat.page import STATIC, index
from localchat.settings import Settings
from localchat.store import Store
from localchat.webhook import run_deliverer
from ops.health import add_health_routes
from ops.metrics import metrics_handler, metrics_middleware


def _deliverer(settings: Settings) -> Callable[[web.Application], AsyncIterator[None]]:
    async def deliverer(app: web.Application) -> AsyncIterator[None]:
        retry = (settings.webhook_retry_s, settings.webhook_max_retry_s)
        async for _ in run_deliverer(app[STORE], *retry):
            yield

    return deliverer


async def _release_waiters(app: web.Application) -> None:
    await app[STORE].close()


def create_app(settings: Settings) -> web.Application:
    """Build the localchat application for ``settings``."""
    app = web.Application(middlewares=[metrics_middleware("localchat")])
    bot_id = int(settings.bot_token.split(":", 1)[0])
    bot = {
        "id": bot_id,
        "is_bot": True,
        "first_name": "chatbank",
        "username": settings.bot_username,
        "can_join_groups": False,
        "can_read_all_group_messages": False,
        "supports_inline_queries": False,
    }
    flood = FloodControl(
        settings.flood_per_chat_per_s,
        settings.flood_global_per_s,
        free_per_s=settings.flood_free_per_s,
    )
    app[SETTINGS] = settings
    app[STORE] = Store(bot=bot, users={u.id: u for u in settings.users}, flood=flood)
    app.cleanup_ctx.append(_deliverer(settings))
    app.on_shutdown.append(_release_waiters)
    app.router.add_post("/bot{token}/{method}", bot_method)
    app.router.add_get("/bot{token}/{method}", bot_method)
    testapi.add_routes(app)
    app.router.add_get("/", index)
    app.router.add_static("/static", STATIC)
    add_health_routes(app, "localchat", lambda app: {})  # nothing outside itself to wait for
    app.router.add_get("/metrics", metrics_handler())
    return app
