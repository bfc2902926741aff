"""The spending view: money out over a period, per currency and count, with no rows.

"How much did I spend at Tesco last month" is a total over every account whose consent and
bank policy allow transactions, not the total of one page: the broker walks the bank's pages for
the period (bounded per account), minimizes each transaction, keeps those matching the merchant
(any script, Polish inflection: :mod:`consent.domain.merchant_match`) and category, and answers
totals only. A bank that doesn't share categories simply matches no category filter.

Every bank is walked at once, inside the request's deadline; a bank that fails or does not
answer in time is left out of the totals (``complete`` is false) and named in ``unavailable``
with a typed reason, so one slow bank never blanks the others.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any

from consent.banks.client import BankCallError, BankClient
from consent.domain.handles import opaque_id
from consent.domain.merchant_match import merchant_matches
from consent.domain.minimize import transaction_view
from consent.domain.policy import allowed_fields
from consent.domain.scopes import Scope
from consent.domain.views import SPENDING_FIELDS, View
from consent.service.accounts import opened_token
from consent.service.balance_plan import reason
from consent.service.broker import Broker
from consent.service.deadline import DEFAULT_MS, Deadline
from consent.service.errors import BrokerError, not_found
from consent.service.planner import within
from consent.service.reads import (
    _UNSET,
    AuthorizedConsent,
    _call_unless_401,
    _refreshed_token,
    _retry,
    handles_for,
    pending_entry,
    readable_consents,
)
from consent.service.transactions import BANK_PAGES_PER_CALL
from consent.store.audit_writer import PendingEntry
from consent.store.tables import PlatformClient, Subject
from consent.vault.keyring import VaultError


def spending_fields(transaction_fields: frozenset[str]) -> list[str]:
    """What a spending answer carries for a bank: the category only where the bank lets the
    platform see categories in transactions."""
    dropped = set() if "category" in transaction_fields else {"category"}
    return sorted(SPENDING_FIELDS - dropped)


@dataclass(frozen=True)
class SpendingQuery:
    start: date
    end: date
    merchant: str | None = None
    category: str | None = None
    handle: str | None = None
    bank_id: str | None = None


@dataclass
class _Session:
    """One consent's bank calls during a walk: the token is refreshed at most once, and the
    fresh one is used for every call after it."""

    broker: Broker
    row: AuthorizedConsent
    key: bytes | None
    token: str | None

    async def call(self, call: Callable[[BankClient, str], Awaitable[Any]]) -> Any:
        if self.key is None or self.token is None:
            raise BrokerError(409, "consent_not_authorized", "this consent holds no usable token")
        bank = await self.broker.bank(self.row.bank_id)
        result = await _call_unless_401(bank, self.token, call)
        if result is not _UNSET:
            return result
        async with self.broker.sessions() as session:
            self.token = await _refreshed_token(self.broker, session, bank, self.row, self.key)
            await session.commit()
        return await _retry(bank, self.token, call)


@dataclass
class _Sum:
    total: Decimal = Decimal(0)
    count: int = 0


def page_views(
    broker: Broker,
    row: AuthorizedConsent,
    body: dict[str, Any],
    fields: frozenset[str],
) -> list[View]:
    """A bank's OBIE transactions page, minimized to the platform's transaction view (each row's
    opaque id bound to its consent)."""
    return [
        transaction_view(
            tx,
            opaque_id=opaque_id(broker.handle_secret, row.consent_id, str(tx.get("TransactionId"))),
            fields=fields,
        )
        for tx in body["Data"]["Transaction"]
    ]


def _matches(view: View, q: SpendingQuery) -> bool:
    if view.get("direction") != "out" or not isinstance(view.get("amount"), str):
        return False
    if q.category is not None and view.get("category") != q.category:
        return False
    merchant = view.get("merchant")
    return q.merchant is None or (
        isinstance(merchant, str) and merchant_matches(merchant, q.merchant)
    )


def _add(views: list[View], q: SpendingQuery, into: dict[tuple[str, str | None], _Sum]) -> None:
    for view in views:
        currency = view.get("currency")
        if not isinstance(currency, str) or not _matches(view, q):
            continue
        category = view.get("category")
        bucket = into[(currency, category if isinstance(category, str) else None)]
        bucket.total += abs(Decimal(str(view["amount"])))
        bucket.count += 1


def _answer(
    q: SpendingQuery,
    sums: dict[tuple[str, str | None], _Sum],
    complete: bool,
    accounts: int,
    unavailable: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    per_currency: dict[str, _Sum] = defaultdict(_Sum)
    for (currency, _), s in sums.items():
        per_currency[currency].total += s.total
        per_currency[currency].count += s.count
    return {
        "from": q.start.isoformat(),
        "to": q.end.isoformat(),
        "merchant": q.merchant,
        "category": q.category,
        "totals": [
            {"currency": c, "total": str(s.total), "count": s.count}
            for c, s in sorted(per_currency.items())
        ],
        "by_category": [
            {"category": cat, "currency": c, "total": str(s.total), "count": s.count}
            for (c, cat), s in sorted(sums.items(), key=lambda kv: (kv[0][0], -kv[1].total))
            if cat is not None
        ],
        "complete": complete,
        "accounts": accounts,
        "unavailable": unavailable or [],
    }


Sums = dict[tuple[str, str | None], _Sum]


@dataclass
class _Walked:
    """One consent's part: its sums, how many accounts were summed, whether its history was
    walked to the end, whether it holds the asked account, or why its bank gave nothing."""

    sums: Sums
    accounts: int = 0
    complete: bool = True
    found_handle: bool = False
    error: str | None = None


def _params(q: SpendingQuery) -> dict[str, str]:
    return {
        "fromBookingDateTime": datetime.combine(q.start, time.min, UTC).isoformat(),
        "toBookingDateTime": datetime.combine(q.end, time.max, UTC).isoformat(timespec="seconds"),
    }


async def _walk(
    broker: Broker,
    row: AuthorizedConsent,
    q: SpendingQuery,
    fields: frozenset[str],
    deadline: Deadline,
) -> _Walked:
    """Sum one consent's accounts inside ``deadline``; every bank read is idempotent, so each
    is retried on a 5xx or a timeout while time lasts."""
    out = _Walked(defaultdict(_Sum))
    params = _params(q)
    bank_session = _Session(broker, row, *opened_token(broker, row))

    async def accounts(bank: BankClient, token: str) -> list[str]:
        page = await within(deadline, lambda left: bank.read(token, "/accounts", timeout_s=left))
        return [str(a["AccountId"]) for a in page["Data"]["Account"]]

    account_ids = await bank_session.call(accounts)
    handles = await handles_for(broker, row, account_ids)
    for account_id, handle in zip(account_ids, handles, strict=True):
        if q.handle is not None and handle != q.handle:
            continue
        out.found_handle = True
        out.accounts += 1
        for page in range(1, BANK_PAGES_PER_CALL + 1):

            async def fetch(
                bank: BankClient, token: str, page: int = page, account: str = account_id
            ) -> dict[str, Any]:
                path = f"/accounts/{account}/transactions"
                query = {**params, "page": str(page)}
                return await within(
                    deadline, lambda left: bank.read(token, path, query, timeout_s=left)
                )

            body = await bank_session.call(fetch)
            _add(page_views(broker, row, body, fields), q, out.sums)
            if "Next" not in body.get("Links", {}):
                break
        else:  # more history than one call may walk: the total is a lower bound
            out.complete = False
    return out


async def _walk_in_time(
    broker: Broker,
    row: AuthorizedConsent,
    q: SpendingQuery,
    fields: frozenset[str],
    deadline: Deadline,
) -> _Walked:
    """:func:`_walk`, or (its partial sums dropped) why the bank gave nothing in time."""
    try:
        async with asyncio.timeout(max(0.0, deadline.remaining())):
            return await _walk(broker, row, q, fields, deadline)
    except VaultError:
        broker.forget_consent(row.consent_id)
        return _Walked(defaultdict(_Sum), error="vault_error")
    except (BankCallError, BrokerError, TimeoutError) as e:
        return _Walked(defaultdict(_Sum), error=reason(e))


async def spending(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    q: SpendingQuery,
    purpose: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """Totals of money out over ``q``'s period across the accounts that allow transactions,
    every bank walked at once inside ``deadline``. An answer not ready in time is logged as not
    served and refused (504)."""
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    now = broker.clock()
    sums: Sums = defaultdict(_Sum)
    entries: list[PendingEntry] = []
    unavailable: list[dict[str, str]] = []
    async with broker.read_lock(subject.subject_id):
        readable = await readable_consents(
            broker,
            client,
            subject.subject_id,
            Scope.TRANSACTIONS,
            action="read.spending",
            purpose=purpose,
            now=now,
            denied=entries,
            bank_id=q.bank_id,
        )
        asked = [
            (row, policy, allowed_fields("transaction", policy, broker.contract))
            for row, policy in readable
        ]
        banks = deadline.for_banks()
        walked = await asyncio.gather(
            *(_walk_in_time(broker, row, q, fields, banks) for row, _, fields in asked)
        )
        late = deadline.expired()
        for (row, policy, fields), one in zip(asked, walked, strict=True):
            for bucket, s in one.sums.items():
                sums[bucket].total += s.total
                sums[bucket].count += s.count
            if one.error is not None:
                unavailable.append(
                    {
                        "consent_id": row.consent_id,
                        "bank_id": row.bank_id,
                        "bank_name": policy.display_name,
                        "reason": one.error,
                    }
                )
            served = one.error is None and not late
            entries.append(
                pending_entry(
                    client,
                    subject.subject_id,
                    action="read.spending",
                    scope="transactions",
                    purpose=purpose,
                    fields=spending_fields(fields) if served else [],
                    outcome="allowed" if served else "denied",
                    reason="deadline_exceeded" if late else (one.error or "ok"),
                    at=now,
                )
            )
        await broker.audit(entries)  # committed before anything is answered
    if late:
        raise BrokerError(504, "deadline_exceeded", "the answer was not ready in time")
    if q.handle is not None and not unavailable and not any(w.found_handle for w in walked):
        raise not_found("account")
    complete = all(w.complete for w in walked) and not unavailable
    return _answer(q, sums, complete, sum(w.accounts for w in walked), unavailable)
