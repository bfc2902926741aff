"""Delivered outbox messages do not stay: a fraud alert's payload (merchant, amount, last four
digits, time) is the user's data, needed only until the platform has it. A periodic purge
deletes each delivered message once it is older than the retention setting
(``CONSENT_OUTBOX_RETENTION_HOURS``); on SQLite the deleted bytes are zeroed and the WAL
truncated as after a shredding. Undelivered messages are the relay's and are never purged."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta

from sqlalchemy import CursorResult
from sqlmodel import col, delete

from consent.service.broker import Broker
from consent.store import shredding
from consent.store.tables import OutboxRow

log = logging.getLogger(__name__)


async def purge_delivered(broker: Broker, retention: timedelta) -> int:
    """Delete messages delivered more than ``retention`` ago; returns how many."""
    cutoff = broker.clock() - retention
    async with broker.sessions() as session:
        result = await session.exec(
            delete(OutboxRow).where(
                col(OutboxRow.delivered_at).is_not(None), col(OutboxRow.delivered_at) < cutoff
            )
        )
        await session.commit()
    purged = result.rowcount if isinstance(result, CursorResult) else 0
    if purged:
        await shredding.settle(broker.engine)
        log.info("purged %d delivered outbox messages", purged)
    return purged


async def purge_forever(broker: Broker, retention: timedelta, interval_s: float) -> None:
    while True:
        try:
            await purge_delivered(broker, retention)
        except Exception:
            log.exception("outbox purge failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.sleep(interval_s)
