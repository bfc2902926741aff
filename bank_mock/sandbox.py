"""Sandbox endpoints (only with ``BANK_SANDBOX=true``): test customers, raw records, and
shortcuts that do what the HTML pages and the dashboard do, without a browser.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from bank_mock.auth import approval, pkce
from bank_mock.auth.store import AUTH
from bank_mock.errors import BankError
from bank_mock.keys import CLOCK, EVENTS, GRANTS, SETTINGS, bank_of
from bank_mock.models import ConsentStatus

routes = web.RouteTableDef()
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def sandbox_guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Sandbox paths do not exist unless the sandbox setting is on."""
    if request.path.startswith("/sandbox/") and not request.app[SETTINGS].sandbox:
        raise BankError(404, "Resource not found")
    return await handler(request)


def parse_body(model: type[BaseModel], body: bytes) -> Any:
    """Validate a JSON body into ``model``; 400 naming the first bad field."""
    try:
        return model.model_validate_json(body or b"{}")
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BankError(400, f"{where}: {first['msg']}"[:400], path=where[:100]) from e


@routes.get("/sandbox/banks/{bank_id}/customers")
async def customers(request: web.Request) -> web.Response:
    """Test customers with their credentials and accounts."""
    bank = bank_of(request)
    out = []
    for c in bank.customers.values():
        out.append(
            {
                "customer_id": c.customer_id,
                "username": c.username,
                "password": c.password,
                "full_name": c.full_name,
                "accounts": [
                    {
                        "account_id": a,
                        "kind": bank.accounts[a].kind.value,
                        "card_ids": bank.accounts[a].card_ids,
                    }
                    for a in c.account_ids
                ],
            }
        )
    return web.json_response({"customers": out})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


@routes.get("/sandbox/banks/{bank_id}/raw/accounts/{account_id}")
async def raw_account(request: web.Request) -> web.Response:
    """Every internal field of an account, its owner, cards and transactions (for leak tests)."""
    bank = bank_of(request)
    account = bank.accounts.get(request.match_info["account_id"])
    if account is None:
        raise BankError(404, "Account not found", path="AccountId")
    customer = bank.customers[account.customer_id]
    body = {
        "customer": _plain(asdict(customer)),
        "account": _plain(asdict(account)),
        "cards": [_plain(asdict(bank.cards[c])) for c in account.card_ids],
        "transactions": [_plain(asdict(t)) for t in bank.ledger(account.account_id).transactions],
    }
    return web.json_response(body)


class Approve(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    account_ids: list[str] | None = Field(default=None, max_length=50)
    scopes: list[str] = Field(default_factory=lambda: ["accounts"], max_length=5)
    redirect_uri: str = Field(min_length=1, max_length=2000)
    code_challenge: str = Field(min_length=43, max_length=43)
    state: str = Field(default="", max_length=512)


@routes.post("/sandbox/banks/{bank_id}/consents/{consent_id}/approve")
async def approve(request: web.Request) -> web.Response:
    """Approve a consent as the customer would on the page; returns the authorization code."""
    bank = bank_of(request)
    body: Approve = parse_body(Approve, await request.read())
    consent = bank.consents.get(request.match_info["consent_id"])
    if consent is None:
        raise BankError(404, "Consent not found", path="ConsentId")
    client = bank.clients[consent.client_id]
    if body.redirect_uri not in client.redirect_uris:
        raise BankError(
            400, "redirect_uri is not registered for the consent's client", path="redirect_uri"
        )
    if not pkce.valid_challenge(body.code_challenge):
        raise BankError(400, "code_challenge is not an S256 challenge", path="code_challenge")
    scopes = frozenset(body.scopes) | {"accounts"}
    if not scopes <= approval.ALLOWED_SCOPES:
        raise BankError(400, "Unknown scope", path="scopes")
    customer = bank.customers_by_username.get(body.username)
    if customer is None:
        raise BankError(404, "No such test customer", path="username")
    now = request.app[CLOCK]()
    approval.authorise(
        bank,
        consent,
        customer,
        customer.account_ids if body.account_ids is None else body.account_ids,
        scopes,
        now,
        request.app[EVENTS],
    )
    auth = request.app[AUTH]
    req = auth.new_request(
        bank_id=bank.profile.bank_id,
        client_id=client.client_id,
        redirect_uri=body.redirect_uri,
        state=body.state,
        code_challenge=body.code_challenge,
        consent_id=consent.consent_id,
        scopes=scopes,
        now=now,
    )
    code = auth.issue_code(req, now, request.app[SETTINGS].auth_code_ttl_s)
    return web.json_response({"code": code.code, "consent_id": consent.consent_id})


@routes.post("/sandbox/banks/{bank_id}/consents/{consent_id}/revoke")
async def revoke(request: web.Request) -> web.Response:
    """Revoke a consent as the customer would on the dashboard."""
    bank = bank_of(request)
    consent = bank.consents.get(request.match_info["consent_id"])
    if consent is None:
        raise BankError(404, "Consent not found", path="ConsentId")
    if consent.status != ConsentStatus.AUTHORISED:
        raise BankError(
            409, f"Consent is {consent.status.value}", code="UK.OBIE.Resource.InvalidConsentStatus"
        )
    approval.revoke_by_customer(
        bank, consent, request.app[CLOCK](), request.app[EVENTS], request.app[GRANTS]
    )
    return web.json_response({"consent_id": consent.consent_id, "status": consent.status.value})


def setup(app: web.Application) -> None:
    app.middlewares.append(sandbox_guard)
    app.router.add_routes(routes)
