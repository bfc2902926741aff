"""The bot's only way to the bank side: the consent broker's platform API over HTTP.

Wire formats are pydantic models of the broker's published API (``consent/openapi.json``),
defined here rather than imported, so the platform layer never imports the broker's code.
Every failure becomes a :class:`BrokerError` with a code the handlers turn into a localized
message; nothing here logs a payload.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, ValidationError

PURPOSE = "chat-service"
DEADLINE_HEADER = "X-Request-Deadline-Ms"
DEADLINE_MARGIN_S = 0.3  # the broker is asked to answer this much before our own timeout
MIN_CALL_S = 0.25  # with less than this left of the update's budget no call is started
# When the answer to the update being handled is due (time.monotonic()), set by
# :meth:`BrokerClient.begin` as each update arrives: every broker call of the update shares it,
# so a handler making two calls still answers in time. None: each call has the full timeout.
_DUE: ContextVar[float | None] = ContextVar("chatbank_broker_due", default=None)
Observer = Callable[[str, bytes], Awaitable[None] | None]
M = TypeVar("M", bound=BaseModel)


class BrokerError(Exception):
    """The broker refused or could not answer. ``code`` is the broker's error code, or
    ``broker_unavailable`` / ``broker_timeout`` when it could not be reached in time."""

    def __init__(
        self, status: int, code: str, detail: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Bank(_Wire):
    bank_id: str
    name: str
    scopes: list[str]
    max_duration_days: int


class Consent(_Wire):
    consent_id: str
    bank_id: str
    scopes: list[str]
    status: str
    expires_at: str
    authorized_at: str | None = None


class StartedLink(_Wire):
    consent_id: str
    authorization_url: str
    expires_at: str
    scopes: list[str]


class Balance(_Wire):
    bank_name: str | None = None
    account_handle: str | None = None
    nickname: str | None = None
    account_type: str | None = None
    last4: str | None = None
    currency: str | None = None
    available: Decimal | None = None
    current: Decimal | None = None
    as_of: str | None = None
    status: Literal["fresh", "last_known"] = "fresh"
    read_at: datetime | None = None  # last_known: when the broker read it
    reason: str | None = None  # last_known: why it is not fresh


class Unavailable(_Wire):
    """A bank that left out some or all accounts, and why (bank_timeout, bank_unavailable,
    reauthorization_needed ...)."""

    bank_id: str
    bank_name: str
    reason: str


class BalanceAnswer(_Wire):
    balances: list[Balance]
    unavailable: list[Unavailable] = []


class QuietHours(_Wire):
    start: str
    end: str
    timezone: str


class ReceiptAccount(_Wire):
    account_handle: str
    bank_id: str
    enabled: bool


class ReceiptSettings(_Wire):
    accounts: list[ReceiptAccount] = []
    quiet_hours: QuietHours | None = None


class Account(_Wire):
    """An account with what its consent and bank policy allow ("balances", "transactions",
    "spending", "card_controls"); ``last_known`` when its bank did not answer and the broker
    listed it from what it last read."""

    account_handle: str
    bank_id: str
    bank_name: str | None = None
    nickname: str | None = None
    account_type: str | None = None
    last4: str | None = None
    currency: str | None = None
    actions: list[str] = []
    status: Literal["fresh", "last_known"] = "fresh"


class AccountAnswer(_Wire):
    accounts: list[Account]
    unavailable: list[Unavailable] = []


class SpendingTotal(_Wire):
    currency: str
    total: Decimal
    count: int


class CategoryTotal(SpendingTotal):
    category: str


class Spending(_Wire):
    """Money out over a period, totals only."""

    totals: list[SpendingTotal]
    by_category: list[CategoryTotal] = []
    complete: bool = True
    accounts: int = 0
    unavailable: list[Unavailable] = []  # banks left out of the totals, and why


class InsightCategory(_Wire):
    category: str
    total: Decimal
    count: int
    previous_total: Decimal = Decimal(0)
    previous_count: int = 0
    change: Decimal = Decimal(0)
    change_percent: Decimal | None = None


class InsightCurrency(_Wire):
    """One currency's spending (never added to another currency's)."""

    currency: str
    total: Decimal
    count: int
    previous_total: Decimal = Decimal(0)
    previous_count: int = 0
    change: Decimal = Decimal(0)
    change_percent: Decimal | None = None
    categories: list[InsightCategory] = []


class TopMerchant(_Wire):
    merchant: str
    currency: str
    total: Decimal
    count: int


class TopMerchants(_Wire):
    category: str
    merchants: list[TopMerchant] = []


class Insight(_Wire):
    """Spending by category for a period and the one before: an aggregate, no rows."""

    date_from: str = Field(alias="from")
    date_to: str = Field(alias="to")
    previous_from: str
    previous_to: str
    currencies: list[InsightCurrency] = []
    top_merchants: TopMerchants | None = None
    complete: bool = True
    accounts: int = 0
    unavailable: list[Unavailable] = []


class Transaction(_Wire):
    id: str | None = None
    booking_date: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    merchant: str | None = None
    category: str | None = None
    card_last4: str | None = None
    direction: Literal["in", "out"] = "out"
    status: Literal["booked", "pending"] = "booked"


class TransactionPage(_Wire):
    transactions: list[Transaction]
    next_cursor: str | None = None
    totals: dict[str, dict[str, Decimal]] = {}


class AlertResult(_Wire):
    """The alert as it stands after an answer: its minimized view, its answer so far (None when
    only the card was acted on before any answer) and the card's status at the bank."""

    alert_id: str
    answer: str | None = None
    card_status: str | None = None
    alert: dict[str, Any] = {}


class Card(_Wire):
    card_handle: str
    bank_id: str
    last4: str | None = None
    status: str


class CardAnswer(_Wire):
    cards: list[Card]
    unavailable: list[Unavailable] = []


class AccessEntry(_Wire):
    seq: int
    at: str
    action: str
    scope: str | None = None
    purpose: str | None = None
    outcome: str
    reason: str | None = None


class Integrity(_Wire):
    ok: bool
    checked: int
    first_bad_seq: int | None = None


class AccessLog(_Wire):
    entries: list[AccessEntry]
    integrity: Integrity


class SupportSent(_Wire):
    """What became of a message to the bank's staff: its conversation, whether it opened one,
    and, while nobody is on, when someone will answer."""

    conversation: str
    message_id: str
    status: str
    opened: bool = False
    expected_reply_at: datetime | None = None
    outside_hours: bool = False


class SupportState(_Wire):
    conversation: str
    status: str
    rating: int | None = None


class BrokerClient:
    """Typed calls to the broker, authenticated as this platform client, purpose chat-service.

    ``observe`` (tests) sees every response body the bot receives, for the privacy scan."""

    def __init__(
        self,
        base_url: str,
        credential: str,
        *,
        timeout_s: float = 4.0,
        observe: Observer | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {credential}", "X-Purpose": PURPOSE}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None
        self._observe = observe

    def begin(self) -> None:
        """An update has arrived: every broker call made for it from here on shares one budget
        of ``timeout_s`` (the chat's answer is due then, however many calls it needs)."""
        _DUE.set(time.monotonic() + self._timeout_s)

    def _left(self, share: float) -> float:
        """Seconds this call may take: ``share`` of what is left of the update's budget (all
        of the timeout outside an update); a :class:`BrokerError` when too little is left."""
        due = _DUE.get()
        left = self._timeout_s if due is None else min(self._timeout_s, due - time.monotonic())
        if left < MIN_CALL_S:
            raise BrokerError(504, "broker_timeout")
        return max(MIN_CALL_S, left * share)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        share: float = 1.0,
    ) -> Any:
        """One call, given ``share`` of the update's remaining budget; the broker is asked to
        answer inside it (``X-Request-Deadline-Ms``) a little before our own timeout fires."""
        left = self._left(share)
        deadline_ms = max(1, int((left - min(DEADLINE_MARGIN_S, left / 4)) * 1000))
        headers = {**self._headers, DEADLINE_HEADER: str(deadline_ms)}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.request(
                method,
                f"{self._base}{path}",
                json=json,
                params=params,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=left),
            ) as resp:
                body = await resp.read()
                status = resp.status
                retry = resp.headers.get("Retry-After")
        except TimeoutError as e:
            raise BrokerError(504, "broker_timeout") from e
        except aiohttp.ClientError as e:
            raise BrokerError(503, "broker_unavailable") from e
        if self._observe is not None:
            result = self._observe(path, body)
            if result is not None:
                await result
        data = _json(body)
        if status >= 400:
            error = data.get("error", "broker_error") if isinstance(data, dict) else "broker_error"
            detail = data.get("detail", "") if isinstance(data, dict) else ""
            retry_after = float(retry) if retry and retry.replace(".", "", 1).isdigit() else None
            raise BrokerError(status, str(error), str(detail), retry_after)
        return data

    async def _model(self, model: type[M], method: str, path: str, **kw: Any) -> M:
        data = await self._call(method, path, **kw)
        try:
            return model.model_validate(data)
        except ValidationError as e:
            raise BrokerError(502, "broker_bad_answer") from e

    async def new_subject(self) -> str:
        data = await self._call("POST", "/v1/subjects")
        return str(data["subject_id"])

    async def banks(self) -> list[Bank]:
        data = await self._call("GET", "/v1/banks")
        return [Bank.model_validate(b) for b in data["banks"]]

    async def start_link(
        self,
        subject: str,
        bank_id: str,
        scopes: list[str],
        days: int,
        language: str = "en",
        receipts: bool = False,
    ) -> StartedLink:
        """Create the consent; the bank's approval page is shown in ``language``;
        ``receipts``: new card payments on the shared accounts come as receipts."""
        body: dict[str, Any] = {
            "bank_id": bank_id,
            "scopes": scopes,
            "duration_days": days,
            "language": language,
        }
        if receipts:
            body["receipts"] = True
        return await self._model(StartedLink, "POST", f"/v1/subjects/{subject}/consents", json=body)

    async def receipt_settings(self, subject: str) -> ReceiptSettings:
        return await self._model(ReceiptSettings, "GET", f"/v1/subjects/{subject}/receipts")

    async def set_receipts(self, subject: str, handle: str, enabled: bool) -> bool:
        path = f"/v1/subjects/{subject}/accounts/{handle}/receipts"
        data = await self._call("PUT", path, json={"enabled": enabled})
        return bool(data.get("enabled")) if isinstance(data, dict) else enabled

    async def set_quiet_hours(
        self, subject: str, hours: tuple[str, str, str] | None
    ) -> QuietHours | None:
        """Quiet hours (start, end, IANA zone), or none."""
        path = f"/v1/subjects/{subject}/receipts/quiet-hours"
        if hours is None:
            await self._call("DELETE", path)
            return None
        start, end, zone = hours
        data = await self._call("PUT", path, json={"start": start, "end": end, "timezone": zone})
        quiet = data.get("quiet_hours") if isinstance(data, dict) else None
        return QuietHours.model_validate(quiet) if quiet else None

    async def consents(self, subject: str) -> list[Consent]:
        data = await self._call("GET", f"/v1/subjects/{subject}/consents")
        return [Consent.model_validate(c) for c in data["consents"]]

    async def revoke(self, subject: str, consent_id: str) -> Consent:
        return await self._model(Consent, "DELETE", f"/v1/subjects/{subject}/consents/{consent_id}")

    async def balance_answer(self, subject: str) -> BalanceAnswer:
        """Every account's balance (fresh or last known) and the banks that left some out."""
        return await self._model(BalanceAnswer, "GET", f"/v1/subjects/{subject}/balances")

    async def balances(self, subject: str) -> list[Balance]:
        return (await self.balance_answer(subject)).balances

    async def account_answer(self, subject: str, *, share: float = 1.0) -> AccountAnswer:
        """Every account across banks (a bank that did not answer is listed from what the
        broker last read, or named in ``unavailable``). ``share``: of the update's budget, when
        another call must follow."""
        path = f"/v1/subjects/{subject}/accounts"
        return await self._model(AccountAnswer, "GET", path, share=share)

    async def accounts(self, subject: str) -> list[Account]:
        return (await self.account_answer(subject)).accounts

    async def spending(
        self,
        subject: str,
        *,
        date_from: str,
        date_to: str,
        merchant: str | None = None,
        category: str | None = None,
        bank: str | None = None,
    ) -> Spending:
        params = {"from": date_from, "to": date_to}
        for name, value in (("merchant", merchant), ("category", category), ("bank", bank)):
            if value:
                params[name] = value
        path = f"/v1/subjects/{subject}/spending"
        return await self._model(Spending, "GET", path, params=params)

    async def insights(
        self,
        subject: str,
        *,
        date_from: str,
        date_to: str,
        top_merchants: str | None = None,
        bank: str | None = None,
    ) -> Insight:
        """Spending by category over a period, with the change from the period before;
        ``top_merchants`` (a category) adds that category's biggest merchants."""
        params = {"from": date_from, "to": date_to}
        for name, value in (("top_merchants", top_merchants), ("bank", bank)):
            if value:
                params[name] = value
        path = f"/v1/subjects/{subject}/insights"
        return await self._model(Insight, "GET", path, params=params)

    async def transactions(
        self,
        subject: str,
        handle: str,
        *,
        date_from: str | None = None,
        date_to: str | None = None,
        merchant: str | None = None,
        cursor: str | None = None,
        limit: int = 5,
        category: str | None = None,
        amount_min: str | None = None,
        amount_max: str | None = None,
    ) -> TransactionPage:
        params = {"limit": str(limit)}
        for name, value in (
            ("from", date_from),
            ("to", date_to),
            ("merchant", merchant),
            ("cursor", cursor),
            ("category", category),
            ("amount_min", amount_min),
            ("amount_max", amount_max),
        ):
            if value:
                params[name] = value
        path = f"/v1/subjects/{subject}/accounts/{handle}/transactions"
        return await self._model(TransactionPage, "GET", path, params=params)

    async def answer_alert(self, subject: str, alert_id: str, answer: str) -> AlertResult:
        path = f"/v1/subjects/{subject}/alerts/{alert_id}/answer"
        return await self._model(AlertResult, "POST", path, json={"answer": answer})

    async def card_answer(self, subject: str) -> CardAnswer:
        """Every card on card-controls links, and the banks that gave none."""
        return await self._model(CardAnswer, "GET", f"/v1/subjects/{subject}/cards")

    async def cards(self, subject: str) -> list[Card]:
        return (await self.card_answer(subject)).cards

    async def set_card(self, subject: str, card_handle: str, action: str) -> Card:
        """``action``: freeze or unfreeze."""
        path = f"/v1/subjects/{subject}/cards/{card_handle}/{action}"
        return await self._model(Card, "POST", path)

    async def support_send(
        self, subject: str, consent_id: str, text: str, language: str
    ) -> SupportSent:
        """The user's message to a person at the consent's bank."""
        path = f"/v1/subjects/{subject}/consents/{consent_id}/support/messages"
        body = {"text": text, "language": language}
        return await self._model(SupportSent, "POST", path, json=body)

    async def support_rate(
        self, subject: str, consent_id: str, conversation: str, rating: int
    ) -> SupportState:
        path = f"/v1/subjects/{subject}/consents/{consent_id}/support/rating"
        body = {"conversation": conversation, "rating": rating}
        return await self._model(SupportState, "POST", path, json=body)

    async def support_close(self, subject: str, consent_id: str, conversation: str) -> SupportState:
        path = f"/v1/subjects/{subject}/consents/{consent_id}/support/close"
        return await self._model(SupportState, "POST", path, json={"conversation": conversation})

    async def access_log(self, subject: str) -> AccessLog:
        return await self._model(AccessLog, "GET", f"/v1/subjects/{subject}/access-log")

    async def export(self, subject: str) -> dict[str, Any]:
        data = await self._call("GET", f"/v1/subjects/{subject}/export")
        return dict(data)

    async def delete_subject(self, subject: str) -> None:
        await self._call("DELETE", f"/v1/subjects/{subject}")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else {}
    except ValueError:
        return {}
