"""The spending insight: totals by category per currency for a period and the one before,
computed here from the consents' transactions and answered as an aggregate (no rows; merchants
only as one category's top merchants, when asked for).

The request was authorized before (consent.service.authz). Each consent whose status, scope
and bank policy allow transactions is read at once, inside the request's deadline
(``X-Request-Deadline-Ms``): its accounts, then both periods' pages of every account (bounded).
A bank that fails or stalls is left out whole and named with a typed reason, so one bank never
blanks another and a total is never half of a bank; the answer then says it is incomplete. Every
consent read or refused gets one access-log entry, committed before the answer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from consent.banks.client import BankClient
from consent.domain.insights import INSIGHT_FIELDS, UNCATEGORIZED, Spend, Tally, answer
from consent.domain.policy import BankPolicy, allowed_fields
from consent.domain.scopes import Scope
from consent.service.accounts import opened_token
from consent.service.balance_plan import reason
from consent.service.broker import Broker
from consent.service.deadline import Deadline
from consent.service.errors import BrokerError
from consent.service.reads import AuthorizedConsent, pending_entry, readable_consents
from consent.service.spending import _Session, page_views
from consent.service.transactions import BANK_PAGES_PER_CALL
from consent.store.audit_writer import PendingEntry
from consent.store.tables import PlatformClient, Subject
from consent.vault.keyring import VaultError

log = logging.getLogger(__name__)
ACTION = "read.insights"


@dataclass(frozen=True, slots=True)
class InsightQuery:
    start: date
    end: date
    previous_start: date
    previous_end: date
    top_category: str | None = None  # list this category's top merchants
    bank_id: str | None = None


@dataclass
class _Part:
    """One consent's share of the answer."""

    current: Tally = field(default_factory=Tally)
    previous: Tally = field(default_factory=Tally)
    accounts: int = 0
    truncated: bool = False  # more history than one request walks: a lower bound
    failure: str | None = None  # why this bank is left out
    fields: frozenset[str] = frozenset()


def _params(start: date, end: date) -> dict[str, str]:
    return {
        "fromBookingDateTime": datetime.combine(start, time.min, UTC).isoformat(),
        "toBookingDateTime": datetime.combine(end, time.max, UTC).isoformat(timespec="seconds"),
    }


def _spends(views: list[dict[str, Any]]) -> list[Spend]:
    out = []
    for view in views:
        amount, currency = view.get("amount"), view.get("currency")
        if view.get("direction") != "out" or not isinstance(amount, str):
            continue
        if not isinstance(currency, str):
            continue
        category = view.get("category")
        merchant = view.get("merchant")
        out.append(
            Spend(
                currency,
                category if isinstance(category, str) else UNCATEGORIZED,
                abs(Decimal(amount)),
                merchant if isinstance(merchant, str) else None,
            )
        )
    return out


async def _walk(
    broker: Broker,
    row: AuthorizedConsent,
    bank_session: _Session,
    account_id: str,
    start: date,
    end: date,
    fields: frozenset[str],
    deadline: Deadline,
    into: Tally,
    top_category: str | None,
) -> bool:
    """Add one account's payments out over ``start``..``end`` to ``into``; False when the
    history was longer than one request may walk."""
    params = _params(start, end)
    for page in range(1, BANK_PAGES_PER_CALL + 1):

        async def fetch(bank: BankClient, token: str, page: int = page) -> dict[str, Any]:
            path = f"/accounts/{account_id}/transactions"
            left = max(0.05, deadline.remaining())
            return await bank.read(token, path, {**params, "page": str(page)}, timeout_s=left)

        body = await bank_session.call(fetch)
        for spend in _spends(page_views(broker, row, body, fields)):
            into.add(spend, top_category)
        if "Next" not in body.get("Links", {}):
            return True
    return False


async def _consent_part(
    broker: Broker,
    row: AuthorizedConsent,
    policy: BankPolicy,
    q: InsightQuery,
    deadline: Deadline,
) -> _Part:
    fields = allowed_fields("transaction", policy, broker.contract)
    part = _Part(fields=_served_fields(fields, q))
    try:
        async with asyncio.timeout(max(0.0, deadline.remaining())):
            bank_session = _Session(broker, row, *opened_token(broker, row))

            async def accounts(bank: BankClient, token: str) -> list[str]:
                left = max(0.05, deadline.remaining())
                found = (await bank.read(token, "/accounts", timeout_s=left))["Data"]["Account"]
                return [str(a["AccountId"]) for a in found]

            account_ids = await bank_session.call(accounts)
            walks = [
                _walk(broker, row, bank_session, a, s, e, fields, deadline, tally, q.top_category)
                for a in account_ids
                for s, e, tally in (
                    (q.start, q.end, part.current),
                    (q.previous_start, q.previous_end, part.previous),
                )
            ]
            done = await asyncio.gather(*walks)
    except VaultError:
        log.warning("vault refused a sealed value of consent %s", row.consent_id)
        broker.forget_consent(row.consent_id)
        return _Part(failure="vault_error", fields=part.fields)
    except (BrokerError, TimeoutError) as e:
        return _Part(failure=reason(e), fields=part.fields)  # the whole bank, not half of it
    part.accounts = len(account_ids)
    part.truncated = not all(done)
    return part


def _served_fields(fields: frozenset[str], q: InsightQuery) -> frozenset[str]:
    served = set(INSIGHT_FIELDS)
    if "category" not in fields:
        served.discard("category")
    if q.top_category is not None and "merchant" in fields:
        served.add("merchant")
    return frozenset(served)


async def insights(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    q: InsightQuery,
    purpose: str,
    deadline: Deadline,
) -> dict[str, Any]:
    """The aggregate over every consent that allows transactions (``q.bank_id``: one bank's)."""
    now = broker.clock()
    entries: list[PendingEntry] = []
    current, previous = Tally(), Tally()
    unavailable: list[dict[str, str]] = []
    complete, walked = True, 0
    async with broker.read_lock(subject.subject_id):
        readable = await readable_consents(
            broker,
            client,
            subject.subject_id,
            Scope.TRANSACTIONS,
            action=ACTION,
            purpose=purpose,
            now=now,
            denied=entries,
            bank_id=q.bank_id,
        )
        parts = await asyncio.gather(
            *(
                _consent_part(broker, row, policy, q, deadline.for_banks())
                for row, policy in readable
            )
        )
        late = bool(readable) and deadline.expired()  # nothing to read: nothing can be late
        for (row, policy), part in zip(readable, parts, strict=True):
            served = part.failure is None and not late
            if part.failure is not None:
                complete = False
                unavailable.append(
                    {
                        "consent_id": row.consent_id,
                        "bank_id": row.bank_id,
                        "bank_name": policy.display_name,
                        "reason": part.failure,
                    }
                )
            else:
                current.merge(part.current)
                previous.merge(part.previous)
                walked += part.accounts
                complete = complete and not part.truncated
            outcome_reason = "deadline_exceeded" if late else (part.failure or "ok")
            if served and part.truncated:
                outcome_reason = "partial"
            entries.append(
                _entry(
                    client,
                    subject,
                    purpose,
                    now,
                    sorted(part.fields) if served else [],
                    "allowed" if served else "denied",
                    outcome_reason,
                )
            )
        await broker.audit(entries)  # committed before anything is answered
    if late:
        raise BrokerError(504, "deadline_exceeded", "the answer was not ready in time")
    body = answer(
        current,
        previous,
        start=q.start,
        end=q.end,
        previous_start=q.previous_start,
        previous_end=q.previous_end,
        top_category=q.top_category,
    )
    return {**body, "complete": complete, "accounts": walked, "unavailable": unavailable}


def _entry(
    client: PlatformClient,
    subject: Subject,
    purpose: str,
    at: datetime,
    fields: list[str],
    outcome: str,
    why: str,
) -> PendingEntry:
    return pending_entry(
        client,
        subject.subject_id,
        action=ACTION,
        scope="transactions",
        purpose=purpose,
        fields=fields,
        outcome=outcome,
        reason=why,
        at=at,
    )
