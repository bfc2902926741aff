"""Sandbox: inject a card transaction so the fraud engine sees it (``chatbank demo fraud``)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from decimal import Decimal, InvalidOperation

from aiohttp import web
from pydantic import BaseModel, Field

from bank_mock import catalog
from bank_mock.errors import BankError
from bank_mock.fraud import engine
from bank_mock.keys import CLOCK, EVENTS, bank_of
from bank_mock.models import ConsentStatus, Direction, Transaction, TxStatus
from bank_mock.sandbox import parse_body
from bank_mock.state import BankState

routes = web.RouteTableDef()
MAX_AMOUNT = Decimal("1000000")
# The one grammar of a sandbox amount: 0.01 to 1000000 with at most two places, ASCII digits, no
# sign, exponent or leading zero. bank_mock/openapi.json states the same pattern for every sandbox
# amount (a test holds them equal), so a request the file calls valid is never refused for its
# amount and one it calls invalid is never accepted.
AMOUNT_PATTERN = (
    r"^(?:[1-9][0-9]{0,5}(?:\.[0-9]{1,2})?|1000000(?:\.00?)?|0\.(?:0[1-9]|[1-9][0-9]?))$"
)
_AMOUNT = re.compile(AMOUNT_PATTERN)
MAX_BATCH = 500


class Injection(BaseModel):
    account_id: str = Field(min_length=1, max_length=40)
    amount: str = Field(min_length=1, max_length=20)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    merchant_name: str = Field(min_length=1, max_length=100)
    mcc: str = Field(default="5999", pattern=r"^\d{4}$")
    country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    card_id: str | None = Field(default=None, max_length=40)
    online: bool = False


def parse_amount(raw: str) -> int:
    """An amount in :data:`AMOUNT_PATTERN` → minor units; 400 saying what is wrong otherwise."""
    if _AMOUNT.fullmatch(raw) is None:
        try:
            value = Decimal(raw)
        except InvalidOperation:
            value = None
        if value is not None and value.is_finite():
            exponent = value.as_tuple().exponent
            if isinstance(exponent, int) and exponent < -2:
                raise BankError(400, "amount has more than two decimal places", path="amount")
            if value <= 0 or value > MAX_AMOUNT:
                raise BankError(400, "amount must be between 0.01 and 1000000", path="amount")
        plain = "amount must be a plain decimal string like 123.45 (0.01 to 1000000)"
        raise BankError(400, plain, path="amount")
    value = Decimal(raw)
    return int(value * 100)


def notified_apps(bank: BankState, account_id: str, now: datetime) -> list[str]:
    """The apps told about an alert on ``account_id``: those with a live consent covering it
    and an event address (the demo says whether anyone will see the alert)."""
    names = set()
    for consent in bank.consents_on(account_id):
        live = consent.status == ConsentStatus.AUTHORISED and (
            consent.expires_at is None or consent.expires_at > now
        )
        client = bank.clients.get(consent.client_id)
        if live and account_id in consent.account_ids and client and client.event_notification_url:
            names.add(client.client_name)
    return sorted(names)


class Batch(BaseModel):
    transactions: list[Injection] = Field(min_length=1, max_length=MAX_BATCH)


@routes.post("/sandbox/banks/{bank_id}/transactions")
async def inject(request: web.Request) -> web.Response:
    """Book a card payment now and run the fraud rules on it."""
    body: Injection = parse_body(Injection, await request.read())
    return web.json_response(_book(request, bank_of(request), body), status=201)


@routes.post("/sandbox/banks/{bank_id}/transactions/batch")
async def inject_batch(request: web.Request) -> web.Response:
    """Book several card payments now, in order, each as the single-payment call would (one
    request for many: load generators); all are checked before any is booked."""
    bank = bank_of(request)
    batch: Batch = parse_body(Batch, await request.read())
    for i, body in enumerate(batch.transactions):
        try:
            _check(bank, body)
        except BankError as e:
            where = f"transactions.{i}.{e.path}" if e.path else f"transactions.{i}"
            raise BankError(e.status, f"{where}: {e.message}"[:400], path=where[:100]) from e
    results = [_book(request, bank, body) for body in batch.transactions]
    return web.json_response({"results": results}, status=201)


def _check(bank: BankState, body: Injection) -> None:
    """The single-payment call's checks, without booking."""
    account = bank.accounts.get(body.account_id)
    if account is None:
        raise BankError(404, "Account not found", path="account_id")
    if body.card_id is not None and body.card_id not in account.card_ids:
        raise BankError(400, "card_id does not belong to the account", path="card_id")
    parse_amount(body.amount)
    if (body.currency or account.currency) not in catalog.SCALE:
        raise BankError(400, f"Unsupported currency {body.currency}", path="currency")


def _book(request: web.Request, bank: BankState, body: Injection) -> dict[str, object]:
    account = bank.accounts.get(body.account_id)
    if account is None:
        raise BankError(404, "Account not found", path="account_id")
    card_id = body.card_id or (account.card_ids[0] if account.card_ids else None)
    if card_id is not None and card_id not in account.card_ids:
        raise BankError(400, "card_id does not belong to the account", path="card_id")
    minor = parse_amount(body.amount)
    currency = body.currency or account.currency
    if currency not in catalog.SCALE:
        raise BankError(400, f"Unsupported currency {currency}", path="currency")
    instructed: int | None = None
    if currency != account.currency:
        instructed = minor
        rate = catalog.SCALE[account.currency] / catalog.SCALE[currency]
        minor = max(1, round(minor * rate * 1.0275))
    now = request.app[CLOCK]()
    country = body.country or bank.profile.country
    booked, _ = bank.balances_minor(account.account_id)
    tx = Transaction(
        transaction_id=f"{account.account_id}x{secrets.token_hex(4)}",
        account_id=account.account_id,
        booked_at=now,
        value_at=now,
        amount_minor=minor,
        currency=account.currency,
        direction=Direction.DEBIT,
        status=TxStatus.PENDING,
        merchant_name=body.merchant_name,
        raw_descriptor=f"{body.merchant_name.upper()[:22]} {secrets.randbelow(9000):04d} {country}",
        mcc=body.mcc,
        category="other",
        transaction_code="CardPayment",
        card_id=card_id,
        counterparty_account=None,
        country=country,
        latitude=None if body.online else 48.8566,
        longitude=None if body.online else 2.3522,
        terminal_id=None if body.online else f"T{secrets.randbelow(10**8):08d}",
        device_id=f"dev-{secrets.token_hex(6)}" if body.online else None,
        ip_address="203.0.113.7" if body.online else None,
        bank_reference=f"SBX{secrets.token_hex(5).upper()}",
        balance_after_minor=booked - minor,
        instructed_amount_minor=instructed,
        instructed_currency=currency if instructed is not None else None,
    )
    alert = engine.process(bank, tx, request.app[EVENTS], now)
    request.app[EVENTS].transactions_changed(bank, account.account_id, status_only=False)
    return {
        "transaction_id": tx.transaction_id,
        "alerts": [alert.alert_id] if alert else [],
        "reason": alert.reason if alert else None,
        "notified_apps": notified_apps(bank, account.account_id, now) if alert else [],
    }


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
