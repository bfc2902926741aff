"""The customer's own dashboard at the bank: see connected apps and revoke any of them."""

from __future__ import annotations

import hmac

from aiohttp import web
from yarl import URL

from bank_mock.auth.approval import revoke_by_customer
from bank_mock.auth.permissions import describe
from bank_mock.auth.store import AUTH, Session
from bank_mock.errors import read_form
from bank_mock.i18n import PageText, from_ui_locales, page_text
from bank_mock.keys import CLOCK, EVENTS, GRANTS, bank_of
from bank_mock.models import ConsentStatus
from bank_mock.pages import check_login, language_of, render
from bank_mock.state import BankState

routes = web.RouteTableDef()
COOKIE = "bank_session"
STATUS_WORDS = {  # msgids of bank_mock/locales
    ConsentStatus.AWAITING_AUTHORISATION: "Awaiting approval",
    ConsentStatus.AUTHORISED: "Active",
    ConsentStatus.REJECTED: "Rejected",
    ConsentStatus.REVOKED: "Revoked",
}


def _session(request: web.Request, bank: BankState) -> Session | None:
    return request.app[AUTH].session(
        request.cookies.get(COOKIE, ""), bank.profile.bank_id, request.app[CLOCK]()
    )


def _keep_language(request: web.Request, path: str) -> str:
    """``path`` with the ``ui_locales`` the page was opened with, so the language survives the
    login post and the redirects."""
    chosen = from_ui_locales(request.query.get("ui_locales"))
    return str(URL(path).update_query(ui_locales=chosen)) if chosen else path


def _login(request: web.Request, bank: BankState, error: str | None, status: int) -> web.Response:
    t = page_text(language_of(request))
    return render(
        request,
        bank,
        "login.html",
        status=status,
        action=_keep_language(request, f"/banks/{bank.profile.bank_id}/dashboard/login"),
        hidden_name="next",
        hidden_value="dashboard",
        purpose=t._("Manage the apps connected to your accounts."),
        error=t._(error) if error else None,
    )


def _status(t: PageText, status: ConsentStatus, expired: bool) -> str:
    if expired and status == ConsentStatus.AUTHORISED:
        return t._("Expired")
    return t._(STATUS_WORDS.get(status, status.value))


@routes.get("/banks/{bank_id}/dashboard")
async def dashboard(request: web.Request) -> web.Response:
    """The customer's consents, with a Revoke button on each active one."""
    bank = bank_of(request)
    session = _session(request, bank)
    if session is None:
        return _login(request, bank, None, 200)
    customer = bank.customers[session.customer_id]
    now = request.app[CLOCK]()
    t = page_text(language_of(request))
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
                "permissions": ", ".join(t._(describe(p)) for p in c.permissions)
                + (" · " + t._("card controls") if "cards" in c.scopes else ""),
                "accounts": ", ".join(
                    f"{bank.accounts[a].nickname} ••{bank.accounts[a].account_number[-4:]}"
                    for a in c.account_ids
                ),
                "expires": t.date(c.expires_at) if c.expires_at else "—",
                "status": _status(t, c.status, expired),
                "active": c.status == ConsentStatus.AUTHORISED and not expired,
            }
        )
    notice = t._("Access revoked.") if request.query.get("notice") == "revoked" else None
    return render(
        request,
        bank,
        "dashboard.html",
        customer_name=customer.full_name,
        consents=rows,
        csrf=session.csrf,
        notice=notice,
        action=_keep_language(request, f"/banks/{bank.profile.bank_id}/dashboard/revoke"),
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
    response = web.HTTPSeeOther(_keep_language(request, f"/banks/{bank.profile.bank_id}/dashboard"))
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
    t = page_text(language_of(request))
    if not isinstance(csrf, str) or not hmac.compare_digest(csrf, session.csrf):
        message = t._("This form has expired. Reload the page.")
        return render(request, bank, "error.html", status=403, message=message)
    consent = bank.consents.get(consent_id) if isinstance(consent_id, str) else None
    if consent is None or consent.customer_id != session.customer_id:
        message = t._("No such connected app.")
        return render(request, bank, "error.html", status=404, message=message)

    revoke_by_customer(
        bank, consent, request.app[CLOCK](), request.app[EVENTS], request.app[GRANTS]
    )
    done = URL(_keep_language(request, f"/banks/{bank.profile.bank_id}/dashboard"))
    raise web.HTTPSeeOther(str(done.update_query(notice="revoked")))


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
