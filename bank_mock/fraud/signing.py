"""Each bank's ES256 event-signing key, its JWKS, and RFC 8417 Security Event Tokens."""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey

from bank_mock.errors import BankError
from bank_mock.keys import BANKS, SETTINGS, bank_of

routes = web.RouteTableDef()
SET_TYP = "secevent+jwt"


class Signer:
    """One bank's signing key."""

    def __init__(self, issuer: str, key: ECKey) -> None:
        key.ensure_kid()
        self.issuer = issuer
        self.key = key

    @property
    def kid(self) -> str:
        return str(self.key.kid)

    def public_jwk(self) -> dict[str, Any]:
        return {**self.key.as_dict(private=False), "alg": "ES256"}

    def make_set(
        self,
        *,
        audience: str,
        subject: str,
        events: dict[str, Any],
        now: datetime,
        txn: str | None = None,
    ) -> str:
        """A signed Security Event Token (RFC 8417) for one client."""
        stamp = int(now.timestamp())
        claims = {
            "iss": self.issuer,
            "aud": audience,
            "iat": stamp,
            "toe": stamp,
            "jti": secrets.token_hex(16),
            "txn": txn or secrets.token_hex(8),
            "sub": subject,
            "events": events,
        }
        header = {"alg": "ES256", "kid": self.kid, "typ": SET_TYP}
        return jwt.encode(header, claims, self.key, algorithms=["ES256"])


def load_or_create_key(directory: str, bank_id: str) -> ECKey:
    """The bank's key from ``directory/{bank_id}.pem``, created there (0600) if missing."""
    if not directory:
        return ECKey.generate_key("P-256", {"use": "sig"}, private=True)
    path = Path(directory) / f"{bank_id}.pem"
    if path.exists():
        return ECKey.import_key(path.read_bytes(), {"use": "sig"})
    key = ECKey.generate_key("P-256", {"use": "sig"}, private=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.as_pem(private=True))
    return key


SIGNERS = web.AppKey("signers", dict[str, Signer])


@routes.get("/banks/{bank_id}/.well-known/jwks.json")
async def bank_jwks(request: web.Request) -> web.Response:
    """The public key a client verifies this bank's events with."""
    bank = bank_of(request)
    return web.json_response({"keys": [request.app[SIGNERS][bank.profile.bank_id].public_jwk()]})


@routes.get("/.well-known/jwks.json")
async def all_jwks(request: web.Request) -> web.Response:
    """Every bank's public key."""
    return web.json_response({"keys": [s.public_jwk() for s in request.app[SIGNERS].values()]})


def signer_for(app: web.Application, bank_id: str) -> Signer:
    signer = app[SIGNERS].get(bank_id)
    if signer is None:
        raise BankError(404, "Unknown bank")
    return signer


def setup(app: web.Application) -> None:
    settings = app[SETTINGS]
    app[SIGNERS] = {
        bank_id: Signer(
            f"{settings.base_url()}/banks/{bank_id}",
            load_or_create_key(settings.signing_key_dir, bank_id),
        )
        for bank_id in app[BANKS]
    }
    app.router.add_routes(routes)
