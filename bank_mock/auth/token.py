"""The OAuth 2.0 token endpoint: client credentials, authorization code + PKCE, refresh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from bank_mock.auth import pkce
from bank_mock.auth.clients import authenticate_client
from bank_mock.auth.store import AUTH
from bank_mock.errors import OAuthError, read_form
from bank_mock.keys import CLOCK, GRANTS, SETTINGS, bank_of
from bank_mock.models import Client, ConsentStatus
from bank_mock.state import BankState

routes = web.RouteTableDef()
_MAX_FIELD = 2048


@routes.post("/banks/{bank_id}/token")
async def token(request: web.Request) -> web.Response:
    """Issue tokens per RFC 6749 §4.1/§4.4/§6 (errors answered the RFC way)."""
    bank = bank_of(request)
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Use application/x-www-form-urlencoded")
    form = await read_form(request)
    fields: dict[str, str] = {}
    for key in form:
        value = form.getone(key)
        if not isinstance(value, str) or len(value) > _MAX_FIELD:
            raise OAuthError("invalid_request", f"Bad value for {key[:40]}")
        if len(form.getall(key)) > 1:
            raise OAuthError("invalid_request", f"{key[:40]} given more than once")
        fields[key] = value
    client = authenticate_client(
        bank,
        request.headers.get("Authorization"),
        fields.get("client_id"),
        fields.get("client_secret"),
    )
    grant_type = fields.get("grant_type", "")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise OAuthError(
            "unsupported_grant_type", f"grant_type {grant_type[:40]!r} is not supported"
        )
    body = await handler(request, bank, client, fields)
    return web.json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def _client_credentials(
    request: web.Request, bank: BankState, client: Client, fields: dict[str, str]
) -> dict[str, Any]:
    scopes = set(fields.get("scope", "accounts").split())
    if not scopes <= {"accounts", "openid"}:
        raise OAuthError("invalid_scope", "Client credentials grant only the accounts scope")
    grant = request.app[GRANTS].issue_access(
        client_id=client.client_id,
        bank_id=bank.profile.bank_id,
        consent_id=None,
        scopes=frozenset({"accounts"}),
        now=request.app[CLOCK](),
        ttl_s=request.app[SETTINGS].access_token_ttl_s,
    )
    ttl = request.app[SETTINGS].access_token_ttl_s
    return {
        "access_token": grant.token,
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": "accounts",
    }


def _live_consent(bank: BankState, consent_id: str, request: web.Request) -> None:
    consent = bank.consents.get(consent_id)
    now = request.app[CLOCK]()
    if consent is None or consent.status != ConsentStatus.AUTHORISED:
        raise OAuthError("invalid_grant", "The consent is not authorised")
    if consent.expires_at is not None and consent.expires_at <= now:
        raise OAuthError("invalid_grant", "The consent has expired")


def _issue_pair(
    request: web.Request, bank: BankState, client: Client, consent_id: str, scopes: frozenset[str]
) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    access = request.app[GRANTS].issue_access(
        client_id=client.client_id,
        bank_id=bank.profile.bank_id,
        consent_id=consent_id,
        scopes=scopes,
        now=request.app[CLOCK](),
        ttl_s=settings.access_token_ttl_s,
    )
    refresh = request.app[GRANTS].issue_refresh(
        client_id=client.client_id,
        bank_id=bank.profile.bank_id,
        consent_id=consent_id,
        scopes=scopes,
    )
    return {
        "access_token": access.token,
        "token_type": "Bearer",
        "expires_in": settings.access_token_ttl_s,
        "refresh_token": refresh.token,
        "scope": " ".join(sorted(scopes)),
        "consent_id": consent_id,
    }


async def _authorization_code(
    request: web.Request, bank: BankState, client: Client, fields: dict[str, str]
) -> dict[str, Any]:
    for name in ("code", "redirect_uri", "code_verifier"):
        if not fields.get(name):
            raise OAuthError("invalid_request", f"{name} is required")
    code = request.app[AUTH].take_code(fields["code"])
    now = request.app[CLOCK]()
    if code is None or code.bank_id != bank.profile.bank_id or code.client_id != client.client_id:
        raise OAuthError("invalid_grant", "Unknown, used or foreign authorization code")
    if code.expires_at <= now:
        raise OAuthError("invalid_grant", "The authorization code has expired")
    if code.redirect_uri != fields["redirect_uri"]:
        raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")
    if not pkce.verify(fields["code_verifier"], code.code_challenge):
        raise OAuthError("invalid_grant", "PKCE verification failed")
    _live_consent(bank, code.consent_id, request)
    return _issue_pair(request, bank, client, code.consent_id, code.scopes)


async def _refresh_token(
    request: web.Request, bank: BankState, client: Client, fields: dict[str, str]
) -> dict[str, Any]:
    if not fields.get("refresh_token"):
        raise OAuthError("invalid_request", "refresh_token is required")
    grant = request.app[GRANTS].take_refresh(fields["refresh_token"])
    if (
        grant is None
        or grant.client_id != client.client_id
        or grant.bank_id != bank.profile.bank_id
    ):
        raise OAuthError("invalid_grant", "Unknown, used or foreign refresh token")
    _live_consent(bank, grant.consent_id, request)
    return _issue_pair(request, bank, client, grant.consent_id, grant.scopes)


_Grant = Callable[[web.Request, BankState, Client, dict[str, str]], Awaitable[dict[str, Any]]]
_GRANTS: dict[str, _Grant] = {
    "client_credentials": _client_credentials,
    "authorization_code": _authorization_code,
    "refresh_token": _refresh_token,
}


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
