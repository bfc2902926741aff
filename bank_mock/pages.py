"""HTML rendering for the bank's own pages (Jinja2, autoescaped, no external assets), in the
customer's language (``bank_mock.i18n``)."""

from __future__ import annotations

import hmac
from typing import Any

import jinja2
from aiohttp import web

from bank_mock.i18n import choose, page_text
from bank_mock.models import Customer
from bank_mock.state import BankState

TEMPLATES = web.AppKey("templates", jinja2.Environment)

_BRANDS = {"northwind": "#1f4e79", "libertas": "#7a1f2b", "wisla": "#0b6e4f", "nakheel": "#8a6d1d"}

_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("bank_mock", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def language_of(request: web.Request) -> str:
    """The page language when no authorization request says it: ``?ui_locales=``, then the
    browser's Accept-Language, then English."""
    return choose(request.query.get("ui_locales"), request.headers.get("Accept-Language"))


def render(
    request: web.Request,
    bank: BankState,
    template: str,
    *,
    status: int = 200,
    language: str | None = None,
    **context: Any,
) -> web.Response:
    """A bank-branded HTML page in ``language`` (or the one the request asks for)."""
    t = page_text(language or language_of(request))
    html = (
        request.app[TEMPLATES]
        .get_template(template)
        .render(
            bank=bank.profile, brand=_BRANDS.get(bank.profile.bank_id, "#374151"), t=t, **context
        )
    )
    headers = {**_HEADERS, "Content-Language": t.language, "Vary": "Accept-Language"}
    return web.Response(text=html, status=status, content_type="text/html", headers=headers)


def check_login(bank: BankState, username: str, password: str) -> Customer | None:
    """The customer with these test credentials, or None (constant-time password compare)."""
    customer = bank.customers_by_username.get(username)
    expected = customer.password if customer else "\x00invalid"
    if hmac.compare_digest(expected.encode(), password.encode()) and customer is not None:
        return customer
    return None


def setup(app: web.Application) -> None:
    app[TEMPLATES] = environment()
