"""OBIE v3.1.11 account information: accounts, balances and paged transactions.

Every view takes a consent-bound token, then applies the consent's permissions and the accounts
the customer picked. Transactions are served newest first; a page is found by bisecting the
account's ledger and each transaction's JSON is serialized once per permission shape.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web
from yarl import URL

from bank_mock.auth.grants import require_grant
from bank_mock.errors import BankError
from bank_mock.keys import BANKS, CLOCK, GRANTS, SETTINGS, bank_of
from bank_mock.models import Consent, Direction, Transaction
from bank_mock.obie.serialize import account_json, balances_json, iso, transaction_json
from bank_mock.params import query_int
from bank_mock.state import BankState, Ledger

BASE = "/banks/{bank_id}/open-banking/v3.1/aisp"
routes = web.RouteTableDef()


def _consent(request: web.Request, bank: BankState) -> Consent:
    grant = require_grant(
        request,
        request.app[GRANTS],
        bank,
        scope="accounts",
        consent_bound=True,
        now=request.app[CLOCK](),
    )
    assert grant.consent_id is not None  # consent_bound guarantees it
    return bank.consents[grant.consent_id]


def _need(consent: Consent, *any_of: str) -> None:
    if not set(any_of) & set(consent.permissions):
        raise BankError(
            403,
            f"Consent lacks the {' or '.join(any_of)} permission",
            code="UK.OBIE.Resource.ConsentMismatch",
        )


def _account_in_consent(request: web.Request, bank: BankState, consent: Consent) -> str:
    account_id = request.match_info["account_id"]
    if account_id not in consent.account_ids or account_id not in bank.accounts:
        raise BankError(
            403,
            "Account is not covered by this consent",
            code="UK.OBIE.Resource.ConsentMismatch",
            path="AccountId",
        )
    return account_id


def _json(request: web.Request, body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/json")


def _links_self(request: web.Request) -> str:
    return request.app[SETTINGS].base_url() + str(request.rel_url)


@routes.get(BASE + "/accounts")
async def list_accounts(request: web.Request) -> web.Response:
    """All accounts the consent covers."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    _need(consent, "ReadAccountsBasic", "ReadAccountsDetail")
    detail = "ReadAccountsDetail" in consent.permissions
    data = [account_json(bank.accounts[a], detail=detail) for a in consent.account_ids]
    body = {
        "Data": {"Account": data},
        "Links": {"Self": _links_self(request)},
        "Meta": {"TotalPages": 1},
    }
    return _json(request, orjson.dumps(body))


@routes.get(BASE + "/accounts/{account_id}")
async def get_account(request: web.Request) -> web.Response:
    """One account of the consent."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    _need(consent, "ReadAccountsBasic", "ReadAccountsDetail")
    account = bank.accounts[_account_in_consent(request, bank, consent)]
    data = [account_json(account, detail="ReadAccountsDetail" in consent.permissions)]
    body = {
        "Data": {"Account": data},
        "Links": {"Self": _links_self(request)},
        "Meta": {"TotalPages": 1},
    }
    return _json(request, orjson.dumps(body))


@routes.get(BASE + "/accounts/{account_id}/balances")
async def get_balances(request: web.Request) -> web.Response:
    """Booked and available balances of one account."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    _need(consent, "ReadBalances")
    account = bank.accounts[_account_in_consent(request, bank, consent)]
    booked, available = bank.balances_minor(account.account_id)
    data = balances_json(account, booked, available, request.app[CLOCK]())
    body = {
        "Data": {"Balance": data},
        "Links": {"Self": _links_self(request)},
        "Meta": {"TotalPages": 1},
    }
    return _json(request, orjson.dumps(body))


@routes.get(BASE + "/balances")
async def get_all_balances(request: web.Request) -> web.Response:
    """Booked and available balances of every account the consent covers, in one answer (the
    OBIE bulk endpoint: a client that does not know the accounts yet needs one round trip)."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    _need(consent, "ReadBalances")
    now = request.app[CLOCK]()
    data = []
    for account_id in consent.account_ids:
        booked, available = bank.balances_minor(account_id)
        data.extend(balances_json(bank.accounts[account_id], booked, available, now))
    body = {
        "Data": {"Balance": data},
        "Links": {"Self": _links_self(request)},
        "Meta": {"TotalPages": 1},
    }
    return _json(request, orjson.dumps(body))


def parse_when(request: web.Request, name: str) -> datetime | None:
    """An ISO 8601 query parameter (naive means UTC), or None; 400 when malformed."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as e:
        raise BankError(
            400, f"{name} is not an ISO 8601 date-time", code="UK.OBIE.Field.InvalidDate", path=name
        ) from e
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _window(
    consent: Consent, start: datetime | None, end: datetime | None
) -> tuple[datetime | None, datetime | None]:
    if consent.transaction_from is not None:
        start = max(start, consent.transaction_from) if start else consent.transaction_from
    if consent.transaction_to is not None:
        end = min(end, consent.transaction_to) if end else consent.transaction_to
    return start, end


def _directions(consent: Consent) -> set[Direction]:
    dirs = set()
    if "ReadTransactionsCredits" in consent.permissions:
        dirs.add(Direction.CREDIT)
    if "ReadTransactionsDebits" in consent.permissions:
        dirs.add(Direction.DEBIT)
    return dirs


def _fragments(
    bank: BankState, ledger: Ledger, items: Sequence[Transaction], detail: bool, pan: bool
) -> list[bytes]:
    shape = (2 if detail else 0) | (1 if pan else 0)
    out = []
    for tx in items:
        key = (tx.transaction_id, shape)
        frag = ledger.fragments.get(key)
        if frag is None:
            card = bank.cards.get(tx.card_id) if tx.card_id else None
            frag = orjson.dumps(transaction_json(tx, card, detail=detail, pan=pan))
            ledger.fragments[key] = frag
        out.append(frag)
    return out


@routes.get(BASE + "/accounts/{account_id}/transactions")
async def get_transactions(request: web.Request) -> web.Response:
    """One page of an account's transactions, newest first, with Links.Next while more remain."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    _need(consent, "ReadTransactionsBasic", "ReadTransactionsDetail")
    directions = _directions(consent)
    if not directions:
        raise BankError(
            403,
            "Consent lacks ReadTransactionsCredits/Debits",
            code="UK.OBIE.Resource.ConsentMismatch",
        )
    account_id = _account_in_consent(request, bank, consent)
    start = parse_when(request, "fromBookingDateTime")
    end = parse_when(request, "toBookingDateTime")
    if start and end and start > end:
        raise BankError(
            400,
            "fromBookingDateTime is after toBookingDateTime",
            code="UK.OBIE.Field.InvalidDate",
            path="fromBookingDateTime",
        )
    page = query_int(request, "page", default=1, low=1, high=1_000_000)
    ledger = bank.ledger(account_id)
    lo, hi = ledger.bounds(*_window(consent, start, end))
    size = request.app[SETTINGS].page_size
    if len(directions) == 1:  # only credits or only debits: filter the window
        selected: Sequence[Transaction] = [
            t for t in ledger.transactions[lo:hi] if t.direction in directions
        ]
        lo, hi = 0, len(selected)
    else:  # everything in the window: page by index, without copying the window
        selected = ledger.transactions
    total_pages = max(1, -(-(hi - lo) // size))
    if page > total_pages:
        raise BankError(400, f"page {page} is beyond the last page {total_pages}", path="page")
    top = hi - (page - 1) * size
    items = selected[max(lo, top - size) : top][::-1]
    detail = "ReadTransactionsDetail" in consent.permissions
    frags = _fragments(bank, ledger, items, detail, "ReadPAN" in consent.permissions)
    links = _links(request, page, total_pages)
    meta: dict[str, Any] = {"TotalPages": total_pages}
    if ledger.transactions:
        meta["FirstAvailableDateTime"] = iso(ledger.transactions[0].booked_at)
        meta["LastAvailableDateTime"] = iso(ledger.transactions[-1].booked_at)
    body = b"".join(
        [
            b'{"Data":{"Transaction":[',
            b",".join(frags),
            b']},"Links":',
            orjson.dumps(links),
            b',"Meta":',
            orjson.dumps(meta),
            b"}",
        ]
    )
    return _json(request, body)


def _links(request: web.Request, page: int, total: int) -> dict[str, str]:
    base = URL(request.app[SETTINGS].base_url() + request.path)
    query = dict(request.query)

    def at(p: int) -> str:
        return str(base.with_query({**query, "page": str(p)}))

    links = {"Self": at(page), "First": at(1), "Last": at(total)}
    if page < total:
        links["Next"] = at(page + 1)
    if page > 1:
        links["Prev"] = at(page - 1)
    return links


def setup(app: web.Application) -> None:
    """Register the account-information routes."""
    app.router.add_routes(routes)
    assert BANKS in app
