"""Card payments booked on demand and on a timer, so people see receipts arrive live.

``POST /sandbox/banks/{bank_id}/payments`` books one or more realistic card payments (a local
merchant of the bank's country, an amount in that merchant's usual range) on an account with a
card, booked at once or pending; ``…/payments/{transaction_id}/book`` settles a pending one and
``…/reverse`` releases it (it leaves the statement). Every change is told to the clients with a
live consent on the account: an OBIE ``resource-update`` for a new payment, the bank's own
``urn:chatbank:events:transaction-changed`` for a pending one that booked or was reversed (OBIE
has no event for that). The events carry no data; clients fetch what changed with their token.

With ``BANK_DEMO_PAYMENTS_EVERY_S`` > 0 the bank books one payment that often on an account
some app is told about (``chatbank up --demo-payments``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections.abc import AsyncIterator
from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, Field

from bank_mock import catalog
from bank_mock.catalog import Merchant
from bank_mock.errors import BankError
from bank_mock.fraud import engine
from bank_mock.keys import BANKS, CLOCK, EVENTS, SETTINGS, bank_of
from bank_mock.models import Account, ConsentStatus, Direction, Transaction, TxStatus
from bank_mock.obie.serialize import amount as money
from bank_mock.sandbox import parse_body
from bank_mock.sandbox_events import notified_apps, parse_amount
from bank_mock.state import BankState

log = logging.getLogger(__name__)
routes = web.RouteTableDef()
MAX_COUNT = 50


class PaymentOrder(BaseModel):
    account_id: str | None = Field(default=None, min_length=1, max_length=40)
    username: str | None = Field(default=None, min_length=1, max_length=60)
    merchant: str | None = Field(default=None, min_length=1, max_length=100)
    amount: str | None = Field(default=None, min_length=1, max_length=20)
    pending: bool = False
    count: int = Field(default=1, ge=1, le=MAX_COUNT)


def merchants_of(bank: BankState) -> tuple[Merchant, ...]:
    return catalog.LOCAL_MERCHANTS.get(bank.profile.country) or catalog.LOCAL_MERCHANTS["GB"]


def _account(bank: BankState, order: PaymentOrder) -> Account:
    if order.account_id is not None:
        account = bank.accounts.get(order.account_id)
        if account is None:
            raise BankError(404, "Account not found", path="account_id")
        if not account.card_ids:
            raise BankError(400, "the account has no card", path="account_id")
        return account
    if order.username is not None:
        customer = bank.customers_by_username.get(order.username)
        if customer is None:
            raise BankError(404, "Customer not found", path="username")
        for account_id in customer.account_ids:
            if bank.accounts[account_id].card_ids:
                return bank.accounts[account_id]
        raise BankError(400, "the customer has no card", path="username")
    raise BankError(400, "name an account_id or a username", path="account_id")


def card_payment(
    bank: BankState,
    account: Account,
    now: datetime,
    rng: random.Random,
    *,
    merchant: Merchant,
    minor: int | None = None,
    pending: bool = False,
) -> Transaction:
    """A card payment at ``merchant`` now, as a card network would present it."""
    scale = catalog.SCALE.get(account.currency, 1.0)
    if minor is None:
        minor = max(1, round(rng.randint(merchant.low, merchant.high) * scale))
    booked, _ = bank.balances_minor(account.account_id)
    country = bank.profile.country
    city = catalog.CITIES.get(country, catalog.CITIES["GB"])[0]
    return Transaction(
        transaction_id=f"{account.account_id}p{secrets.token_hex(5)}",
        account_id=account.account_id,
        booked_at=now,
        value_at=now,
        amount_minor=minor,
        currency=account.currency,
        direction=Direction.DEBIT,
        status=TxStatus.PENDING if pending else TxStatus.BOOKED,
        merchant_name=merchant.name,
        raw_descriptor=f"{merchant.descriptor[:22]} {rng.randint(1000, 9999)} {city.name.upper()}",
        mcc=merchant.mcc,
        category=merchant.category,
        transaction_code="CardPayment",
        card_id=account.card_ids[0],
        counterparty_account=None,
        country=country,
        latitude=city.lat,
        longitude=city.lon,
        terminal_id=f"T{rng.randrange(10**8):08d}",
        device_id=None,
        ip_address=None,
        bank_reference=f"CP{secrets.token_hex(5).upper()}",
        balance_after_minor=booked - (0 if pending else minor),
    )


def book(app: web.Application, bank: BankState, tx: Transaction) -> None:
    """Record ``tx`` (through the fraud rules, as every card payment goes) and tell clients."""
    events = app[EVENTS]
    engine.process(bank, tx, events, app[CLOCK]())
    events.transactions_changed(bank, tx.account_id, status_only=False)


def _json(tx: Transaction) -> dict[str, object]:
    return {
        "transaction_id": tx.transaction_id,
        "account_id": tx.account_id,
        "merchant": tx.merchant_name,
        **money(tx.amount_minor, tx.currency),
        "status": tx.status.value,
        "booked_at": tx.booked_at.isoformat(),
    }


@routes.post("/sandbox/banks/{bank_id}/payments")
async def pay(request: web.Request) -> web.Response:
    """Book ``count`` card payments now on the account (or the customer's first card account)."""
    bank = bank_of(request)
    order: PaymentOrder = parse_body(PaymentOrder, await request.read())
    account = _account(bank, order)
    choices = merchants_of(bank)
    if order.merchant is not None:
        wanted = order.merchant.casefold()
        named = [m for m in choices if m.name.casefold() == wanted]
        choices = tuple(named) or (
            Merchant(order.merchant, order.merchant.upper()[:22], "5999", "shopping", 500, 5000),
        )
    minor = parse_amount(order.amount) if order.amount is not None else None
    rng = random.Random()
    now = request.app[CLOCK]()
    booked = []
    for _ in range(order.count):
        tx = card_payment(
            bank,
            account,
            now,
            rng,
            merchant=rng.choice(choices),
            minor=minor,
            pending=order.pending,
        )
        book(request.app, bank, tx)
        booked.append(_json(tx))
    body = {"payments": booked, "notified_apps": notified_apps(bank, account.account_id, now)}
    return web.json_response(body, status=201)


@routes.post("/sandbox/banks/{bank_id}/payments/{transaction_id}/{outcome:book|reverse}")
async def settle(request: web.Request) -> web.Response:
    """A pending card payment books (same id) or is reversed (it leaves the statement)."""
    bank = bank_of(request)
    tx = bank.find_added(request.match_info["transaction_id"])
    if tx is None:
        raise BankError(404, "Transaction not found", path="transaction_id")
    if tx.status != TxStatus.PENDING:
        raise BankError(409, "the payment is not pending", path="transaction_id")
    if request.match_info["outcome"] == "book":
        bank.book_pending(tx)
        status = "Booked"
    else:
        bank.reverse_pending(tx)
        status = "Reversed"
    request.app[EVENTS].transactions_changed(bank, tx.account_id, status_only=True)
    return web.json_response({**_json(tx), "status": status})


def watched_accounts(bank: BankState, now: datetime) -> list[Account]:
    """Card accounts under a live consent whose app is told about events."""
    out: dict[str, Account] = {}
    for consent in bank.consents.values():
        live = consent.status == ConsentStatus.AUTHORISED and (
            consent.expires_at is None or consent.expires_at > now
        )
        client = bank.clients.get(consent.client_id)
        if not live or client is None or not client.event_notification_url:
            continue
        for account_id in consent.account_ids:
            account = bank.accounts.get(account_id)
            if account is not None and account.card_ids:
                out[account_id] = account
    return list(out.values())


async def _timer(app: web.Application, every_s: float) -> None:
    rng = random.Random()
    while True:
        await asyncio.sleep(every_s)
        try:
            now = app[CLOCK]()
            candidates = [
                (bank, account)
                for bank in app[BANKS].values()
                for account in watched_accounts(bank, now)
            ]
            if not candidates:
                continue
            bank, account = rng.choice(candidates)
            merchant = rng.choice(merchants_of(bank))
            book(app, bank, card_payment(bank, account, now, rng, merchant=merchant))
        except Exception:
            log.exception("the demo payment timer failed once; it carries on")


async def _timer_ctx(app: web.Application) -> AsyncIterator[None]:
    every = app[SETTINGS].demo_payments_every_s
    task = asyncio.create_task(_timer(app, every)) if every > 0 else None
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
    app.cleanup_ctx.append(_timer_ctx)
