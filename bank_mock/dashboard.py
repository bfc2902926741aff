"""The customer's own dashboard at the bank: see connected apps and revoke any of them."""

from __future__ import annotations

import hmac

from aiohttp import web

from bank_mock.auth.approval import revoke_by_customer
from bank_mock.auth.permissions import describe
from bank_mock.auth.store import AUTH, Session
from bank_mock.errors import read_form
from bank_mock.keys import CLOCK, EVENTS, GRANTS, bank_of
from bank_mock.models import ConsentStatus
from bank_mock.pages import check_login, render
from bank_mock.state import BankState

routes = web.RouteTableDef()
COOKIE = "bank_session"


def _session(request: web.Request, bank: BankState) -> Session | None:
    return request.app[AUTH].session(
        request.cookies.get(COOKIE, ""), bank.profile.bank_id, request.app[CLOCK]()
    )


def _login(request: web.Request, bank: BankState, error: str | None, status: int) -> web.Response:
    return render(
        request,
        bank,
        "login.html",
        status=status,
        action=f"/banks/{bank.profile.bank_id}/dashboard/login",
        hidden_name="next",
        hidden_value="dashboard",
        purpose="Manage the apps connected to your accounts.",
        error=error,
    )


@routes.get("/banks/{bank_id}/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    """The customer's consents, with a Revoke button on each active one."""
    bank = bank_of(request)
    session = _session(request, bank)
    if session is None:
        return _login(request, bank, None, 200)
    customer = bank.customers[session.customer_id]
    now = request.app[CLOCK]()
    rows = []
    for c in sorted(bank.consents.values(), key=lambda c: c.created_at, reverse=True):
        if c.customer_id != customer.customer_id:
            continue
        expired = c.expires_at is not None and c.expires_at <= now
        client = bank.clients.get(c.client_id)
        rows.append(
            {
                "consent_id": c.consent_id,
                "client_name": client.client_name if client else c.client_id,
                "permissions": ", ".join(describe(p) for p in c.permissions)
                + (" · card controls" if "cards" in c.scopes else ""),
                "accounts": ", ".join(
                    f"{bank.accounts[a].nickname} ••{bank.accounts[a].account_number[-4:]}"
                    for a in c.account_ids
                ),
                "expires": c.expires_at.strftime("%d %b %Y") if c.expires_at else "—",
                "status": "Expired"
                if expired and c.status == ConsentStatus.AUTHORISED
                else c.status.value,
                "active": c.status == ConsentStatus.AUTHORISED and not expired,
            }
        )
    notice = "Access revoked." if request.query.get("notice") == "revoked" else None
    return render(
        request,
        bank,
        "dashboard.html",
        customer_name=customer.full_name,
        consents=rows,
        csrf=session.csrf,
        notice=notice,
        action=f"/banks/{bank.profile.bank_id}/dashboard/revoke",
    )


@routes.post("/banks/{bank_id}/dashboard/login")
async def dashboard_login(request: web.Request) -> web.StreamResponse:
    """Log in with the test credentials and open a session."""
    bank = bank_of(request)
    form = await read_form(request)
    username, password = form.get("username"), form.get("password")
    customer = None
    if isinstance(username, str) and isinstance(password, str):
        customer = check_login(bank, username, password)
    if customer is None:
        return _login(request, bank, "Wrong username or password.", 401)
    session = request.app[AUTH].new_session(
        bank.profile.bank_id, customer.customer_id, request.app[CLOCK]()
    )
    response = web.HTTPSeeOther(f"/banks/{bank.profile.bank_id}/dashboard")
    response.set_cookie(
        COOKIE,
        session.session_id,
        path=f"/banks/{bank.profile.bank_id}/dashboard",
        httponly=True,
        samesite="Lax",
    )
    raise response


@routes.post("/banks/{bank_id}/dashboard/revoke")
async def dashboard_revoke(request: web.Request) -> web.StreamResponse:
    """Revoke one consent: its tokens die and its client is told by a signed event."""
    bank = bank_of(request)
    session = _session(request, bank)
    if session is None:
        return _login(request, bank, "Your session has ended. Log in again.", 401)
    form = await read_form(request)
    csrf, consent_id = form.get("csrf"), form.get("consent_id")
    if not isinstance(csrf, str) or not hmac.compare_digest(csrf, session.csrf):
        return render(
            request,
            bank,
            "error.html",
            status=403,
            message="This form has expired. Reload the page.",
        )
    consent = bank.consents.get(consent_id) if isinstance(consent_id, str) else None
    if consent is None or consent.customer_id != session.customer_id:
        return render(request, bank, "error.html", status=404, message="No such connected app.")

    revoke_by_customer(
        bank, consent, request.app[CLOCK](), request.app[EVENTS], request.app[GRANTS]
    )
    raise web.HTTPSeeOther(f"/banks/{bank.profile.bank_id}/dashboard?notice=revoked")


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
