"""A consent the bank no longer honours: its refresh token was refused (``invalid_grant``, e.g.
the bank lost or revoked it). The consent is flagged as needing re-authorization (the platform
API shows ``needs_reauthorization``), the user's access log records it, and the platform is
told once (an outbox notice ``consent_needs_reauthorization``) so the bot can offer to link
the bank again."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col

from consent.domain.consent import ConsentStatus
from consent.outbox.write import enqueue
from consent.service.broker import Broker
from consent.store import audit
from consent.store.tables import ConsentRow

NOTICE = "consent_needs_reauthorization"


async def needs_reauthorization(broker: Broker, consent_id: str) -> bool:
    """Flag the consent (its own transaction); True if this call flagged it, False if it was
    flagged already or is no longer authorized. Only the first caller tells the platform."""
    now = broker.clock()
    async with broker.sessions() as session:
        flagged = await session.exec(
            update(ConsentRow)
            .where(
                col(ConsentRow.consent_id) == consent_id,
                col(ConsentRow.status) == ConsentStatus.AUTHORIZED.value,
                col(ConsentRow.needs_reauthorization).is_(False),
            )
            .values(needs_reauthorization=True)
        )
        if flagged.rowcount != 1:
            await session.rollback()
            return False
        row = await session.get(ConsentRow, consent_id)
        assert row is not None
        enqueue(
            session,
            client_id=row.client_id,
            subject_id=row.subject_id,
            kind=NOTICE,
            data={"consent_id": row.consent_id, "bank_id": row.bank_id},
            now=now,
        )
        await audit.record_action(
            session,
            subject_id=row.subject_id,
            client_id=row.client_id,
            action="consent.needs_reauth",
            at=now,
        )
        await session.commit()
    return True
