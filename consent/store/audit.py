"""The access log in the database: append (hash-chained per subject), read, verify."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.domain.audit import AuditEntry, ChainReport, append_entry, verify_chain
from consent.domain.purpose import CHAT_SERVICE
from consent.store.locks import lock_subject
from consent.store.tables import AuditRow


def entry_of(row: Any) -> AuditEntry:
    """An :class:`AuditEntry` from an ``audit_entry`` row (ORM object or Core row)."""
    return AuditEntry(
        seq=row.seq,
        subject_id=row.subject_id,
        client_id=row.client_id,
        action=row.action,
        scope=row.scope,
        purpose=row.purpose,
        fields=tuple(f for f in row.fields.split(",") if f),
        outcome=row.outcome,
        reason=row.reason,
        at=row.at,
        prev_hash=row.prev_hash,
        entry_hash=row.entry_hash,
    )


async def record(
    session: AsyncSession,
    *,
    subject_id: str,
    client_id: str,
    action: str,
    scope: str | None,
    purpose: str,
    fields: Sequence[str],
    outcome: str,
    reason: str,
    at: datetime,
) -> AuditEntry:
    """Append one entry to the subject's chain; the subject stays locked until the caller's
    transaction ends, so concurrent requests never fork the chain."""
    await lock_subject(session, subject_id)
    last = (
        await session.exec(
            select(AuditRow)
            .where(AuditRow.subject_id == subject_id)
            .order_by(col(AuditRow.seq).desc())
            .limit(1)
        )
    ).first()
    entry = append_entry(
        entry_of(last) if last else None,
        subject_id=subject_id,
        client_id=client_id,
        action=action,
        scope=scope,
        purpose=purpose[:80],
        fields=sorted(fields),
        outcome=outcome,
        reason=reason,
        at=at,
    )
    session.add(
        AuditRow(
            subject_id=entry.subject_id,
            seq=entry.seq,
            client_id=entry.client_id,
            action=entry.action,
            scope=entry.scope,
            purpose=entry.purpose,
            fields=",".join(entry.fields),
            outcome=entry.outcome,
            reason=entry.reason,
            at=entry.at,
            prev_hash=entry.prev_hash,
            entry_hash=entry.entry_hash,
        )
    )
    return entry


async def record_action(
    session: AsyncSession,
    *,
    subject_id: str,
    client_id: str,
    action: str,
    at: datetime,
    scope: str | None = None,
) -> AuditEntry:
    """Log something the broker did for the chat service that returned no data (a consent
    created, authorized or ended, an alert pushed or answered)."""
    return await record(
        session,
        subject_id=subject_id,
        client_id=client_id,
        action=action,
        scope=scope,
        purpose=CHAT_SERVICE,
        fields=[],
        outcome="allowed",
        reason="ok",
        at=at,
    )


async def chain(session: AsyncSession, subject_id: str) -> list[AuditEntry]:
    rows = (
        await session.exec(
            select(AuditRow).where(AuditRow.subject_id == subject_id).order_by(col(AuditRow.seq))
        )
    ).all()
    return [entry_of(r) for r in rows]


async def verify(session: AsyncSession, subject_id: str) -> tuple[list[AuditEntry], ChainReport]:
    entries = await chain(session, subject_id)
    return entries, verify_chain(entries)
