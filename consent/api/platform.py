"""The platform API (``/v1``): thin views that parse, call a use case and answer JSON."""

from __future__ import annotations

import hmac
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from consent.api.keys import BROKER, LIMITER
from consent.api.params import query_decimal, query_int
from consent.domain.merchants import CATEGORIES
from consent.domain.scopes import parse_scopes
from consent.service import accounts, alerts, cards, lifecycle, linking, platform, reads
from consent.service.broker import Broker
from consent.service.deadline import HEADER as DEADLINE_HEADER
from consent.service.deadline import Deadline, parse_deadline_ms
from consent.service.errors import BrokerError, bad_request
from consent.service.spending import SpendingQuery, spending
from consent.service.transactions import MAX_PAGE, TxQuery, transactions
from consent.store import audit
from consent.store.tables import ConsentRow, PlatformClient, Subject

routes = web.RouteTableDef()


async def _client(request: web.Request) -> PlatformClient:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential:
        raise BrokerError(
            401,
            "unauthenticated",
            "send Authorization: Bearer <client_id>.<secret>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return await platform.authenticate(request.app[BROKER], credential.strip())


def _purpose(request: web.Request) -> str:
    return request.headers.get("X-Purpose", "").strip()[:80]


async def _subject(request: web.Request, client: PlatformClient) -> Subject:
    return await platform.owned_subject(
        request.app[BROKER], client, request.match_info["subject_id"]
    )


async def _caller(
    request: web.Request, action: str | None
) -> tuple[Broker, PlatformClient, Subject]:
    """Authenticate the client and resolve its subject; with ``action``, also check the purpose
    here (refusals are audited). Reads check the purpose themselves, after the rate limit."""
    broker = request.app[BROKER]
    client = await _client(request)
    subject = await _subject(request, client)
    if action is not None:
        await reads.require_purpose(broker, client, subject.subject_id, _purpose(request), action)
    return broker, client, subject


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    if request.content_type != "application/json":
        raise BrokerError(415, "unsupported_media_type", "send application/json")
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad_request(f"{where}: {first['msg']}") from e


def consent_json(row: ConsentRow) -> dict[str, Any]:
    return {
        "consent_id": row.consent_id,
        "bank_id": row.bank_id,
        "scopes": [s for s in row.scopes.split(",") if s],
        "status": row.status,
        "created_at": row.created_at.isoformat(),
        "expires_at": row.expires_at.isoformat(),
        "authorized_at": row.authorized_at.isoformat() if row.authorized_at else None,
        "needs_reauthorization": row.needs_reauthorization,
    }


class NewClient(BaseModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    webhook_url: str | None = Field(
        default=None, max_length=2000, pattern=r"^https?://[^\x00-\x20\x7f]+$"
    )


@routes.post("/admin/v1/platform-clients")
async def admin_new_client(request: web.Request) -> web.Response:
    """Register a platform client (admin token); the credential is shown once."""
    broker = request.app[BROKER]
    expected = f"Bearer {broker.settings.admin_token.get_secret_value()}"
    if not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), expected.encode()
    ):
        raise BrokerError(401, "unauthenticated", "admin token required")
    body: NewClient = await _body(request, NewClient)
    row, credential, webhook_secret = await platform.register_client(
        broker, body.name, body.webhook_url
    )
    return web.json_response(
        {"client_id": row.client_id, "credential": credential, "webhook_secret": webhook_secret},
        status=201,
    )


@routes.get("/v1/banks")
async def banks(request: web.Request) -> web.Response:
    """Banks the platform can offer, with what each allows through a chat platform."""
    client = await _client(request)
    await reads.require_purpose(request.app[BROKER], client, None, _purpose(request), "banks.list")
    out = [
        {
            "bank_id": p.bank_id,
            "name": p.display_name,
            "scopes": sorted(s.value for s in p.allowed_scopes),
            "max_duration_days": p.max_duration_days,
        }
        for p in request.app[BROKER].policies.values()
    ]
    return web.json_response({"banks": out})


@routes.post("/v1/subjects")
async def new_subject(request: web.Request) -> web.Response:
    """A new opaque subject for one of the platform's users."""
    client = await _client(request)
    await reads.require_purpose(
        request.app[BROKER], client, None, _purpose(request), "subject.create"
    )
    subject = await platform.create_subject(request.app[BROKER], client)
    return web.json_response({"subject_id": subject.subject_id}, status=201)


class NewConsent(BaseModel):
    bank_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.~-]+$")
    scopes: list[str] = Field(min_length=1, max_length=4)
    duration_days: int | None = Field(default=None, ge=1, le=3650)
    # the user's language (BCP 47); the bank shows its pages in it (OIDC ui_locales)
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")


@routes.post("/v1/subjects/{subject_id}/consents")
async def new_consent(request: web.Request) -> web.Response:
    """Start linking a bank: returns the bank's own approval URL."""
    broker, client, subject = await _caller(request, "consent.create")
    body: NewConsent = await _body(request, NewConsent)
    try:
        scopes = parse_scopes(body.scopes)
    except ValueError as e:
        raise bad_request(str(e), "invalid_scope") from e
    started = await linking.start_link(
        broker, client, subject, body.bank_id, scopes, body.duration_days, language=body.language
    )
    return web.json_response(
        {
            "consent_id": started.consent_id,
            "authorization_url": started.authorization_url,
            "expires_at": started.expires_at,
            "scopes": started.scopes,
            "status": "awaiting_authorization",
        },
        status=201,
    )


@routes.get("/v1/subjects/{subject_id}/consents")
async def consents(request: web.Request) -> web.Response:
    """The subject's consents, oldest first."""
    broker, _, subject = await _caller(request, "consent.list")
    rows = await linking.list_consents(broker, subject)
    return web.json_response({"consents": [consent_json(r) for r in rows]})


@routes.delete("/v1/subjects/{subject_id}/consents/{consent_id}")
async def revoke(request: web.Request) -> web.Response:
    """Revoke a consent: the bank is told and the broker's copy of the tokens is shredded."""
    broker, _, subject = await _caller(request, "consent.revoke")
    row = await linking.revoke(broker, subject, request.match_info["consent_id"])
    return web.json_response(consent_json(row))


@routes.get("/v1/subjects/{subject_id}/balances")
async def balances(request: web.Request) -> web.Response:
    """Minimized balance views across the subject's banks, answered inside the request's
    deadline (``X-Request-Deadline-Ms``): per account fresh or last known, per bank a reason."""
    deadline = Deadline.within(parse_deadline_ms(request.headers.get(DEADLINE_HEADER)) / 1000)
    broker, client, subject = await _caller(request, None)
    await request.app[LIMITER].acquire(subject.subject_id, broker.clock())
    answer = await reads.balances(broker, client, subject, _purpose(request), deadline)
    body = {"balances": answer.views, "errors": answer.errors, "unavailable": answer.unavailable}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@routes.get("/v1/subjects/{subject_id}/accounts")
async def subject_accounts(request: web.Request) -> web.Response:
    """The subject's accounts across banks, each with the actions its consent and bank allow."""
    broker, client, subject = await _caller(request, None)
    await request.app[LIMITER].acquire(subject.subject_id, broker.clock())
    views = await accounts.accounts(broker, client, subject, _purpose(request))
    return web.json_response({"accounts": views})


SPENDING_DEFAULT_DAYS = 30
SPENDING_MAX_DAYS = 366


@routes.get("/v1/subjects/{subject_id}/spending")
async def subject_spending(request: web.Request) -> web.Response:
    """Money out over a period: ?from=&to= (dates), merchant=, category=, account= (a handle),
    bank= (a bank id)."""
    broker, client, subject = await _caller(request, None)
    today = broker.clock().date()
    end = _date(request, "to") or today
    start = _date(request, "from") or end - timedelta(days=SPENDING_DEFAULT_DAYS - 1)
    if start > end:
        raise bad_request("from is after to", "invalid_date")
    if (end - start).days >= SPENDING_MAX_DAYS:
        raise bad_request(f"a period is at most {SPENDING_MAX_DAYS} days", "invalid_date")
    category = _category(request)
    query = SpendingQuery(
        start,
        end,
        request.query.get("merchant", "").strip()[:60] or None,
        category,
        request.query.get("account", "").strip()[:80] or None,
        request.query.get("bank", "").strip()[:40] or None,
    )
    await request.app[LIMITER].acquire(subject.subject_id, broker.clock())
    return web.json_response(await spending(broker, client, subject, query, _purpose(request)))


@routes.get("/v1/subjects/{subject_id}/access-log")
async def access_log(request: web.Request) -> web.Response:
    """Every access to the subject's data, with the hash chain verified."""
    broker, _, subject = await _caller(request, "access_log.read")
    async with broker.sessions() as session:
        entries, report = await audit.verify(session, subject.subject_id)
    return web.json_response(
        {
            "entries": [
                {
                    "seq": e.seq,
                    "at": e.at.isoformat(),
                    "client_id": e.client_id,
                    "action": e.action,
                    "scope": e.scope,
                    "purpose": e.purpose,
                    "fields": list(e.fields),
                    "outcome": e.outcome,
                    "reason": e.reason,
                }
                for e in entries
            ],
            "integrity": {
                "ok": report.ok,
                "checked": report.checked,
                "first_bad_seq": report.first_bad_seq,
            },
        }
    )


def _date(request: web.Request, name: str) -> date | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return date.fromisoformat(raw)  # an empty value is not a date either
    except ValueError as e:
        raise bad_request(f"{name} must be a date like 2026-03-31", "invalid_date") from e


def _category(request: web.Request) -> str | None:
    category = request.query.get("category", "").strip() or None
    if category is not None and category not in CATEGORIES:
        raise bad_request(
            f"category must be one of {', '.join(sorted(CATEGORIES))}", "invalid_category"
        )
    return category


def _amount(request: web.Request, name: str) -> Decimal | None:
    return query_decimal(request, name, high=Decimal(10**12), code="invalid_amount")


@routes.get("/v1/subjects/{subject_id}/accounts/{handle}/transactions")
async def account_transactions(request: web.Request) -> web.Response:
    """Minimized transactions of one account: ?from=&to= (dates), merchant=, category=,
    amount_min=, amount_max= (the amount's size), limit=, cursor=; answered inside the
    request's deadline (``X-Request-Deadline-Ms``)."""
    deadline = Deadline.within(parse_deadline_ms(request.headers.get(DEADLINE_HEADER)) / 1000)
    broker, client, subject = await _caller(request, None)
    start, end = _date(request, "from"), _date(request, "to")
    if start and end and start > end:
        raise bad_request("from is after to", "invalid_date")
    limit = query_int(request, "limit", default=20, low=1, high=MAX_PAGE)
    merchant = request.query.get("merchant", "").strip()[:60] or None
    query = TxQuery(
        request.match_info["handle"],
        start,
        end,
        merchant,
        limit,
        request.query.get("cursor"),
        _category(request),
        _amount(request, "amount_min"),
        _amount(request, "amount_max"),
    )
    await request.app[LIMITER].acquire(subject.subject_id, broker.clock())
    page = await transactions(broker, client, subject, query, _purpose(request), deadline)
    return web.json_response(page)


class AlertAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=20)


@routes.post("/v1/subjects/{subject_id}/alerts/{alert_id}/answer")
async def answer_alert(request: web.Request) -> web.Response:
    """The user's answer to a fraud alert: it_was_me, freeze_card or unfreeze_card; answers
    converge in any order and return the alert's view as it now stands."""
    broker, client, subject = await _caller(request, "alert.answer")
    body: AlertAnswer = await _body(request, AlertAnswer)
    return web.json_response(
        await alerts.answer(broker, client, subject, request.match_info["alert_id"], body.answer)
    )


@routes.get("/v1/subjects/{subject_id}/cards")
async def list_cards(request: web.Request) -> web.Response:
    """The subject's cards on card-controls consents: handle, last 4, bank, status."""
    broker, client, subject = await _caller(request, "read.cards")
    await request.app[LIMITER].acquire(subject.subject_id, broker.clock())
    return web.json_response({"cards": await cards.cards(broker, client, subject)})


@routes.post("/v1/subjects/{subject_id}/cards/{card_handle}/{action:freeze|unfreeze}")
async def set_card(request: web.Request) -> web.Response:
    """Freeze or unfreeze one card (idempotent)."""
    broker, client, subject = await _caller(request, f"card.{request.match_info['action']}")
    handle, action = request.match_info["card_handle"], request.match_info["action"]
    await request.app[LIMITER].acquire(subject.subject_id, broker.clock())
    return web.json_response(await cards.set_card(broker, client, subject, handle, action))


@routes.get("/v1/subjects/{subject_id}/export")
async def export_subject(request: web.Request) -> web.Response:
    """Everything the broker holds about the subject (no secrets, no bank identifiers)."""
    broker, _, subject = await _caller(request, "subject.export")
    return web.json_response(await lifecycle.export(broker, subject))


@routes.delete("/v1/subjects/{subject_id}")
async def delete_subject(request: web.Request) -> web.Response:
    """Revoke every consent and delete everything the broker holds about the subject."""
    broker, client, subject = await _caller(request, None)
    await reads.require_purpose(broker, client, None, _purpose(request), "subject.delete")
    await lifecycle.delete_subject(broker, subject)
    return web.Response(status=204)
