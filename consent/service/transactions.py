"""The transactions view: one account handle, a date range, cursor paging, a merchant filter and
per-currency totals, read page by page from the bank and minimized on the way."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, TypeVar

from consent.banks.client import BankClient
from consent.domain.handles import opaque_id
from consent.domain.merchant_match import merchant_matches as match_merchant
from consent.domain.minimize import transaction_view
from consent.domain.policy import allowed_fields
from consent.domain.views import View
from consent.service.broker import Broker
from consent.service.deadline import DEFAULT_MS, Deadline
from consent.service.errors import BrokerError, bad_request, not_found
from consent.service.reads import _with_token, pending_entry
from consent.store.tables import AccountHandle, ConsentRow, PlatformClient, Subject
from consent.vault.envelope import open_sealed

T = TypeVar("T")

MAX_PAGE = 50
BANK_PAGES_PER_CALL = 20  # never walk a history without bound on one request


@dataclass(frozen=True)
class TxQuery:
    handle: str
    start: date | None
    end: date | None
    merchant: str | None
    limit: int
    cursor: str | None
    category: str | None = None
    amount_min: Decimal | None = None  # bounds on the amount's size, either direction
    amount_max: Decimal | None = None

    def keeps(self, view: View) -> bool:
        """Whether ``view`` passes the merchant, category and amount filters."""
        if self.merchant and not merchant_matches(view, self.merchant):
            return False
        if self.category is not None and view.get("category") != self.category:
            return False
        if self.amount_min is None and self.amount_max is None:
            return True
        raw = view.get("amount")
        if not isinstance(raw, str):
            return False
        size = abs(Decimal(raw))
        low_ok = self.amount_min is None or size >= self.amount_min
        return low_ok and (self.amount_max is None or size <= self.amount_max)


def encode_cursor(bank_page: int, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([bank_page, offset]).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 1, 0
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        page, offset = json.loads(raw)
    except (ValueError, TypeError) as e:
        raise bad_request("cursor is not one this API issued", "invalid_cursor") from e
    if not (isinstance(page, int) and isinstance(offset, int) and page >= 1 and offset >= 0):
        raise bad_request("cursor is not one this API issued", "invalid_cursor")
    return page, offset


def merchant_matches(view: View, wanted: str) -> bool:
    """Forgiving merchant filter: "tesco" finds "Tesco", "sainsburys" finds "Sainsbury's",
    "كارفور" finds "Carrefour", "Biedronce" finds "Biedronka"."""
    name = view.get("merchant")
    return isinstance(name, str) and match_merchant(name, wanted)


def totals(views: list[View]) -> dict[str, dict[str, str]]:
    """Money in and out per currency over ``views`` (Decimal arithmetic)."""
    out: dict[str, dict[str, Decimal]] = {}
    for v in views:
        currency, amount = v.get("currency"), v.get("amount")
        if not isinstance(currency, str) or not isinstance(amount, str):
            continue
        bucket = out.setdefault(currency, {"in": Decimal(0), "out": Decimal(0)})
        bucket["in" if v.get("direction") == "in" else "out"] += Decimal(amount)
    return {c: {k: str(v) for k, v in t.items()} for c, t in out.items()}


async def _in_time(deadline: Deadline, call: Awaitable[T]) -> T:
    """``call``'s result if the bank answers before ``deadline``, else a 504 bank_timeout."""
    try:
        async with asyncio.timeout(max(0.0, deadline.remaining())):
            return await call
    except TimeoutError as e:
        raise BrokerError(
            504, "bank_timeout", "the bank did not answer in time", headers={"Retry-After": "5"}
        ) from e


async def transactions(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    q: TxQuery,
    purpose: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """One page of minimized transactions for an account handle of the subject, answered
    inside ``deadline`` (a page not ready in time is refused and logged as not served; the
    request was authorized before: consent.service.authz)."""
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    banks = deadline.for_banks()
    now = broker.clock()
    async with broker.read_lock(subject.subject_id), broker.sessions() as session:
        # one read per subject at a time; the access log goes through the audit writer
        handle = await session.get(AccountHandle, q.handle)
        row = await session.get(ConsentRow, handle.consent_id) if handle else None
        if handle is None or row is None or row.subject_id != subject.subject_id:
            raise not_found("account")
        policy = broker.policy(row.bank_id)
        key = await broker.data_key(session, row.consent_id)
        assert key is not None
        account_id = open_sealed(
            key, handle.account_ref, consent_id=row.consent_id, field="account_id"
        ).decode()
        fields = allowed_fields("transaction", policy, broker.contract)
        params: dict[str, str] = {}
        if q.start:
            params["fromBookingDateTime"] = datetime.combine(q.start, time.min, UTC).isoformat()
        if q.end:
            params["toBookingDateTime"] = datetime.combine(q.end, time.max, UTC).isoformat(
                timespec="seconds"
            )
        page, offset = decode_cursor(q.cursor)
        collected: list[View] = []
        next_cursor: str | None = None
        for _ in range(BANK_PAGES_PER_CALL):

            async def fetch(bank: BankClient, token: str, page: int = page) -> dict[str, Any]:
                return await bank.read(
                    token, f"/accounts/{account_id}/transactions", {**params, "page": str(page)}
                )

            body = await _in_time(banks, _with_token(broker, session, row, fetch))
            items = body["Data"]["Transaction"]
            has_next = "Next" in body.get("Links", {})
            stopped_at: int | None = None
            for index in range(offset, len(items)):
                tx = items[index]
                tx_id = opaque_id(
                    broker.handle_secret, row.consent_id, str(tx.get("TransactionId"))
                )
                view = transaction_view(tx, opaque_id=tx_id, fields=fields)
                if not q.keeps(view):
                    continue
                collected.append(view)
                if len(collected) == q.limit:
                    stopped_at = index + 1
                    break
            if stopped_at is not None:
                if stopped_at < len(items):
                    next_cursor = encode_cursor(page, stopped_at)
                elif has_next:
                    next_cursor = encode_cursor(page + 1, 0)
                break
            if not has_next:
                break
            page, offset = page + 1, 0
        else:  # walked as far as one call may: the rest is behind the cursor
            next_cursor = encode_cursor(page, 0)
        await session.commit()  # a refreshed bank token, if any
        late = deadline.expired()
        entry = pending_entry(
            client,
            subject.subject_id,
            action="read.transactions",
            scope="transactions",
            purpose=purpose,
            fields=[] if late else fields,
            outcome="denied" if late else "allowed",
            reason="deadline_exceeded" if late else "ok",
            at=now,
        )
        await broker.audit([entry])  # committed before anything is answered
    if late:
        raise BrokerError(504, "deadline_exceeded", "the answer was not ready in time")
    return {"transactions": collected, "next_cursor": next_cursor, "totals": totals(collected)}
