"""Delivers pending updates to the bot's webhook while one is set."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import aiohttp

from localchat.store import Store

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
RETRY_AFTER_FAILURE = 1.0


async def deliver_forever(store: Store, session: aiohttp.ClientSession) -> None:
    """POST each pending update, oldest first; woken by store changes, never polling."""
    while True:
        await store.wait_until(lambda: bool(store.webhook_url and store.updates), 3600.0)
        if not (store.webhook_url and store.updates):
            continue
        update = store.updates[0]
        headers = {SECRET_HEADER: store.webhook_secret} if store.webhook_secret else {}
        try:
            async with session.post(store.webhook_url, json=update, headers=headers) as resp:
                delivered = resp.status < 300
        except aiohttp.ClientError as exc:
            logger.warning("webhook delivery failed: %s", type(exc).__name__)
            delivered = False
        if delivered:
            if store.updates and store.updates[0] is update:
                store.updates.pop(0)
        else:
            await store.wait_until(store.changed_since(store.version), RETRY_AFTER_FAILURE)


async def run_deliverer(store: Store) -> AsyncIterator[None]:
    """Start the deliverer with the app and stop it cleanly at shutdown."""
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(deliver_forever(store, session))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
