"""Short-lived authorization state: pending approval requests, codes and dashboard sessions."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from aiohttp import web

from bank_mock.disk import CODE, Disk


@dataclass(slots=True)
class AuthRequest:
    """A customer's pass through the approval pages, keyed by an unguessable id."""

    request_id: str
    bank_id: str
    client_id: str
    redirect_uri: str
    state: str
    code_challenge: str
    consent_id: str
    scopes: frozenset[str]
    expires_at: datetime
    customer_id: str | None = None
    failed_logins: int = 0
    language: str = "en"  # of the pages: the client's ui_locales, else the browser's


@dataclass(frozen=True, slots=True)
class AuthCode:
    code: str
    bank_id: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    consent_id: str
    scopes: frozenset[str]
    expires_at: datetime


@dataclass(slots=True)
class Session:
    session_id: str
    bank_id: str
    customer_id: str
    expires_at: datetime
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(16))


class AuthStore:
    """In memory, bounded by expiry; codes are written through to ``disk`` when there is one (a
    code issued just before a restart still works after it). Approval-page requests and
    dashboard sessions are not kept: a restart sends the customer back to sign in again."""

    def __init__(self, disk: Disk | None = None) -> None:
        self.requests: dict[str, AuthRequest] = {}
        self.codes: dict[str, AuthCode] = {}
        self.sessions: dict[str, Session] = {}
        self._disk = disk
        if disk is not None:
            self.codes = {c.code: c for _, c in disk.load(CODE, AuthCode)}

    def new_request(
        self,
        *,
        bank_id: str,
        client_id: str,
        redirect_uri: str,
        state: str,
        code_challenge: str,
        consent_id: str,
        scopes: frozenset[str],
        now: datetime,
        ttl_s: int = 900,
    ) -> AuthRequest:
        self._purge(now)
        req = AuthRequest(
            request_id=secrets.token_urlsafe(24),
            bank_id=bank_id,
            client_id=client_id,
            redirect_uri=redirect_uri,
            state=state,
            code_challenge=code_challenge,
            consent_id=consent_id,
            scopes=scopes,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        self.requests[req.request_id] = req
        return req

    def request(self, request_id: str, now: datetime) -> AuthRequest | None:
        req = self.requests.get(request_id)
        if req is None or req.expires_at <= now:
            self.requests.pop(request_id, None)
            return None
        return req

    def issue_code(self, req: AuthRequest, now: datetime, ttl_s: int) -> AuthCode:
        code = AuthCode(
            code=secrets.token_urlsafe(32),
            bank_id=req.bank_id,
            client_id=req.client_id,
            redirect_uri=req.redirect_uri,
            code_challenge=req.code_challenge,
            consent_id=req.consent_id,
            scopes=req.scopes,
            expires_at=now + timedelta(seconds=ttl_s),
        )
        self.codes[code.code] = code
        if self._disk is not None:
            self._disk.put(CODE, code.code, code)
        self.requests.pop(req.request_id, None)
        return code

    def take_code(self, code: str) -> AuthCode | None:
        """Use a code once: a second use finds nothing."""
        taken = self.codes.pop(code, None)
        if taken is not None and self._disk is not None:
            self._disk.drop(CODE, [code])
        return taken

    def new_session(self, bank_id: str, customer_id: str, now: datetime) -> Session:
        s = Session(secrets.token_urlsafe(24), bank_id, customer_id, now + timedelta(hours=1))
        self.sessions[s.session_id] = s
        return s

    def session(self, session_id: str, bank_id: str, now: datetime) -> Session | None:
        s = self.sessions.get(session_id)
        if s is None or s.expires_at <= now or s.bank_id != bank_id:
            return None
        return s

    def _purge(self, now: datetime) -> None:
        self.requests = {k: r for k, r in self.requests.items() if r.expires_at > now}
        if self._disk is not None:
            self._disk.drop(CODE, [k for k, c in self.codes.items() if c.expires_at <= now])
        self.codes = {k: c for k, c in self.codes.items() if c.expires_at > now}
        self.sessions = {k: s for k, s in self.sessions.items() if s.expires_at > now}


AUTH = web.AppKey("auth", AuthStore)
