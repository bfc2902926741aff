"""Delivers pending updates to the bot's webhook while one is set, as Telegram does: one at a
time, oldest first, with the ``X-Telegram-Bot-Api-Secret-Token`` header; an update stays queued
until the webhook answers 2xx, failed deliveries are retried after a delay that doubles up to a
maximum, and the last failure is reported by getWebhookInfo. setWebhook/deleteWebhook restart
delivery at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from http import HTTPStatus

import aiohttp

from localchat.store import JSON, Store

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 - a header name
DELIVERY_TIMEOUT_S = 30.0


def _phrase(status: int) -> str:
    """The standard reason phrase, as Telegram reports it (not the webhook's own wording)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _deliver(store: Store, session: aiohttp.ClientSession, update: dict[str, object]) -> str:
    """POST one update; return "" when delivered, else Telegram's wording of the failure."""
    headers = {SECRET_HEADER: store.webhook_secret} if store.webhook_secret else {}
    timeout = aiohttp.ClientTimeout(total=DELIVERY_TIMEOUT_S)
    try:
        async with session.post(
            store.webhook_url, json=update, headers=headers, timeout=timeout
        ) as resp:
            if 200 <= resp.status < 300:
                return ""
            return f"Wrong response from the webhook: {resp.status} {_phrase(resp.status)}"
    except (aiohttp.ClientError, TimeoutError) as exc:
        logger.warning("webhook delivery failed: %s", type(exc).__name__)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return "Connection refused"
        return f"Failed to deliver the update: {type(exc).__name__}"


def _epoch_moved(store: Store, epoch: int) -> Callable[[], bool]:
    return lambda: store.webhook_epoch != epoch


async def deliver_forever(
    store: Store, session: aiohttp.ClientSession, retry_s: float = 1.0, max_retry_s: float = 60.0
) -> None:
    """Deliver while a webhook is set; woken by store changes, never polling."""
    failures = 0
    epoch = store.webhook_epoch
    while not store.closing:
        await store.wait_until(lambda: bool(store.webhook_url and store.updates), 3600.0)
        if not (store.webhook_url and store.updates):
            continue
        if store.webhook_epoch != epoch:
            failures, epoch = 0, store.webhook_epoch
        update = store.updates[0]
        error = await _deliver(store, session, update)
        if not error:
            failures = 0
            if store.updates and store.updates[0] is update:
                store.updates.pop(0)
            continue
        failures += 1
        store.webhook_last_error_date = int(time.time())
        store.webhook_last_error_message = error
        delay = min(retry_s * 2 ** (failures - 1), max_retry_s)
        await store.wait_until(_epoch_moved(store, store.webhook_epoch), delay)


async def run_deliverer(
    store: Store, retry_s: float = 1.0, max_retry_s: float = 60.0
) -> AsyncIterator[None]:
    """Start the deliverer with the app and stop it cleanly at shutdown."""
    async with aiohttp.ClientSession() as session:
        task = asyncio.create_task(deliver_forever(store, session, retry_s, max_retry_s))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def set_webhook(store: Store, params: JSON) -> bool:
    store.webhook_url = str(params["url"])
    store.webhook_secret = str(params.get("secret_token", ""))
    store.set_allowed_updates(params.get("allowed_updates"))
    return await _webhook_changed(store, params)


async def delete_webhook(store: Store, params: JSON) -> bool:
    store.webhook_url = ""
    return await _webhook_changed(store, params)


async def _webhook_changed(store: Store, params: JSON) -> bool:
    if params.get("drop_pending_updates"):
        store.updates.clear()
    store.webhook_epoch += 1
    store.webhook_last_error_date, store.webhook_last_error_message = 0, ""
    await store.touch()
    return True


async def get_webhook_info(store: Store, params: JSON) -> JSON:
    info: JSON = {
        "url": store.webhook_url,
        "has_custom_certificate": False,
        "pending_update_count": len(store.updates),
    }
    if store.allowed_updates is not None:
        info["allowed_updates"] = sorted(store.allowed_updates)
    if store.webhook_last_error_date:
        info["last_error_date"] = store.webhook_last_error_date
        info["last_error_message"] = store.webhook_last_error_message
    return info
