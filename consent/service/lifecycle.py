"""Time-driven work: expire consents at their end, warn seven days before; and a subject's
export and deletion (what a platform client may ask about its own user)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlmodel import col, delete, select

from consent.domain import consent as rules
from consent.outbox.write import enqueue
from consent.service import support
from consent.service.broker import Broker
from consent.service.deadline import Deadline
from consent.service.linking import end_consent, revoke, to_domain
from consent.service.receipts import quiet_json
from consent.store import audit
from consent.store.tables import (
    AccountHandle,
    AlertRow,
    AuditRow,
    ConsentRow,
    DeadLetterRow,
    LastBalance,
    OutboxRow,
    QuietHours,
    ReceiptChoice,
    ReceiptRow,
    ReceiptWork,
    Subject,
    SupportConversation,
    SupportMessage,
)

log = logging.getLogger(__name__)
LIVE = (rules.ConsentStatus.AUTHORIZED.value, rules.ConsentStatus.AWAITING_AUTHORIZATION.value)


async def sweep(broker: Broker) -> dict[str, int]:
    """Expire what has ended and queue renewal notices; returns what it did."""
    now = broker.clock()
    expired = noticed = 0
    async with broker.sessions() as session:
        rows = (
            await session.exec(select(ConsentRow).where(col(ConsentRow.status).in_(LIVE)))
        ).all()
    for row in rows:
        domain = to_domain(row)
        if rules.is_expired(domain, now):
            await end_consent(
                broker, row.consent_id, how="expire", tell_bank=False, notice="consent_expired"
            )
            expired += 1
        elif rules.needs_renewal_notice(domain, now) and not row.renewal_noticed:
            async with broker.sessions() as session:
                fresh = await session.get(ConsentRow, row.consent_id)
                if fresh is None or fresh.renewal_noticed:
                    continue
                fresh.renewal_noticed = True
                session.add(fresh)
                days = max(0, (fresh.expires_at - now).days)
                enqueue(
                    session,
                    client_id=fresh.client_id,
                    subject_id=fresh.subject_id,
                    kind="consent_expiring",
                    data={
                        "consent_id": fresh.consent_id,
                        "bank_id": fresh.bank_id,
                        "expires_at": fresh.expires_at.isoformat(),
                        "days_left": days,
                    },
                    now=now,
                )
                await session.commit()
            noticed += 1
    return {"expired": expired, "renewal_notices": noticed}


async def sweep_forever(broker: Broker, interval_s: float) -> None:
    while True:
        try:
            await sweep(broker)
        except Exception:
            log.exception("expiry sweep failed; retrying")
        with contextlib.suppress(TimeoutError):
            await asyncio.sleep(interval_s)


async def export(broker: Broker, subject: Subject) -> dict[str, Any]:
    """Everything the broker holds about the subject, minus secrets and bank identifiers."""
    async with broker.sessions() as session:
        consents = (
            await session.exec(
                select(ConsentRow).where(ConsentRow.subject_id == subject.subject_id)
            )
        ).all()
        ids = [c.consent_id for c in consents]
        handles = (
            (
                await session.exec(
                    select(AccountHandle).where(col(AccountHandle.consent_id).in_(ids))
                )
            ).all()
            if ids
            else []
        )
        entries = await audit.chain(session, subject.subject_id)
        conversations = await support.export(broker, session, ids)
        choices = (
            (
                await session.exec(
                    select(ReceiptChoice).where(col(ReceiptChoice.consent_id).in_(ids))
                )
            ).all()
            if ids
            else []
        )
        kept = (
            await session.exec(
                select(ReceiptRow.receipt_id).where(ReceiptRow.subject_id == subject.subject_id)
            )
        ).all()
        quiet = await session.get(QuietHours, subject.subject_id)
    return {
        "subject_id": subject.subject_id,
        "created_at": subject.created_at.isoformat(),
        "consents": [
            {
                "consent_id": c.consent_id,
                "bank_id": c.bank_id,
                "scopes": sorted(s.value for s in c.scopes),
                "status": c.status,
                "created_at": c.created_at.isoformat(),
                "expires_at": c.expires_at.isoformat(),
            }
            for c in consents
        ],
        "account_handles": sorted(h.handle for h in handles),
        "support_conversations": conversations,
        # receipts: the choices and quiet hours (preferences), and how many sealed receipts
        # the broker keeps (their content is the transactions view, readable with /transactions)
        "receipts": {
            "choices": [
                {"consent_id": c.consent_id, "account": c.account, "enabled": c.enabled}
                for c in choices
            ],
            "quiet_hours": quiet_json(quiet),
            "kept": len(kept),
        },
        "access_log": [
            {
                "at": e.at.isoformat(),
                "action": e.action,
                "scope": e.scope,
                "purpose": e.purpose,
                "outcome": e.outcome,
            }
            for e in entries
        ],
    }


async def delete_subject(broker: Broker, subject: Subject, deadline: Deadline | None = None) -> int:
    """Revoke every live consent (telling the banks, best effort until ``deadline``), then
    delete all the subject's rows."""
    async with broker.sessions() as session:
        consents = (
            await session.exec(
                select(ConsentRow).where(ConsentRow.subject_id == subject.subject_id)
            )
        ).all()
    for c in consents:
        if c.status in LIVE:
            await revoke(broker, subject, c.consent_id, deadline)
    ids = [c.consent_id for c in consents]
    async with broker.sessions() as session:
        if ids:
            await session.exec(delete(LastBalance).where(col(LastBalance.consent_id).in_(ids)))
            for table in (ReceiptRow, ReceiptWork, ReceiptChoice):
                await session.exec(delete(table).where(col(table.consent_id).in_(ids)))
            await session.exec(delete(AccountHandle).where(col(AccountHandle.consent_id).in_(ids)))
            await session.exec(delete(AlertRow).where(col(AlertRow.consent_id).in_(ids)))
            await session.exec(
                delete(SupportMessage).where(col(SupportMessage.consent_id).in_(ids))
            )
            await session.exec(
                delete(SupportConversation).where(col(SupportConversation.consent_id).in_(ids))
            )
            await session.exec(delete(ConsentRow).where(col(ConsentRow.consent_id).in_(ids)))
        await session.exec(delete(OutboxRow).where(col(OutboxRow.subject_id) == subject.subject_id))
        await session.exec(
            delete(DeadLetterRow).where(col(DeadLetterRow.subject_id) == subject.subject_id)
        )
        await session.exec(delete(AuditRow).where(col(AuditRow.subject_id) == subject.subject_id))
        await session.exec(
            delete(QuietHours).where(col(QuietHours.subject_id) == subject.subject_id)
        )
        await session.exec(delete(Subject).where(col(Subject.subject_id) == subject.subject_id))
        await session.commit()
    if broker.subjects is not None:
        broker.subjects.drop(subject.subject_id)
    return len(ids)
