"""The operator-facing security log: refused requests that concern no subject of the caller.

Each entry is a row of ``security_event`` and one WARNING line on this module's logger (client,
method, route template, reason), never the ids in the path or anything about the resource."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store.db import make_engine, session_factory
from consent.store.tables import SecurityEvent

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    at: datetime
    client_id: str | None
    method: str
    route: str
    reason: str


async def write(sessions: async_sessionmaker[AsyncSession], refusal: Refusal) -> None:
    """Record one refusal (committed before the caller answers) and log it."""
    log.warning(
        "refused client=%s %s %s reason=%s",
        refusal.client_id or "(unauthenticated)",
        refusal.method,
        refusal.route,
        refusal.reason,
    )
    async with sessions() as session:
        session.add(
            SecurityEvent(
                at=refusal.at,
                client_id=refusal.client_id,
                method=refusal.method[:10],
                route=refusal.route[:200],
                reason=refusal.reason[:60],
            )
        )
        await session.commit()


async def recent(session: AsyncSession, limit: int = 100) -> list[Refusal]:
    """The newest ``limit`` entries, newest first."""
    rows = (
        await session.exec(
            select(SecurityEvent).order_by(col(SecurityEvent.id).desc()).limit(limit)
        )
    ).all()
    return [Refusal(r.at, r.client_id, r.method, r.route, r.reason) for r in rows]


async def read_recent(database_url: str, limit: int) -> list[Refusal]:
    """:func:`recent` on a database of its own (``chatbank security-log``)."""
    engine = make_engine(database_url)
    try:
        async with session_factory(engine)() as session:
            return await recent(session, max(1, min(limit, 10_000)))
    finally:
        await engine.dispose()
