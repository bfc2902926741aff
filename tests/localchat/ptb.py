"""Run a real, unchanged python-telegram-bot Application against a localchat server, polling
or through a webhook, for the localchat tests (and anyone else who wants a tiny bot)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from telegram.ext import AIORateLimiter, ApplicationBuilder, BaseHandler

PtbApp = Any  # Application[...] has six type parameters that these tests never narrow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Webhook:
    """Where PTB's own webhook server listens and the secret it expects."""

    port: int
    secret: str
    path: str = "telegram"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.path}"


@asynccontextmanager
async def running_bot(
    base: str,
    token: str,
    handlers: Sequence[BaseHandler[Any, Any, Any]],
    *,
    rate_limiter: AIORateLimiter | None = None,
    webhook: Webhook | None = None,
) -> AsyncIterator[PtbApp]:
    """Start an Application on localchat at ``base``; poll, or serve ``webhook``."""
    builder: Any = ApplicationBuilder().token(token).base_url(f"{base.rstrip('/')}/bot")
    if rate_limiter is not None:
        builder = builder.rate_limiter(rate_limiter)
    app = builder.build()
    for handler in handlers:
        app.add_handler(handler)
    await app.initialize()
    await app.start()
    assert app.updater is not None
    if webhook is None:
        await app.updater.start_polling(poll_interval=0.0, timeout=1)
    else:
        await app.updater.start_webhook(
            listen="127.0.0.1",
            port=webhook.port,
            url_path=webhook.path,
            webhook_url=webhook.url,
            secret_token=webhook.secret,
        )
    try:
        yield app
    finally:
        await app.updater.stop()
        await app.stop()
        await app.shutdown()
