"""Issued OAuth 2.0 access and refresh tokens, and the guard every protected view calls.

Tokens are random opaque strings (RFC 6750 bearer tokens). A client-credentials token has no
consent and carries the ``accounts`` scope for the consent endpoints; an authorization-code
token is bound to one consent and only reads what that consent allows, while it is Authorised
and unexpired.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web

from bank_mock.disk import ACCESS, REFRESH, Disk
from bank_mock.errors import BankError
from bank_mock.models import ConsentStatus
from bank_mock.state import BankState


@dataclass(frozen=True, slots=True)
class AccessGrant:
    token: str
    client_id: str
    bank_id: str
    consent_id: str | None  # None for client-credentials tokens
    scopes: frozenset[str]
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class RefreshGrant:
    token: str
    client_id: str
    bank_id: str
    consent_id: str
    scopes: frozenset[str]


class GrantStore:
    """Tokens of every bank, in memory, and written through to ``disk`` when there is one."""

    def __init__(self, disk: Disk | None = None) -> None:
        self._access: dict[str, AccessGrant] = {}
        self._refresh: dict[str, RefreshGrant] = {}
        self._disk = disk
        if disk is not None:
            self._access = {g.token: g for _, g in disk.load(ACCESS, AccessGrant)}
            self._refresh = {g.token: g for _, g in disk.load(REFRESH, RefreshGrant)}

    def _dropped(self, kind: str, tokens: list[str]) -> None:
        if self._disk is not None and tokens:
            self._disk.drop(kind, tokens)

    def issue_access(
        self,
        *,
        client_id: str,
        bank_id: str,
        consent_id: str | None,
        scopes: frozenset[str],
        now: datetime,
        ttl_s: int,
    ) -> AccessGrant:
        grant = AccessGrant(
            token=secrets.token_urlsafe(32),
            client_id=client_id,
            bank_id=bank_id,
            consent_id=consent_id,
            scopes=scopes,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        self._access[grant.token] = grant
        if self._disk is not None:
            self._disk.put(ACCESS, grant.token, grant)
        return grant

    def issue_refresh(
        self, *, client_id: str, bank_id: str, consent_id: str, scopes: frozenset[str]
    ) -> RefreshGrant:
        grant = RefreshGrant(secrets.token_urlsafe(32), client_id, bank_id, consent_id, scopes)
        self._refresh[grant.token] = grant
        if self._disk is not None:
            self._disk.put(REFRESH, grant.token, grant)
        return grant

    def access(self, token: str, now: datetime) -> AccessGrant | None:
        grant = self._access.get(token)
        if grant is None:
            return None
        if grant.expires_at <= now:
            del self._access[token]
            self._dropped(ACCESS, [token])
            return None
        return grant

    def take_refresh(self, token: str) -> RefreshGrant | None:
        """Use a refresh token once (rotation: the caller issues a new one)."""
        grant = self._refresh.pop(token, None)
        if grant is not None:
            self._dropped(REFRESH, [token])
        return grant

    def revoke_consent(self, consent_id: str) -> None:
        """Invalidate every token bound to a consent (on revocation or deletion)."""
        self._dropped(ACCESS, [k for k, g in self._access.items() if g.consent_id == consent_id])
        self._dropped(REFRESH, [k for k, g in self._refresh.items() if g.consent_id == consent_id])
        self._access = {k: g for k, g in self._access.items() if g.consent_id != consent_id}
        self._refresh = {k: g for k, g in self._refresh.items() if g.consent_id != consent_id}

    def purge_expired(self, now: datetime) -> None:
        self._dropped(ACCESS, [k for k, g in self._access.items() if g.expires_at <= now])
        self._access = {k: g for k, g in self._access.items() if g.expires_at > now}


def bearer_token(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise BankError(
            401,
            "Missing or malformed bearer token",
            code="UK.OBIE.Header.Missing" if not header else "UK.OBIE.Header.Invalid",
            path="Authorization",
            headers={"WWW-Authenticate": 'Bearer realm="bank"'},
        )
    return token.strip()


def require_grant(
    request: web.Request,
    grants: GrantStore,
    bank: BankState,
    *,
    scope: str,
    consent_bound: bool,
    now: datetime,
) -> AccessGrant:
    """The caller's grant, checked for bank, scope and (for data access) a live consent.

    Raises 401 for a missing, unknown or expired token and 403 for a token of the wrong kind or
    scope, or whose consent is not Authorised or has expired.
    """
    grant = grants.access(bearer_token(request), now)
    if grant is None or grant.bank_id != bank.profile.bank_id:
        raise BankError(
            401,
            "Invalid or expired access token",
            code="UK.OBIE.Header.Invalid",
            path="Authorization",
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    if scope not in grant.scopes:
        raise BankError(403, f"Token lacks the {scope!r} scope", code="UK.OBIE.Header.Invalid")
    if not consent_bound:
        if grant.consent_id is not None:
            raise BankError(403, "This endpoint needs a client-credentials token")
        return grant
    if grant.consent_id is None:
        raise BankError(403, "This endpoint needs a token bound to an authorised consent")
    consent = bank.consents.get(grant.consent_id)
    if consent is None or consent.status != ConsentStatus.AUTHORISED:
        raise BankError(
            403, "Consent is not authorised", code="UK.OBIE.Resource.InvalidConsentStatus"
        )
    if consent.expires_at is not None and consent.expires_at <= now:
        raise BankError(403, "Consent has expired", code="UK.OBIE.Resource.InvalidConsentStatus")
    return grant
