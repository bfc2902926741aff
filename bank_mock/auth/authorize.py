"""The authorization pages: the customer logs in at the bank, reviews the request, picks
accounts and approves or rejects; the browser is then sent back to the client with a code.
"""

from __future__ import annotations

from aiohttp import web
from yarl import URL

from bank_mock.auth import approval, pkce
from bank_mock.auth.permissions import KINDS, describe, platform_sees
from bank_mock.auth.store import AUTH, AuthRequest
from bank_mock.errors import BankError, read_form
from bank_mock.i18n import page_text
from bank_mock.keys import CLOCK, EVENTS, SETTINGS, bank_of
from bank_mock.models import ConsentStatus
from bank_mock.pages import check_login, language_of, render
from bank_mock.state import BankState

routes = web.RouteTableDef()
MAX_LOGIN_ATTEMPTS = 5


class PageError(Exception):
    """A problem shown on an error page (never a redirect to an unverified URI)."""


def _validate(bank: BankState, query: dict[str, str]) -> dict[str, str]:
    """Check an authorization request; raise PageError with a plain message if it is bad."""
    client = bank.clients.get(query.get("client_id", ""))
    if client is None:
        raise PageError("The app that sent you here is not registered with this bank.")
    if query.get("redirect_uri", "") not in client.redirect_uris:
        raise PageError("The return address of the app does not match its registration.")
    if query.get("response_type") != "code":
        raise PageError("Unsupported response_type (only 'code').")
    if query.get("code_challenge_method") != "S256" or not pkce.valid_challenge(
        query.get("code_challenge", "")
    ):
        raise PageError("A valid PKCE S256 code_challenge is required.")
    consent = bank.consents.get(query.get("consent_id", ""))
    if consent is None or consent.client_id != client.client_id:
        raise PageError("This consent request is unknown.")
    if consent.status != ConsentStatus.AWAITING_AUTHORISATION:
        raise PageError("This consent request is no longer waiting for approval.")
    scopes = set(query.get("scope", "openid accounts").split())
    if not scopes <= approval.ALLOWED_SCOPES or "accounts" not in scopes:
        raise PageError("The app asked for an unknown scope.")
    if len(query.get("state", "")) > 512:
        raise PageError("The state parameter is too long.")
    return query


@routes.get("/banks/{bank_id}/authorize")
async def authorize(request: web.Request) -> web.Response:
    """Start: validate the request and show the login page."""
    bank = bank_of(request)
    query = {k: request.query.get(k, "") for k in request.query}
    language = language_of(request)  # ui_locales from the client, else the browser's
    try:
        _validate(bank, query)
    except PageError as e:
        t = page_text(language)
        return render(request, bank, "error.html", status=400, message=t._(str(e)))
    req = request.app[AUTH].new_request(
        bank_id=bank.profile.bank_id,
        client_id=query["client_id"],
        redirect_uri=query["redirect_uri"],
        state=query.get("state", ""),
        code_challenge=query["code_challenge"],
        consent_id=query["consent_id"],
        scopes=frozenset(query.get("scope", "openid accounts").split()),
        now=request.app[CLOCK](),
    )
    req.language = language
    return _login_page(request, bank, req, error=None, status=200)


def _login_page(
    request: web.Request, bank: BankState, req: AuthRequest, error: str | None, status: int
) -> web.Response:
    client = bank.clients[req.client_id]
    t = page_text(req.language)
    return render(
        request,
        bank,
        "login.html",
        status=status,
        language=req.language,
        action=f"/banks/{bank.profile.bank_id}/authorize/login",
        hidden_name="request_id",
        hidden_value=req.request_id,
        purpose=t._("%(client)s wants to connect to your accounts.", client=client.client_name),
        error=t._(error) if error else None,
    )


def _consent_page(
    request: web.Request, bank: BankState, req: AuthRequest, error: str | None
) -> web.Response:
    assert req.customer_id is not None
    customer = bank.customers[req.customer_id]
    consent = bank.consents[req.consent_id]
    t = page_text(req.language)
    accounts = []
    for account_id in customer.account_ids:
        a = bank.accounts[account_id]
        accounts.append(
            {
                "account_id": a.account_id,
                "nickname": a.nickname,
                "kind": t._(KINDS.get(a.kind.value, a.kind.value)),
                "last4": a.account_number[-4:],
            }
        )
    return render(
        request,
        bank,
        "consent.html",
        status=400 if error else 200,
        language=req.language,
        client_name=bank.clients[req.client_id].client_name,
        customer_name=customer.full_name,
        permissions=[t._(describe(p)) for p in consent.permissions],
        platform_sees=[t._(line) for line in platform_sees(consent.permissions, req.scopes)],
        cards="cards" in req.scopes,
        expires=t.date(consent.expires_at) if consent.expires_at else None,
        accounts=accounts,
        request_id=req.request_id,
        action=f"/banks/{bank.profile.bank_id}/authorize/decision",
        error=t._(error) if error else None,
    )


async def _form(request: web.Request) -> dict[str, list[str]]:
    if request.content_type != "application/x-www-form-urlencoded":
        raise BankError(415, "Use a form post")
    form = await read_form(request)
    return {k: [v for v in form.getall(k) if isinstance(v, str)] for k in set(form.keys())}


def _pending(
    request: web.Request, bank: BankState, form: dict[str, list[str]]
) -> AuthRequest | None:
    request_id = (form.get("request_id") or [""])[0]
    req = request.app[AUTH].request(request_id, request.app[CLOCK]())
    if req is None or req.bank_id != bank.profile.bank_id:
        return None
    return req


@routes.post("/banks/{bank_id}/authorize/login")
async def login(request: web.Request) -> web.Response:
    """Check the test credentials, then show what is asked."""
    bank = bank_of(request)
    form = await _form(request)
    req = _pending(request, bank, form)
    if req is None:
        return _expired(request, bank)
    customer = check_login(
        bank, (form.get("username") or [""])[0], (form.get("password") or [""])[0]
    )
    if customer is None:
        req.failed_logins += 1
        if req.failed_logins >= MAX_LOGIN_ATTEMPTS:
            request.app[AUTH].requests.pop(req.request_id, None)
            message = page_text(req.language)._("Too many failed attempts.")
            return render(
                request, bank, "error.html", status=403, language=req.language, message=message
            )
        return _login_page(request, bank, req, error="Wrong username or password.", status=401)
    req.customer_id = customer.customer_id
    return _consent_page(request, bank, req, error=None)


def _expired(request: web.Request, bank: BankState) -> web.Response:
    message = page_text(language_of(request))._(
        "This sign-in has expired. Start again from the app."
    )
    return render(request, bank, "error.html", status=400, message=message)


def _back_to_client(req: AuthRequest, **params: str) -> web.HTTPFound:
    query = {**params, **({"state": req.state} if req.state else {})}
    return web.HTTPFound(str(URL(req.redirect_uri).update_query(query)))


@routes.post("/banks/{bank_id}/authorize/decision")
async def decision(request: web.Request) -> web.Response:
    """Approve (with the chosen accounts) or reject, then redirect back to the client."""
    bank = bank_of(request)
    form = await _form(request)
    req = _pending(request, bank, form)
    if req is None or req.customer_id is None:
        return _expired(request, bank)
    consent = bank.consents[req.consent_id]
    now = request.app[CLOCK]()
    if (form.get("decision") or [""])[0] != "approve":
        approval.reject(consent, now)
        bank.keep("consent", consent.consent_id, consent)
        request.app[AUTH].requests.pop(req.request_id, None)
        raise _back_to_client(req, error="access_denied", error_description="The customer declined")
    try:
        approval.authorise(
            bank,
            consent,
            bank.customers[req.customer_id],
            form.get("account_id", []),
            req.scopes,
            now,
            request.app[EVENTS],
        )
    except BankError as e:
        if e.path == "account_ids":
            return _consent_page(request, bank, req, error="Choose at least one of your accounts.")
        message = page_text(req.language)._(e.message)
        return render(
            request, bank, "error.html", status=400, language=req.language, message=message
        )
    code = request.app[AUTH].issue_code(req, now, request.app[SETTINGS].auth_code_ttl_s)
    raise _back_to_client(req, code=code.code)


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
