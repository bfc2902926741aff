"""The real :class:`~bank_mock.notify.EventSink`: signs events as SETs and delivers them.

Each event becomes one Security Event Token per affected consent, POSTed as
``application/jwt`` to the client's ``event_notification_url``. Delivery runs in background
tasks (never in the request that caused the event), retried with exponential backoff and full
jitter on 5xx, timeouts and connection errors, up to ``BANK_EVENT_RETRY_MAX`` retries.

At most ``BANK_EVENT_IN_FLIGHT`` (64) deliveries to one receiver (event URL) are on the wire at
once, and each attempt's timeout counts only its own HTTP exchange: a delivery that waits for its
turn (a burst, a slow receiver) waits in order and is not timed out and retried for the wait
itself.
Before, the 5 s timeout also counted the wait for one of the session's 100 pooled connections,
so under a backlog nearly every delivery timed out in the queue and came back with backoff
(54,712 retries in a 30 s, 200 alerts/s bench), which multiplied the backlog it came from. A
few at a time per receiver, not 100, is also what kept a receiver's own work short while it wrote
each event in its own transaction: 100 at once filled the brokers' database pools and starved
their outbox relays. Brokers now group-commit alerts (one transaction for every event waiting),
so the turns are the batch: with 16 a 2+2 PostgreSQL run at 200/s queued 3.6 s at the bank (16
events per ~70 ms commit is ~230/s at best); with 64 the wait was 51 ms p50.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from bank_mock.fraud.signing import SIGNERS
from bank_mock.identifiers import mask_pan
from bank_mock.keys import CLOCK, EVENTS, SETTINGS
from bank_mock.models import Consent, ConsentStatus, FraudAlert, Transaction
from bank_mock.obie.serialize import amount, iso
from bank_mock.state import BankState

log = logging.getLogger(__name__)

ATTEMPT_TIMEOUT_S = 5.0  # one attempt's HTTP exchange, not its wait for a turn

RESOURCE_UPDATE = "urn:uk:org:openbanking:events:resource-update"
CONSENT_REVOKED = "urn:uk:org:openbanking:events:consent-authorization-revoked"
FRAUD_ALERT = "urn:chatbank:events:fraud-alert"
SUPPORT = "urn:chatbank:events:support"
# the bank's own event where OBIE has none: a pending card payment booked or was reversed
TRANSACTION_CHANGED = "urn:chatbank:events:transaction-changed"
# the permissions that let a client read an account's transactions (with Credits / Debits)
READS_TRANSACTIONS = frozenset({"ReadTransactionsBasic", "ReadTransactionsDetail"})


@dataclass(slots=True)
class DeliveryStats:
    delivered: int = 0
    failed: int = 0
    attempts: int = 0


class Publisher:
    """Builds, signs and delivers events; install with :func:`setup`."""

    def __init__(self, app: web.Application, rng: random.Random | None = None) -> None:
        self._app = app
        self._rng = rng or random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        # a support conversation's events go out one after another, in the order they happened
        # ("joined" before the first answer, the last answer before "left")
        self._in_order: dict[str, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None
        # event URL -> its turns; FIFO: deliveries go out in the order they were queued
        self._turns: dict[str, asyncio.Semaphore] = {}
        self.stats = DeliveryStats()

    # --- EventSink -----------------------------------------------------------------------
    def consent_updated(self, bank: BankState, consent: Consent) -> None:
        self._send(bank, consent, {RESOURCE_UPDATE: {"subject": self._subject(bank, consent)}})

    def consent_revoked(self, bank: BankState, consent: Consent) -> None:
        body = {"subject": self._subject(bank, consent), "reason": "customer_revoked"}
        self._send(bank, consent, {CONSENT_REVOKED: body})

    def fraud_alert(self, bank: BankState, alert: FraudAlert, tx: Transaction) -> None:
        now = self._app[CLOCK]()
        card = bank.cards.get(alert.card_id) if alert.card_id else None
        for consent in bank.consents_on(alert.account_id):
            live = consent.status == ConsentStatus.AUTHORISED and (
                consent.expires_at is None or consent.expires_at > now
            )
            if not live or alert.account_id not in consent.account_ids:
                continue
            payload = {
                "alert_id": alert.alert_id,
                "consent_id": consent.consent_id,
                "account_id": alert.account_id,
                "card_id": alert.card_id,
                "masked_pan": mask_pan(card.pan) if card else None,
                "transaction": {
                    "transaction_id": tx.transaction_id,
                    "booked_at": iso(tx.booked_at),
                    **amount(tx.amount_minor, tx.currency),
                    "merchant_name": tx.merchant_name,
                    "raw_descriptor": tx.raw_descriptor,
                    "mcc": tx.mcc,
                    "country": tx.country,
                    "latitude": tx.latitude,
                    "longitude": tx.longitude,
                },
                "reason": alert.reason,
                "rule_ids": alert.rule_ids,
                "risk_score": alert.risk_score,
                "device_id": tx.device_id,
            }
            self._send(bank, consent, {FRAUD_ALERT: payload})

    def support_event(self, bank: BankState, consent: Consent, payload: dict[str, Any]) -> None:
        if consent.status == ConsentStatus.AUTHORISED and "support" in consent.scopes:
            self._send(bank, consent, {SUPPORT: payload}, in_order=consent.consent_id)

    def transactions_changed(self, bank: BankState, account_id: str, *, status_only: bool) -> None:
        """Tell every client with a live consent on the account that may read its transactions
        that they changed. The event carries no data: the client fetches what changed with its
        token. A consent without a transactions permission is not told: it could not follow
        the link, and that a payment happened on the account is already transaction data."""
        now = self._app[CLOCK]()
        kind = TRANSACTION_CHANGED if status_only else RESOURCE_UPDATE
        for consent in bank.consents_on(account_id):
            live = consent.status == ConsentStatus.AUTHORISED and (
                consent.expires_at is None or consent.expires_at > now
            )
            if not live or account_id not in consent.account_ids:
                continue
            if not READS_TRANSACTIONS.intersection(consent.permissions):
                continue
            subject = self._account_subject(bank, account_id)
            self._send(bank, consent, {kind: {"subject": subject}})

    # --- delivery ------------------------------------------------------------------------
    def _subject(self, bank: BankState, consent: Consent) -> dict[str, Any]:
        return {
            "subject_type": "http://openbanking.org.uk/rid_http://openbanking.org.uk/rty",
            "http://openbanking.org.uk/rid": consent.consent_id,
            "http://openbanking.org.uk/rty": "account-access-consent",
            "http://openbanking.org.uk/rlk": [
                {"version": "v3.1", "link": self._consent_url(bank, consent)}
            ],
        }

    def _account_subject(self, bank: BankState, account_id: str) -> dict[str, Any]:
        base = self._app[SETTINGS].base_url()
        aisp = f"{base}/banks/{bank.profile.bank_id}/open-banking/v3.1/aisp"
        return {
            "subject_type": "http://openbanking.org.uk/rid_http://openbanking.org.uk/rty",
            "http://openbanking.org.uk/rid": account_id,
            "http://openbanking.org.uk/rty": "account",
            "http://openbanking.org.uk/rlk": [
                {"version": "v3.1", "link": f"{aisp}/accounts/{account_id}/transactions"}
            ],
        }

    def _consent_url(self, bank: BankState, consent: Consent) -> str:
        base = self._app[SETTINGS].base_url()
        aisp = f"{base}/banks/{bank.profile.bank_id}/open-banking/v3.1/aisp"
        return f"{aisp}/account-access-consents/{consent.consent_id}"

    def _send(
        self,
        bank: BankState,
        consent: Consent,
        events: dict[str, Any],
        in_order: str | None = None,
    ) -> None:
        client = bank.clients.get(consent.client_id)
        if client is None or not client.event_notification_url:
            return
        token = self._app[SIGNERS][bank.profile.bank_id].make_set(
            audience=client.client_id,
            subject=self._consent_url(bank, consent),
            events=events,
            now=self._app[CLOCK](),
        )
        delivery = self._deliver(client.event_notification_url, token)
        if in_order is not None:
            delivery = self._after(in_order, delivery)
        task = asyncio.get_running_loop().create_task(delivery)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _after(self, key: str, delivery: Coroutine[Any, Any, None]) -> None:
        """Deliver once every earlier delivery under ``key`` has finished (FIFO lock)."""
        started = False
        try:
            async with self._in_order.setdefault(key, asyncio.Lock()):  # a small lock a consent
                started = True
                await delivery
        finally:
            if not started:  # cancelled while waiting (shutdown): never ran, close it
                delivery.close()

    async def _deliver(self, url: str, token: str) -> None:
        settings = self._app[SETTINGS]
        session = self._session
        if session is None:
            return
        for attempt in range(settings.event_retry_max + 1):
            try:
                turns = self._turns.setdefault(url, asyncio.Semaphore(settings.event_in_flight))
                async with turns:  # a free turn: the attempt's timeout starts now
                    self.stats.attempts += 1
                    async with session.post(
                        url,
                        data=token,
                        headers={"Content-Type": "application/jwt", "Accept": "application/json"},
                    ) as resp:
                        if resp.status < 300:
                            self.stats.delivered += 1
                            return
                        if 400 <= resp.status < 500 and resp.status not in (408, 429):
                            log.warning(
                                "event refused by %s with %s; not retrying", url, resp.status
                            )
                            break
            except (aiohttp.ClientError, TimeoutError) as e:
                log.info(
                    "event delivery to %s failed (%s), attempt %d",
                    url,
                    type(e).__name__,
                    attempt + 1,
                )
            if attempt < settings.event_retry_max:
                cap = settings.event_retry_base_s * (2**attempt)
                await asyncio.sleep(self._rng.uniform(0, cap))
        self.stats.failed += 1
        log.error("gave up delivering an event to %s", url)

    async def drain(self) -> None:
        """Wait until every queued delivery has finished (wrap in ``asyncio.timeout``)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def lifecycle(self, app: web.Application) -> AsyncIterator[None]:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=ATTEMPT_TIMEOUT_S),
            # no pool limit: the turns bound each receiver, and a wait for a pooled connection
            # would count in the attempt's timeout
            connector=aiohttp.TCPConnector(limit=0),
        )
        yield
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._session.close()
        self._session = None


PUBLISHER = web.AppKey("publisher", Publisher)


def setup(app: web.Application) -> None:
    """Install the publisher as the bank's event sink."""
    publisher = Publisher(app)
    app[PUBLISHER] = publisher
    app[EVENTS] = publisher
    app.cleanup_ctx.append(publisher.lifecycle)
