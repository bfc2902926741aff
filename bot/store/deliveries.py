"""Deliveries from a broker, pending → sent, so a crash between "received" and "shown" is
resumed by the broker's retry instead of being answered "duplicate".

Records live in ``seen_deliveries`` under keys scoped by their source (the broker's platform
client id): ``pending:<source>:<id>`` while the message is being sent (with the claim time),
``sent:<source>:<id>`` once the Bot API accepted it, ``alert:<source>:<alert_id>`` for the alert
it showed. The process sending a delivery renews its claim every third of the lease while the send
runs; a pending claim older than the lease therefore belongs to a process that died (or stalled
longer than the lease): the next retry takes it over. The one window left is between the Bot API
accepting a message and ``mark_sent`` committing; a kill there shows the message again on retry
(at least once).
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.store.repo import Sessions
from bot.store.tables import SeenDelivery


class Claim(StrEnum):
    CLAIMED = "claimed"  # this caller sends it now
    SENT = "sent"  # already shown: acknowledge, do not show again
    BUSY = "busy"  # another attempt holds a fresh claim: try again later


def _key(prefix: str, scoped_id: str) -> str:
    return f"{prefix}:{scoped_id}"[:120]


async def claim(sessions: Sessions, scoped_id: str, now: int, lease_s: int) -> Claim:
    """Take the delivery ``scoped_id`` (``<source>:<id>``) for sending, unless it was sent or
    another attempt holds a claim younger than ``lease_s``."""
    pending, sent = _key("pending", scoped_id), _key("sent", scoped_id)
    async with sessions() as session:
        if await session.get(SeenDelivery, sent) is not None:
            return Claim.SENT
        session.add(SeenDelivery(id=pending, seen_at=now))
        try:
            await session.flush()
        except IntegrityError:
            await session.rollback()
            taken = await session.exec(
                update(SeenDelivery)
                .where(col(SeenDelivery.id) == pending, col(SeenDelivery.seen_at) <= now - lease_s)
                .values(seen_at=now)
            )
            await session.commit()
            return Claim.CLAIMED if taken.rowcount == 1 else Claim.BUSY
        # mark_sent deletes the claim as it records "sent": look again inside this transaction
        if await session.get(SeenDelivery, sent, populate_existing=True) is not None:
            await session.rollback()
            return Claim.SENT
        await session.commit()
        return Claim.CLAIMED


async def renew(sessions: Sessions, scoped_id: str, now: int) -> None:
    """Keep a claim this process still holds from looking abandoned (its send is still running)."""
    async with sessions() as session:
        await session.exec(
            update(SeenDelivery)
            .where(col(SeenDelivery.id) == _key("pending", scoped_id))
            .values(seen_at=now)
        )
        await session.commit()


async def release(sessions: Sessions, scoped_id: str) -> None:
    """Drop a claim after a failed send, so the broker's retry is handled at once."""
    async with sessions() as session:
        await session.exec(
            delete(SeenDelivery).where(col(SeenDelivery.id) == _key("pending", scoped_id))
        )
        await session.commit()


async def mark_sent(
    sessions: Sessions, scoped_id: str, now: int, alert_id: str | None = None
) -> None:
    """Record that the Bot API accepted the message (and which alert it showed)."""
    async with sessions() as session:
        await session.exec(
            delete(SeenDelivery).where(col(SeenDelivery.id) == _key("pending", scoped_id))
        )
        await session.merge(SeenDelivery(id=_key("sent", scoped_id), seen_at=now))
        if alert_id is not None:
            await session.merge(SeenDelivery(id=_key("alert", alert_id), seen_at=now))
        await session.commit()


async def alert_shown(sessions: Sessions, scoped_alert_id: str) -> bool:
    async with sessions() as session:
        return await session.get(SeenDelivery, _key("alert", scoped_alert_id)) is not None
