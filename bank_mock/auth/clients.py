"""Client registration (an RFC 7591 subset) and client authentication at the token endpoint."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from urllib.parse import unquote, urlsplit

from aiohttp import web
from pydantic import BaseModel, Field, ValidationError, field_validator

from bank_mock.errors import OAuthError
from bank_mock.keys import bank_of
from bank_mock.models import Client
from bank_mock.state import BankState

routes = web.RouteTableDef()


def _absolute_http_url(value: str) -> str:
    if len(value) > 2000:
        raise ValueError("URL too long")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ValueError("must be an absolute http(s) URL without a fragment")
    return value


class Registration(BaseModel):
    client_name: str = Field(min_length=1, max_length=100)
    redirect_uris: list[str] = Field(min_length=1, max_length=10)
    event_notification_url: str | None = Field(default=None, max_length=2000)

    @field_validator("redirect_uris")
    @classmethod
    def _redirects(cls, values: list[str]) -> list[str]:
        return [_absolute_http_url(v) for v in values]

    @field_validator("event_notification_url")
    @classmethod
    def _events(cls, value: str | None) -> str | None:
        return None if value is None else _absolute_http_url(value)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@routes.post("/banks/{bank_id}/register")
async def register(request: web.Request) -> web.Response:
    """Register a third party: returns its client id and (once) its secret."""
    bank = bank_of(request)
    try:
        reg = Registration.model_validate_json(await request.read())
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise OAuthError("invalid_client_metadata", f"{where}: {first['msg']}") from e
    secret = secrets.token_urlsafe(32)
    client = Client(
        client_id=f"{bank.profile.bank_id}-{secrets.token_hex(8)}",
        bank_id=bank.profile.bank_id,
        client_secret_hash=hash_secret(secret),
        client_name=reg.client_name,
        redirect_uris=reg.redirect_uris,
        event_notification_url=reg.event_notification_url,
    )
    bank.clients[client.client_id] = client
    bank.keep("client", client.client_id, client)
    return web.json_response(
        {
            "client_id": client.client_id,
            "client_secret": secret,
            "client_name": client.client_name,
            "redirect_uris": client.redirect_uris,
            "event_notification_url": client.event_notification_url,
        },
        status=201,
        headers={"Cache-Control": "no-store"},
    )


def authenticate_client(
    bank: BankState, authorization: str | None, form_id: str | None, form_secret: str | None
) -> Client:
    """The client named by HTTP Basic or form credentials; ``invalid_client`` (401) otherwise."""
    client_id, secret = form_id, form_secret
    if authorization:
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise OAuthError("invalid_client", "Unsupported client authentication", 401)
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError) as e:
            raise OAuthError("invalid_client", "Malformed Basic credentials", 401) from e
        raw_id, sep, raw_secret = decoded.partition(":")
        if not sep:
            raise OAuthError("invalid_client", "Malformed Basic credentials", 401)
        client_id, secret = unquote(raw_id), unquote(raw_secret)
    if not client_id or not secret:
        raise OAuthError("invalid_client", "Client authentication required", 401)
    client = bank.clients.get(client_id)
    expected = client.client_secret_hash if client else hash_secret("-")
    if not hmac.compare_digest(expected, hash_secret(secret)) or client is None:
        raise OAuthError("invalid_client", "Unknown client or wrong secret", 401)
    return client


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
