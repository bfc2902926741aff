"""What metrics need to know about the outbox: how many messages wait and since when (the dead
letters are counted by :func:`consent.outbox.deadletter.count`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store.tables import OutboxRow


@dataclass(frozen=True)
class Depth:
    waiting: int  # not yet delivered (nor given up)
    oldest_age_s: float  # of the oldest waiting message; 0 when none waits


async def depth(sessions: async_sessionmaker[AsyncSession], now: datetime) -> Depth:
    async with sessions() as session:
        count, oldest = (
            await session.exec(
                select(func.count(), func.min(OutboxRow.created_at)).where(
                    col(OutboxRow.delivered_at).is_(None)
                )
            )
        ).one()
    if not count or oldest is None:
        return Depth(0, 0.0)
    return Depth(int(count), max(0.0, (now - oldest).total_seconds()))
