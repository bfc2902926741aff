"""An account-level bank event (OBIE ``resource-update`` on an ``account``, or the bank's own
``urn:chatbank:events:transaction-changed``) marks the account's receipt work, in the same
transaction as the event's de-duplication record. The event carries no data."""

from __future__ import annotations

from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.domain import consent as rules
from consent.domain.scopes import Scope
from consent.receipts.choices import receipts_since
from consent.service.broker import Broker
from consent.service.linking import to_domain
from consent.service.reads import handle_for
from consent.store.tables import ConsentRow, ReceiptWork

RID = "http://openbanking.org.uk/rid"
RTY = "http://openbanking.org.uk/rty"


def account_of(event: dict[str, Any]) -> str | None:
    """The bank account id an event is about, if its subject is an account."""
    subject = event.get("subject")
    if not isinstance(subject, dict) or subject.get(RTY) != "account":
        return None
    rid = subject.get(RID)
    return rid[:100] if isinstance(rid, str) and rid else None


def bank_consent_of(claims: dict[str, Any]) -> str | None:
    """The bank's consent id from the SET's ``sub`` (the consent's URL at the bank)."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or "/account-access-consents/" not in sub:
        return None
    return sub.rsplit("/", 1)[-1][:128] or None


async def account_changed(
    broker: Broker,
    session: AsyncSession,
    bank_id: str,
    claims: dict[str, Any],
    event: dict[str, Any],
) -> str | None:
    """Queue a fetch of the account's new transactions if its receipts are on; "processed"
    then, None if the event concerns nothing receipts are sent for."""
    account_id, bank_consent_id = account_of(event), bank_consent_of(claims)
    if account_id is None or bank_consent_id is None:
        return None
    query = select(ConsentRow).where(
        ConsentRow.bank_id == bank_id, ConsentRow.bank_consent_id == bank_consent_id
    )
    row = (await session.exec(query)).first()
    now = broker.clock()
    if (
        row is None
        or not rules.can_read(
            to_domain(row), Scope.TRANSACTIONS, broker.policy(bank_id), now
        ).allowed
    ):
        return None
    handle = await handle_for(broker, session, row, account_id)
    if await receipts_since(session, row.consent_id, handle) is None:
        return None
    work = await session.get(ReceiptWork, handle)
    if work is None:
        session.add(
            ReceiptWork(handle=handle, consent_id=row.consent_id, due_at=now, seen_until=now)
        )
    else:
        work.version += 1
        work.due_at = min(work.due_at, now)
        session.add(work)
    broker.receipt_wake.set()
    return "processed"
