"""One bank, as the broker calls it: registration, tokens, consents, OBIE reads, card controls.

Failures become typed errors: :class:`BankUnavailableError` (5xx, timeouts, connection errors, open
circuit → the API answers 502/504 with Retry-After) and :class:`BankRefusedError` (a 4xx the bank
meant, e.g. a revoked consent).
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
from pydantic import BaseModel
from yarl import URL

from consent.banks.breaker import CircuitBreaker


class BankInfo(BaseModel):
    """A bank as its directory entry describes it."""

    bank_id: str
    name: str
    issuer: str
    registration_endpoint: str
    token_endpoint: str
    authorization_endpoint: str
    jwks_uri: str
    aisp_base: str
    card_controls_base: str
    support_base: str = ""  # the support-chat extension; a bank without one has none


class BankCallError(Exception):
    def __init__(self, message: str, *, status: int, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BankUnavailableError(BankCallError):
    """The bank is down, slow or failing: try again later."""


class BankCircuitOpenError(BankUnavailableError):
    """The bank's circuit breaker is open: the call was not even tried."""


class DeadlinePassedError(BankUnavailableError):
    """The request's deadline passed before the bank answered (the bank is not to blame: its
    circuit breaker is not charged)."""

    def __init__(self, message: str = "the bank did not answer in time") -> None:
        super().__init__(message, status=504, retry_after=5)


class BankRefusedError(BankCallError):
    """The bank answered 4xx: the request or the consent is not acceptable to it."""


class UnknownClientError(BankRefusedError):
    """The token endpoint refused the broker's own client (401 ``invalid_client``): the bank
    no longer knows the registration, e.g. after it lost its data."""


# told of every call to the bank: its outcome (ok, refused, error, timeout, unreachable) and how
# long the bank took (consent.metrics counts them)
CallObserver = Callable[[str, float], None]


def outcome_of(status: int) -> str:
    if status < 400:
        return "ok"
    return "refused" if status < 500 else "error"


@dataclass(frozen=True)
class Credentials:
    client_id: str
    client_secret: str


@dataclass(frozen=True)
class TokenSet:
    access_token: str
    refresh_token: str | None
    expires_in: int


async def fetch_directory(session: aiohttp.ClientSession, url: str) -> dict[str, BankInfo]:
    """The banks listed at ``url`` (the mock banks' ``GET /banks``)."""
    async with session.get(url, timeout=aiohttp.ClientTimeout(total=10)) as resp:
        resp.raise_for_status()
        body = await resp.json()
    return {b["bank_id"]: BankInfo.model_validate(b) for b in body["banks"]}


class BankClient:
    """Calls to one bank, through its circuit breaker."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        info: BankInfo,
        *,
        timeout_s: float,
        clock: Callable[[], datetime],
        observe: CallObserver | None = None,
    ) -> None:
        self.session = session
        self.info = info
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.clock = clock
        self.observe = observe
        self.breaker = CircuitBreaker()
        self._cc_token: tuple[str, datetime] | None = None

    async def _call(
        self, method: str, url: str, *, timeout_s: float | None = None, **kwargs: Any
    ) -> tuple[int, Any]:
        now = self.clock()
        if not self.breaker.allow(now):
            raise BankCircuitOpenError(
                f"{self.info.name} is not answering",
                status=503,
                retry_after=self.breaker.retry_after(now),
            )
        started = time.perf_counter()
        status = 0
        # a call given less than the bank's own timeout is bounded by the request's deadline
        deadline_bound = timeout_s is not None and timeout_s < (self.timeout.total or timeout_s)
        try:
            timeout = aiohttp.ClientTimeout(total=timeout_s) if deadline_bound else self.timeout
            async with self.session.request(method, url, timeout=timeout, **kwargs) as resp:
                raw = await resp.read() if resp.status != 204 else b""
                status = resp.status
            self._observed(outcome_of(status), started)
            body: Any = orjson.loads(raw) if raw.strip() else None  # ValueError when not JSON
        except TimeoutError as e:
            self._observed("timeout", started)
            if deadline_bound:  # the request's time ran out, not the bank's: no breaker failure
                raise DeadlinePassedError() from e
            self.breaker.record_failure(self.clock())
            raise BankUnavailableError(
                f"{self.info.name} timed out", status=504, retry_after=5
            ) from e
        except (aiohttp.ClientError, ValueError) as e:
            if not status:  # (a body that is not JSON was counted with its status)
                self._observed("unreachable", started)
            self.breaker.record_failure(self.clock())
            raise BankUnavailableError(
                f"{self.info.name} is unreachable", status=502, retry_after=5
            ) from e
        except asyncio.CancelledError:
            if not status:  # the request's deadline (or the caller) gave up waiting
                self._observed("timeout", started)
            raise
        if status >= 500:
            self.breaker.record_failure(self.clock())
            raise BankUnavailableError(
                f"{self.info.name} failed ({status})", status=502, retry_after=5
            )
        self.breaker.record_success()
        if status >= 400:
            raise BankRefusedError(_message(body), status=status)
        return status, body

    def _observed(self, outcome: str, started: float) -> None:
        if self.observe is not None:
            self.observe(outcome, time.perf_counter() - started)

    async def register(self, name: str, redirect_uri: str, events_url: str | None) -> Credentials:
        _, body = await self._call(
            "POST",
            self.info.registration_endpoint,
            json={
                "client_name": name,
                "redirect_uris": [redirect_uri],
                "event_notification_url": events_url,
            },
        )
        return Credentials(body["client_id"], body["client_secret"])

    async def _token(self, cred: Credentials, form: dict[str, str]) -> dict[str, Any]:
        raw = f"{quote(cred.client_id, safe='')}:{quote(cred.client_secret, safe='')}".encode()
        headers = {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        try:
            _, body = await self._call("POST", self.info.token_endpoint, data=form, headers=headers)
        except BankRefusedError as e:
            if e.status == 401:  # RFC 6749 §5.2: client authentication failed
                raise UnknownClientError(str(e), status=401) from e
            raise
        result: dict[str, Any] = body
        return result

    def forget_client_token(self) -> None:
        """Drop the cached client-credentials token (the bank refused it, or we re-registered)."""
        self._cc_token = None

    async def client_token(self, cred: Credentials) -> str:
        """A client-credentials token for the consent endpoints, reused until near expiry."""
        now = self.clock()
        if self._cc_token and self._cc_token[1] > now:
            return self._cc_token[0]
        body = await self._token(cred, {"grant_type": "client_credentials", "scope": "accounts"})
        self._cc_token = (
            body["access_token"],
            now + timedelta(seconds=max(0, int(body["expires_in"]) - 30)),
        )
        return str(body["access_token"])

    async def create_consent(
        self, cred: Credentials, permissions: list[str], expires_at: datetime
    ) -> str:
        token = await self.client_token(cred)
        _, body = await self._call(
            "POST",
            f"{self.info.aisp_base}/account-access-consents",
            json={
                "Data": {"Permissions": permissions, "ExpirationDateTime": expires_at.isoformat()},
                "Risk": {},
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        return str(body["Data"]["ConsentId"])

    async def delete_consent(self, cred: Credentials, bank_consent_id: str) -> None:
        token = await self.client_token(cred)
        url = f"{self.info.aisp_base}/account-access-consents/{bank_consent_id}"
        await self._call("DELETE", url, headers={"Authorization": f"Bearer {token}"})

    def authorization_url(
        self,
        cred: Credentials,
        *,
        redirect_uri: str,
        bank_consent_id: str,
        state: str,
        challenge: str,
        scopes: list[str],
        ui_locales: str | None = None,
    ) -> str:
        query = {
            "response_type": "code",
            "client_id": cred.client_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "consent_id": bank_consent_id,
            "scope": " ".join(scopes),
            **({"ui_locales": ui_locales} if ui_locales else {}),  # OIDC Core §3.1.2.1
        }
        return str(URL(self.info.authorization_endpoint).with_query(query))

    async def exchange_code(
        self, cred: Credentials, code: str, redirect_uri: str, verifier: str
    ) -> TokenSet:
        body = await self._token(
            cred,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )
        return TokenSet(body["access_token"], body.get("refresh_token"), int(body["expires_in"]))

    async def refresh(self, cred: Credentials, refresh_token: str) -> TokenSet:
        body = await self._token(
            cred, {"grant_type": "refresh_token", "refresh_token": refresh_token}
        )
        return TokenSet(body["access_token"], body.get("refresh_token"), int(body["expires_in"]))

    async def read(
        self,
        access_token: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """GET an AIS resource (``/accounts``, ``/accounts/{id}/balances`` …); ``timeout_s``
        shortens the bank timeout to what is left of a request's deadline."""
        _, body = await self._call(
            "GET",
            f"{self.info.aisp_base}{path}",
            timeout_s=timeout_s,
            params=params or {},
            headers={"Authorization": f"Bearer {access_token}"},
        )
        result: dict[str, Any] = body
        return result

    async def resolve_alert(
        self,
        access_token: str,
        alert_id: str,
        resolution: str,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Card controls: answer a fraud alert, ``Genuine`` or ``Fraud`` (freezes the card).
        Idempotent at the bank: the same resolution again answers 200 with the same state (a
        different one is refused with 409), so a call that timed out may be repeated."""
        url = f"{self.info.card_controls_base}/fraud-alerts/{alert_id}/resolution"
        headers = {"Authorization": f"Bearer {access_token}"}
        _, body = await self._call(
            "POST", url, timeout_s=timeout_s, json={"Resolution": resolution}, headers=headers
        )
        result: dict[str, Any] = body
        return result

    async def read_alert(
        self, access_token: str, alert_id: str, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Card controls: a fraud alert, its answer so far and its card's status."""
        return await self._card_controls(
            access_token, "GET", f"/fraud-alerts/{alert_id}", timeout_s=timeout_s
        )

    async def list_cards(
        self, access_token: str, *, timeout_s: float | None = None
    ) -> list[dict[str, Any]]:
        """Card controls: the cards on the consented accounts (masked PANs)."""
        body = await self._card_controls(access_token, "GET", "/cards", timeout_s=timeout_s)
        cards = body.get("Card")
        return [c for c in cards if isinstance(c, dict)] if isinstance(cards, list) else []

    async def set_card(
        self, access_token: str, card_id: str, action: str, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        """Card controls: ``freeze`` or ``unfreeze`` one card. Idempotent at the bank (it sets
        a state, it does not toggle one), so a call that timed out may be repeated."""
        if action not in ("freeze", "unfreeze"):
            raise ValueError(action)
        return await self._card_controls(
            access_token, "POST", f"/cards/{card_id}/{action}", timeout_s=timeout_s
        )

    async def _card_controls(
        self, access_token: str, method: str, path: str, *, timeout_s: float | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {access_token}"}
        _, body = await self._call(
            method, f"{self.info.card_controls_base}{path}", timeout_s=timeout_s, headers=headers
        )
        data = body.get("Data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    async def support_message(
        self, access_token: str, text: str, message_id: str, language: str
    ) -> dict[str, Any]:
        """The customer's message to the bank's staff (idempotent by ``message_id``)."""
        body = {"Text": text, "MessageId": message_id, "Language": language}
        return await self._support(access_token, "/messages", body)

    async def support_rate(
        self, access_token: str, conversation_id: str, rating: int
    ) -> dict[str, Any]:
        path = f"/conversations/{conversation_id}/rating"
        return await self._support(access_token, path, {"Rating": rating})

    async def support_close(self, access_token: str, conversation_id: str) -> dict[str, Any]:
        return await self._support(access_token, f"/conversations/{conversation_id}/close", {})

    async def _support(self, access_token: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if not self.info.support_base:
            raise BankRefusedError(f"{self.info.name} has no support chat", status=404)
        headers = {"Authorization": f"Bearer {access_token}"}
        _, answer = await self._call(
            "POST", f"{self.info.support_base}{path}", headers=headers, json=body
        )
        data = answer.get("Data") if isinstance(answer, dict) else None
        return data if isinstance(data, dict) else {}


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("Message", "error_description", "error"):
            if isinstance(body.get(key), str):
                return str(body[key])[:200]
    return "refused"
