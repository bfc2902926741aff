"""The access log in the database: append (hash-chained per subject), read, verify."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.domain.audit import AuditEntry, ChainReport, append_entry, verify_chain
from consent.domain.purpose import CHAT_SERVICE
from consent.store.fastread import utc
from consent.store.locks import lock_subject
from consent.store.tables import AuditRow

# The one mapping between an access-log entry and its row: the columns, in this order, for every
# backend (SQLAlchemy, the writer's sqlite3 and asyncpg connections).
COLUMNS = (
    "subject_id",
    "seq",
    "client_id",
    "action",
    "scope",
    "purpose",
    "fields",
    "outcome",
    "reason",
    "at",
    "prev_hash",
    "entry_hash",
)
AT = COLUMNS.index("at")
_AUDIT: Table = AuditRow.metadata.tables["audit_entry"]
SELECT_COLUMNS = [_AUDIT.c[name] for name in COLUMNS]


def row_of(entry: AuditEntry) -> tuple[Any, ...]:
    """The entry's values in :data:`COLUMNS` order (fields comma-separated, time aware UTC)."""
    if entry.at.tzinfo is None:
        raise ValueError("naive datetimes are not stored")
    return (
        entry.subject_id,
        entry.seq,
        entry.client_id,
        entry.action,
        entry.scope,
        entry.purpose,
        ",".join(entry.fields),
        entry.outcome,
        entry.reason,
        entry.at.astimezone(UTC),
        entry.prev_hash,
        entry.entry_hash,
    )


def entry_of(r: Sequence[Any]) -> AuditEntry:
    """An entry from a row's values in :data:`COLUMNS` order, whichever driver read them (the
    time may be a string, a naive or an aware datetime)."""
    at = utc(r[AT])
    assert at is not None
    return AuditEntry(
        subject_id=r[0],
        seq=r[1],
        client_id=r[2],
        action=r[3],
        scope=r[4],
        purpose=r[5],
        fields=tuple(f for f in r[6].split(",") if f),
        outcome=r[7],
        reason=r[8],
        at=at,
        prev_hash=r[10],
        entry_hash=r[11],
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
    conn = await session.connection()
    last = (
        await conn.execute(
            select(*SELECT_COLUMNS)
            .where(_AUDIT.c.subject_id == subject_id)
            .order_by(_AUDIT.c.seq.desc())
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
    session.add(AuditRow(**dict(zip(COLUMNS, row_of(entry), strict=True))))
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
    conn = await session.connection()
    rows = await conn.execute(
        select(*SELECT_COLUMNS).where(_AUDIT.c.subject_id == subject_id).order_by(_AUDIT.c.seq)
    )
    return [entry_of(r) for r in rows]


async def verify(session: AsyncSession, subject_id: str) -> tuple[list[AuditEntry], ChainReport]:
    entries = await chain(session, subject_id)
    return entries, verify_chain(entries)
