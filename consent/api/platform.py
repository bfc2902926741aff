"""The platform API (``/v1``): thin views that parse, call a use case and answer JSON."""

from __future__ import annotations

import hmac
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web
from pydantic import BaseModel, Field, ValidationError

from consent.api.keys import BROKER
from consent.api.params import query_decimal, query_int
from consent.domain.access import Action
from consent.domain.insights import previous_period
from consent.domain.merchants import CATEGORIES
from consent.domain.scopes import Scope, parse_scopes
from consent.outbox.relay import BATCH_MAX
from consent.service import (
    accounts,
    alerts,
    authz,
    cards,
    lifecycle,
    linking,
    platform,
    reads,
    receipts,
    support,
)
from consent.service.authz import Grant
from consent.service.deadline import HEADER as DEADLINE_HEADER
from consent.service.deadline import Deadline, parse_deadline_ms
from consent.service.errors import BrokerError, bad_request
from consent.service.insights import InsightQuery, insights
from consent.service.spending import SpendingQuery, spending
from consent.service.transactions import MAX_PAGE, TxQuery, transactions
from consent.store import audit, security_log
from consent.store.tables import ConsentRow, Subject

routes = web.RouteTableDef()


def _credential(request: web.Request) -> str | None:
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def _purpose(request: web.Request) -> str:
    return request.headers.get("X-Purpose", "").strip()[:80]


async def _authorize(request: web.Request, action: Action, **named: Any) -> Grant:
    """The authorization step (consent.service.authz) for this request: the credential, the
    purpose, and the ids in its path; ``named`` adds what the body asks for."""
    info = request.match_info
    ids = {name: info.get(name) for name in ("subject_id", "consent_id", "handle", "alert_id")}
    return await authz.authorize(
        request.app[BROKER],
        authz.Ask(
            action=action,
            method=request.method,
            route=info.route.resource.canonical if info.route.resource else request.path[:200],
            credential=_credential(request),
            purpose=_purpose(request),
            **{**ids, **named},
        ),
    )


def _deadline(request: web.Request) -> Deadline:
    """When the answer is due: the request's ``X-Request-Deadline-Ms`` (or the default) from
    its arrival, parsed before anything else so a bad header is refused at once."""
    return Deadline.within(parse_deadline_ms(request.headers.get(DEADLINE_HEADER)) / 1000)


def _owned(grant: Grant) -> Subject:
    assert grant.subject is not None  # an allowed request named its subject
    return grant.subject


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    if request.content_type != "application/json":
        raise BrokerError(415, "unsupported_media_type", "send application/json")
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise bad_request(f"{where}: {first['msg']}") from e


async def _lenient(request: web.Request, model: type[BaseModel]) -> Any:
    """The body as ``model`` if it is one, else None (it is refused properly once the request
    is authorized, so an unauthorized caller learns nothing from the body's checks)."""
    if request.content_type != "application/json":
        return None
    try:
        return model.model_validate_json(await request.read())
    except ValidationError:
        return None


def _known_scopes(names: list[str]) -> frozenset[Scope]:
    return frozenset(Scope(n) for n in names if n in {s.value for s in Scope})


def consent_json(row: ConsentRow) -> dict[str, Any]:
    return {
        "consent_id": row.consent_id,
        "bank_id": row.bank_id,
        "scopes": sorted(s.value for s in row.scopes),
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
    # opt-in: up to this many outbox messages per signed POST ({"events": [...]}, answered per
    # id); 1 (the default) keeps one message per POST
    webhook_batch_max: int = Field(default=1, ge=1, le=BATCH_MAX, strict=True)


def _require_admin(request: web.Request) -> None:
    expected = f"Bearer {request.app[BROKER].settings.admin_token.get_secret_value()}"
    if not hmac.compare_digest(
        request.headers.get("Authorization", "").encode(), expected.encode()
    ):
        raise BrokerError(401, "unauthenticated", "admin token required")


@routes.post("/admin/v1/platform-clients")
async def admin_new_client(request: web.Request) -> web.Response:
    """Register a platform client (admin token); the credential is shown once."""
    _require_admin(request)
    broker = request.app[BROKER]
    body: NewClient = await _body(request, NewClient)
    row, credential, webhook_secret = await platform.register_client(
        broker, body.name, body.webhook_url, webhook_batch_max=body.webhook_batch_max
    )
    return web.json_response(
        {"client_id": row.client_id, "credential": credential, "webhook_secret": webhook_secret},
        status=201,
    )


@routes.get("/admin/v1/security-log")
async def admin_security_log(request: web.Request) -> web.Response:
    """The newest refusals that concerned no subject of the caller (admin token): ?limit=1..1000."""
    _require_admin(request)
    raw = request.query.get("limit", "100")
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
        raise bad_request("limit must be between 1 and 1000")
    async with request.app[BROKER].sessions() as session:
        entries = await security_log.recent(session, int(raw))
    return web.json_response(
        {
            "entries": [
                {
                    "at": e.at.isoformat(),
                    "client_id": e.client_id,
                    "method": e.method,
                    "route": e.route,
                    "reason": e.reason,
                }
                for e in entries
            ]
        }
    )


@routes.get("/v1/banks")
async def banks(request: web.Request) -> web.Response:
    """Banks the platform can offer, with what each allows through a chat platform."""
    await _authorize(request, Action.BANKS_LIST)
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
    grant = await _authorize(request, Action.SUBJECT_CREATE)
    subject = await platform.create_subject(request.app[BROKER], grant.client)
    return web.json_response({"subject_id": subject.subject_id}, status=201)


class NewConsent(BaseModel):
    bank_id: str = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_.~-]+$")
    scopes: list[str] = Field(min_length=1, max_length=5)
    duration_days: int | None = Field(default=None, ge=1, le=3650)
    # the user's language (BCP 47); the bank shows its pages in it (OIDC ui_locales)
    language: str | None = Field(default=None, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8}){0,3}$")
    # new card payments reach the chat as receipts (needs "transactions"; changeable later)
    receipts: bool = False


@routes.post("/v1/subjects/{subject_id}/consents")
async def new_consent(request: web.Request) -> web.Response:
    """Start linking a bank: returns the bank's own approval URL (the bank given until the
    request's deadline)."""
    deadline = _deadline(request)
    asked = await _lenient(request, NewConsent)  # the bank policy decides on what is asked
    grant = await _authorize(
        request,
        Action.CONSENT_CREATE,
        bank_id=asked.bank_id if asked else None,
        scopes=_known_scopes(asked.scopes) if asked else frozenset(),
        duration_days=asked.duration_days if asked else None,
    )
    body: NewConsent = await _body(request, NewConsent)
    try:
        scopes = parse_scopes(body.scopes)
    except ValueError as e:
        raise bad_request(str(e), "invalid_scope") from e
    started = await linking.start_link(
        request.app[BROKER],
        grant.client,
        _owned(grant),
        body.bank_id,
        scopes,
        body.duration_days,
        language=body.language,
        deadline=deadline,
        receipts=body.receipts,
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
    grant = await _authorize(request, Action.CONSENT_LIST)
    rows = await linking.list_consents(request.app[BROKER], _owned(grant))
    return web.json_response({"consents": [consent_json(r) for r in rows]})


@routes.delete("/v1/subjects/{subject_id}/consents/{consent_id}")
async def revoke(request: web.Request) -> web.Response:
    """Revoke a consent: the bank is told (best effort, until the request's deadline) and the
    broker's copy of the tokens is shredded."""
    deadline = _deadline(request)
    grant = await _authorize(request, Action.CONSENT_REVOKE)
    assert grant.consent is not None
    row = await linking.revoke(
        request.app[BROKER], _owned(grant), grant.consent.consent_id, deadline
    )
    return web.json_response(consent_json(row))


@routes.get("/v1/subjects/{subject_id}/balances")
async def balances(request: web.Request) -> web.Response:
    """Minimized balance views across the subject's banks, answered inside the request's
    deadline (``X-Request-Deadline-Ms``): per account fresh or last known, per bank a reason."""
    deadline = _deadline(request)
    grant = await _authorize(request, Action.READ_BALANCES, log_scope="balances")
    answer = await reads.balances(
        request.app[BROKER], grant.client, _owned(grant), _purpose(request), deadline
    )
    body = {"balances": answer.views, "errors": answer.errors, "unavailable": answer.unavailable}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@routes.get("/v1/subjects/{subject_id}/accounts")
async def subject_accounts(request: web.Request) -> web.Response:
    """The subject's accounts across banks, each with the actions its consent and bank allow,
    answered inside the request's deadline (``X-Request-Deadline-Ms``): a bank that does not
    answer is listed from what was last read of it, and named in ``unavailable``."""
    deadline = _deadline(request)
    grant = await _authorize(request, Action.READ_ACCOUNTS)
    answer = await accounts.accounts(
        request.app[BROKER], grant.client, _owned(grant), _purpose(request), deadline
    )
    return web.json_response({"accounts": answer.views, "unavailable": answer.unavailable})


SPENDING_DEFAULT_DAYS = 30
SPENDING_MAX_DAYS = 366


@routes.get("/v1/subjects/{subject_id}/spending")
async def subject_spending(request: web.Request) -> web.Response:
    """Money out over a period: ?from=&to= (dates), merchant=, category=, account= (a handle),
    bank= (a bank id); every bank at once inside the request's deadline, a bank left out named
    in ``unavailable``."""
    deadline = _deadline(request)
    account = request.query.get("account", "").strip()[:80] or None
    # an account named here is checked like one in a path: another client's is a probe
    grant = await _authorize(
        request, Action.READ_SPENDING, log_scope="transactions", handle=account
    )
    broker = request.app[BROKER]
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
        account,
        request.query.get("bank", "").strip()[:40] or None,
    )
    return web.json_response(
        await spending(broker, grant.client, _owned(grant), query, _purpose(request), deadline)
    )


INSIGHTS_MAX_DAYS = 366


@routes.get("/v1/subjects/{subject_id}/insights")
async def subject_insights(request: web.Request) -> web.Response:
    """Spending by category per currency over a period and the change from the period before:
    ?from=&to= (dates; default the last 30 days), bank= (a bank id), top_merchants= (a
    category: its biggest merchants too). An aggregate, never a row; answered inside the
    request's deadline (``X-Request-Deadline-Ms``), a bank that fails named and left out."""
    deadline = Deadline.within(parse_deadline_ms(request.headers.get(DEADLINE_HEADER)) / 1000)
    grant = await _authorize(request, Action.READ_INSIGHTS, log_scope="transactions")
    broker = request.app[BROKER]
    today = broker.clock().date()
    end = _date(request, "to") or today
    start = _date(request, "from") or end - timedelta(days=SPENDING_DEFAULT_DAYS - 1)
    if start > end:
        raise bad_request("from is after to", "invalid_date")
    if (end - start).days >= INSIGHTS_MAX_DAYS:
        raise bad_request(f"a period is at most {INSIGHTS_MAX_DAYS} days", "invalid_date")
    if start > today:
        raise bad_request("the period starts in the future", "invalid_date")
    top = request.query.get("top_merchants")  # when given, one of the categories
    if top is not None and top not in CATEGORIES:
        raise bad_request(
            f"top_merchants must be one of {', '.join(sorted(CATEGORIES))}", "invalid_category"
        )
    before_start, before_end = previous_period(start, end)
    query = InsightQuery(
        start,
        end,
        before_start,
        before_end,
        top,
        request.query.get("bank", "").strip()[:40] or None,
    )
    body = await insights(broker, grant.client, _owned(grant), query, _purpose(request), deadline)
    return web.Response(body=orjson.dumps(body), content_type="application/json")


@routes.get("/v1/subjects/{subject_id}/access-log")
async def access_log(request: web.Request) -> web.Response:
    """Every access to the subject's data, with the hash chain verified."""
    grant = await _authorize(request, Action.ACCESS_LOG_READ)
    async with request.app[BROKER].sessions() as session:
        entries, report = await audit.verify(session, _owned(grant).subject_id)
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
    deadline = _deadline(request)
    grant = await _authorize(
        request,
        Action.READ_TRANSACTIONS,
        scopes=frozenset({Scope.TRANSACTIONS}),
        log_scope="transactions",
    )
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
    page = await transactions(
        request.app[BROKER], grant.client, _owned(grant), query, _purpose(request), deadline
    )
    return web.json_response(page)


class AlertAnswer(BaseModel):
    answer: str = Field(min_length=1, max_length=20)


@routes.post("/v1/subjects/{subject_id}/alerts/{alert_id}/answer")
async def answer_alert(request: web.Request) -> web.Response:
    """The user's answer to a fraud alert: it_was_me, freeze_card or unfreeze_card; answers
    converge in any order and return the alert's view as it now stands; the bank is given
    until the request's deadline (``X-Request-Deadline-Ms``)."""
    deadline = _deadline(request)
    asked = await _lenient(request, AlertAnswer)
    choice = asked.answer if asked else None
    grant = await _authorize(
        request,
        Action.ALERT_ANSWER,
        scopes=alerts.needed_scopes(choice),
        log_scope="card_controls" if choice in alerts.CARD_ACTIONS else "fraud_alerts",
    )
    body: AlertAnswer = await _body(request, AlertAnswer)
    return web.json_response(await alerts.answer(request.app[BROKER], grant, body.answer, deadline))


@routes.get("/v1/subjects/{subject_id}/cards")
async def list_cards(request: web.Request) -> web.Response:
    """The subject's cards on card-controls consents: handle, last 4, bank, status; answered
    inside the request's deadline, a bank that gave none named in ``unavailable``."""
    deadline = _deadline(request)
    grant = await _authorize(request, Action.READ_CARDS, log_scope="card_controls")
    return web.json_response(
        await cards.cards(request.app[BROKER], grant.client, _owned(grant), deadline)
    )


@routes.post("/v1/subjects/{subject_id}/cards/{card_handle}/{action:freeze|unfreeze}")
async def set_card(request: web.Request) -> web.Response:
    """Freeze or unfreeze one card (idempotent), the bank given until the request's
    deadline."""
    deadline = _deadline(request)
    handle, action = request.match_info["card_handle"], request.match_info["action"]
    grant = await _authorize(
        request,
        Action.CARD_FREEZE if action == "freeze" else Action.CARD_UNFREEZE,
        log_scope="card_controls",
    )
    return web.json_response(
        await cards.set_card(
            request.app[BROKER], grant.client, _owned(grant), handle, action, deadline
        )
    )


class SupportText(BaseModel):
    text: str = Field(min_length=1, max_length=2000)
    language: str = Field(default="en", pattern=r"^(en|ar|pl)$")


class SupportRating(BaseModel):
    conversation: str = Field(min_length=1, max_length=40)
    rating: int = Field(ge=1, le=5)


class SupportClose(BaseModel):
    conversation: str = Field(min_length=1, max_length=40)


_SUPPORT = frozenset({Scope.SUPPORT})


@routes.post("/v1/subjects/{subject_id}/consents/{consent_id}/support/messages")
async def support_message(request: web.Request) -> web.Response:
    """The user's message to a person at the consent's bank: into the open conversation, or a
    new one. The answer says whether it opened one and, when nobody is there, when someone
    will answer; the bank's replies come later as ``support_message`` deliveries."""
    grant = await _authorize(request, Action.SUPPORT_SEND, scopes=_SUPPORT, log_scope="support")
    body: SupportText = await _body(request, SupportText)
    answer = await support.send(request.app[BROKER], grant, body.text, body.language)
    return web.json_response(answer, status=201)


@routes.post("/v1/subjects/{subject_id}/consents/{consent_id}/support/rating")
async def support_rating(request: web.Request) -> web.Response:
    """The user's 1-5 rating of a conversation the bank closed."""
    grant = await _authorize(request, Action.SUPPORT_RATE, scopes=_SUPPORT, log_scope="support")
    body: SupportRating = await _body(request, SupportRating)
    return web.json_response(
        await support.rate(request.app[BROKER], grant, body.conversation, body.rating)
    )


@routes.post("/v1/subjects/{subject_id}/consents/{consent_id}/support/close")
async def support_close(request: web.Request) -> web.Response:
    """The user ends a conversation (idempotent)."""
    grant = await _authorize(request, Action.SUPPORT_CLOSE, scopes=_SUPPORT, log_scope="support")
    body: SupportClose = await _body(request, SupportClose)
    return web.json_response(await support.close(request.app[BROKER], grant, body.conversation))


class ReceiptChoiceBody(BaseModel):
    enabled: bool


CLOCK_TIME = r"^([01]\d|2[0-3]):[0-5]\d$"


class QuietHoursBody(BaseModel):
    start: str = Field(pattern=CLOCK_TIME)
    end: str = Field(pattern=CLOCK_TIME)
    timezone: str = Field(default="UTC", min_length=1, max_length=64)


@routes.get("/v1/subjects/{subject_id}/receipts")
async def receipt_settings(request: web.Request) -> web.Response:
    """Which accounts send receipts (per consent default and per known account), and the
    subject's quiet hours."""
    grant = await _authorize(request, Action.RECEIPTS_READ)
    return web.json_response(await receipts.settings(request.app[BROKER], _owned(grant)))


@routes.put("/v1/subjects/{subject_id}/accounts/{handle}/receipts")
async def receipt_choice(request: web.Request) -> web.Response:
    """Receipts on or off for one account (needs a live consent with transactions)."""
    grant = await _authorize(
        request,
        Action.RECEIPTS_SET,
        scopes=frozenset({Scope.TRANSACTIONS}),
        log_scope="transactions",
    )
    body: ReceiptChoiceBody = await _body(request, ReceiptChoiceBody)
    assert grant.handle is not None
    answer = await receipts.choose(
        request.app[BROKER], grant.client, _owned(grant), grant.handle, body.enabled
    )
    return web.json_response(answer)


@routes.put("/v1/subjects/{subject_id}/receipts/quiet-hours")
async def quiet_hours(request: web.Request) -> web.Response:
    """Quiet hours (local HH:MM to HH:MM in an IANA zone): receipts wait, then arrive as one
    summary."""
    grant = await _authorize(request, Action.QUIET_HOURS_SET)
    body: QuietHoursBody = await _body(request, QuietHoursBody)
    answer = await receipts.set_quiet(
        request.app[BROKER], grant.client, _owned(grant), body.start, body.end, body.timezone
    )
    return web.json_response(answer)


@routes.delete("/v1/subjects/{subject_id}/receipts/quiet-hours")
async def no_quiet_hours(request: web.Request) -> web.Response:
    """No quiet hours: held receipts arrive now as one summary."""
    grant = await _authorize(request, Action.QUIET_HOURS_SET)
    answer = await receipts.set_quiet(
        request.app[BROKER], grant.client, _owned(grant), None, None, None
    )
    return web.json_response(answer)


@routes.get("/v1/subjects/{subject_id}/export")
async def export_subject(request: web.Request) -> web.Response:
    """Everything the broker holds about the subject (no secrets, no bank identifiers)."""
    grant = await _authorize(request, Action.SUBJECT_EXPORT)
    return web.json_response(await lifecycle.export(request.app[BROKER], _owned(grant)))


@routes.delete("/v1/subjects/{subject_id}")
async def delete_subject(request: web.Request) -> web.Response:
    """Revoke every consent and delete everything the broker holds about the subject."""
    deadline = _deadline(request)
    grant = await _authorize(request, Action.SUBJECT_DELETE)
    await lifecycle.delete_subject(request.app[BROKER], _owned(grant), deadline)
    return web.Response(status=204)
