"""Dead letters: outbox messages the relay gave up on, kept (without their payload) for
operators, with an access-log entry for the user. Read by ``chatbank outbox dead-letters``, by
``GET /admin/v1/outbox/dead-letters`` and by whoever counts them for metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store import audit
from consent.store.tables import DeadLetterRow, OutboxRow

log = logging.getLogger(__name__)
ACTION = "push.dead_letter"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    client_id: str
    subject_id: str
    kind: str
    attempts: int
    reason: str
    created_at: datetime
    failed_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "message_id": self.message_id,
            "client_id": self.client_id,
            "subject_id": self.subject_id,
            "kind": self.kind,
            "attempts": self.attempts,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
            "failed_at": self.failed_at.isoformat(),
        }


async def bury(session: AsyncSession, row: OutboxRow, reason: str, now: datetime) -> None:
    """Move ``row`` from the outbox to the dead letters, in the caller's transaction, and log
    it in the subject's access log."""
    session.add(
        DeadLetterRow(
            id=row.id,
            client_id=row.client_id,
            subject_id=row.subject_id,
            kind=row.kind,
            attempts=row.attempts,
            reason=reason[:60],
            created_at=row.created_at,
            failed_at=now,
        )
    )
    await session.delete(row)
    await audit.record_action(
        session, subject_id=row.subject_id, client_id=row.client_id, action=ACTION, at=now
    )
    log.warning(
        "outbox message %s (%s) given up after %d attempts: %s",
        row.id,
        row.kind,
        row.attempts,
        reason,
    )


async def listing(sessions: async_sessionmaker[AsyncSession], limit: int = 100) -> list[DeadLetter]:
    """The newest dead letters first."""
    async with sessions() as session:
        rows = await session.exec(
            select(DeadLetterRow).order_by(col(DeadLetterRow.failed_at).desc()).limit(limit)
        )
        return [
            DeadLetter(
                r.id,
                r.client_id,
                r.subject_id,
                r.kind,
                r.attempts,
                r.reason,
                r.created_at,
                r.failed_at,
            )
            for r in rows
        ]


async def count(sessions: async_sessionmaker[AsyncSession]) -> int:
    """How many dead letters there are (for metrics)."""
    async with sessions() as session:
        return int((await session.exec(select(func.count()).select_from(DeadLetterRow))).one())
