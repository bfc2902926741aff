"""What the broker does with a verified bank event. The de-duplication record and everything
the event causes (state changes, shredding, outbox messages) commit in one transaction."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.domain import consent as rules
from consent.domain.handles import alert_handle
from consent.domain.minimize import fraud_alert_view
from consent.domain.policy import allowed_fields
from consent.domain.scopes import Scope
from consent.outbox.write import Adds, enqueue, outbox_values
from consent.receipts.marks import account_changed
from consent.service import support
from consent.service.broker import Broker
from consent.service.linking import PURPOSE, apply, to_domain
from consent.service.reads import handle_for
from consent.store import audit, shredding
from consent.store import secrets as sealed
from consent.store.tables import AlertRow, ConsentRow, OutboxRow, ProcessedEvent

log = logging.getLogger(__name__)

RESOURCE_UPDATE = "urn:uk:org:openbanking:events:resource-update"
CONSENT_REVOKED = "urn:uk:org:openbanking:events:consent-authorization-revoked"
FRAUD_ALERT = "urn:chatbank:events:fraud-alert"
SUPPORT = "urn:chatbank:events:support"
TRANSACTION_CHANGED = "urn:chatbank:events:transaction-changed"


async def _consent_by_bank_id(
    session: AsyncSession, bank_id: str, bank_consent_id: object
) -> ConsentRow | None:
    if not isinstance(bank_consent_id, str):
        return None
    query = select(ConsentRow).where(
        ConsentRow.bank_id == bank_id, ConsentRow.bank_consent_id == bank_consent_id
    )
    return (await session.exec(query)).first()


def _rid(event: dict[str, Any]) -> object:
    subject = event.get("subject")
    return subject.get("http://openbanking.org.uk/rid") if isinstance(subject, dict) else None


async def ingest(broker: Broker, bank_id: str, claims: dict[str, Any]) -> str:
    """Handle one verified SET; returns "processed", "duplicate" or "ignored". On SQLite the
    common events (fraud alerts, account changes) go through the broker's group-commit writer
    (:mod:`consent.events.batch`), which hands back what it cannot do alone."""
    if broker.event_writer is not None:
        outcome = await broker.event_writer.ingest(bank_id, claims)
        if outcome is not None:
            return outcome
    now = broker.clock()
    async with broker.writes(), broker.sessions() as session:
        session.add(ProcessedEvent(jti=str(claims["jti"])[:100], bank_id=bank_id, received_at=now))
        try:
            await session.flush()
        except IntegrityError:
            await session.rollback()
            return "duplicate"
        outcome = "ignored"
        shredded = False
        for kind, event in claims["events"].items():
            if not isinstance(event, dict):
                continue
            if kind == FRAUD_ALERT:
                outcome = await _fraud_alert(broker, session, bank_id, event) or outcome
            elif kind == CONSENT_REVOKED:
                revoked = await _revoked_at_bank(broker, session, bank_id, event)
                shredded = shredded or revoked is not None
                outcome = revoked or outcome
            elif kind == SUPPORT:
                row = await _consent_by_bank_id(session, bank_id, event.get("consent_id"))
                if row is not None:
                    outcome = await support.ingest_event(broker, session, row, event) or outcome
            elif kind in (RESOURCE_UPDATE, TRANSACTION_CHANGED):
                changed = await account_changed(broker, session, bank_id, claims, event)
                outcome = changed or ("processed" if kind == RESOURCE_UPDATE else outcome)
        await session.commit()
    if shredded:
        await shredding.settle(broker.engine)
    return outcome


async def _fraud_alert(
    broker: Broker, session: AsyncSession, bank_id: str, event: dict[str, Any]
) -> str | None:
    row = await _consent_by_bank_id(session, bank_id, event.get("consent_id"))
    now = broker.clock()
    if row is None or not alert_allowed(broker, bank_id, row, now):
        return None
    alert_id = str(event.get("alert_id", ""))[:100]
    # one row per (consent, bank alert): every consent the bank alerted gets it, once
    key = {"consent_id": row.consent_id, "alert_id": alert_id}
    if not alert_id or await session.get(AlertRow, key) is not None:
        return None
    handle = await handle_for(broker, session, row, str(event.get("account_id", "")))
    view = queue_alert(broker, session, bank_id, event, row, alert_id, handle, now)
    await audit.record(session, **alert_audit(row, view, now))
    return "processed"


def alert_allowed(broker: Broker, bank_id: str, row: ConsentRow | None, now: datetime) -> bool:
    """Whether the consent (None: no such consent at this bank) may receive fraud alerts."""
    return (
        row is not None
        and rules.can_read(to_domain(row), Scope.FRAUD_ALERTS, broker.policy(bank_id), now).allowed
    )


def alert_message(
    broker: Broker,
    bank_id: str,
    event: dict[str, Any],
    row: ConsentRow,
    alert_id: str,
    handle: str,
    now: datetime,
) -> tuple[dict[str, Any], str, dict[str, Any]]:
    """What an alert stores: the minimized view sent, the alert's opaque handle (its
    ``fraud_alert`` row) and the columns of its outbox row."""
    actions = ["it_was_me", *(["freeze_card"] if Scope.CARD_CONTROLS in row.scopes else [])]
    fields = allowed_fields("fraud_alert", broker.policy(bank_id), broker.contract)
    opaque = alert_handle(broker.handle_secret, bank_id, alert_id, row.consent_id)
    view = fraud_alert_view(
        event, alert_handle=opaque, account_handle=handle, actions=actions, fields=fields
    )
    message = outbox_values(
        client_id=row.client_id,
        subject_id=row.subject_id,
        kind="fraud_alert",
        data={"alert": view},
        now=now,
    )
    return view, opaque, message


def queue_alert(
    broker: Broker,
    session: Adds,
    bank_id: str,
    event: dict[str, Any],
    row: ConsentRow,
    alert_id: str,
    handle: str,
    now: datetime,
) -> dict[str, Any]:
    """Add the alert's row and its minimized outbox message to ``session``; the view sent."""
    view, opaque, message = alert_message(broker, bank_id, event, row, alert_id, handle, now)
    session.add(AlertRow(alert_id=alert_id, handle=opaque, consent_id=row.consent_id))
    session.add(OutboxRow(**message))
    return view


def alert_audit(row: ConsentRow, view: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The access-log entry of an alert pushed (keyword arguments of ``audit.record``)."""
    return {
        "subject_id": row.subject_id,
        "client_id": row.client_id,
        "action": "push.fraud_alert",
        "scope": "fraud_alerts",
        "purpose": PURPOSE,
        "fields": sorted(view),
        "outcome": "allowed",
        "reason": "ok",
        "at": now,
    }


async def _revoked_at_bank(
    broker: Broker, session: AsyncSession, bank_id: str, event: dict[str, Any]
) -> str | None:
    row = await _consent_by_bank_id(session, bank_id, _rid(event))
    if row is None or row.status != rules.ConsentStatus.AUTHORIZED.value:
        return None
    now = broker.clock()
    apply(row, rules.revoke(to_domain(row), now))
    session.add(row)
    await sealed.shred(session, row.consent_id)
    broker.forget_consent(row.consent_id)
    enqueue(
        session,
        client_id=row.client_id,
        subject_id=row.subject_id,
        kind="consent_revoked",
        data={"consent_id": row.consent_id, "bank_id": row.bank_id, "by": "bank"},
        now=now,
    )
    await audit.record_action(
        session,
        subject_id=row.subject_id,
        client_id=row.client_id,
        action="consent.revoked_at_bank",
        at=now,
    )
    return "processed"
