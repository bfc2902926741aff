"""Alerts and consent notices pushed by the broker to the bot's webhook.

Each delivery is verified before anything else: an HTTP Message Signature (RFC 9421, HMAC with
the webhook secret the broker issued to this platform client, tag ``chatbank-webhook``) over
the method, URL, content type and Content-Digest; a ``created`` time within the allowed age;
a nonce never seen before. Deliveries are claimed (pending) before sending and marked sent only
once the Bot API accepted the message (:mod:`bot.store.deliveries`), with ids scoped by their
source, so the broker's retry after a crash shows a pending message and acknowledges a sent one.
A chat that refuses for good (the user blocked the bot: 403) is answered 410, so the broker
stops retrying and records a dead letter; other failures are 503 and the broker retries.

A broker whose platform client was registered with ``webhook_batch_max`` > 1 posts several
messages in one signed request, ``{"events": [<message>, ...]}`` (at most ``BATCH_MAX``, at most
``MAX_BATCH_BODY`` bytes; a larger body is refused 413 ``too_large`` as a whole, before its
signature is checked, and the broker retries it). The request is verified once and its nonce
recorded once (a replay is 409 for the whole request); then each message goes the single
message's way (claim, look, send, "sent" only once the Bot API accepted it), side by side, and
the answer is 200 with one result per id: ``{"results": {"<id>": {"status": "shown"}}}`` (any
status a single message is answered 200 with), ``{"error": "blocked_by_user", "retry": false}``
(what a single message is answered 410), ``{"error": "chat_unavailable", "retry": true}``
(503: the broker retries that message alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from http_message_signatures import HTTPMessageVerifier, MappingKeyResolver, algorithms
from http_message_signatures.exceptions import HTTPMessageSignaturesException, InvalidSignature
from telegram import Bot
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, TelegramError

from bot import views
from bot.context import Services
from bot.handlers import receipts
from bot.handlers.link import close_approval
from bot.i18n import Tr, tr
from bot.metrics import ALERTS_SHOWN
from bot.store import deliveries, repo
from bot.store.deliveries import Claim
from bot.store.fastwrite import SqliteDeliveries, sqlite_file
from bot.store.pgwrite import Found, PgDeliveries, postgres_dsn
from bot.store.tables import ChatUser
from bot.store.writes import WriteGate
from bot.telegram_http import send_text

log = logging.getLogger(__name__)
TAG = "chatbank-webhook"
MAX_BODY = 64 * 1024  # one message
MAX_BATCH_BODY = 1024 * 1024  # a batch of messages (the broker cuts its batches at 512 KiB)
BATCH_MAX = 100  # messages in one batch (the broker's bound on webhook_batch_max)
# Telegram's free broadcast rate for a bot; above it each message must carry
# allow_paid_broadcast (paid in Stars, up to 1000 messages a second)
FREE_MESSAGES_PER_S = 30.0


@dataclass
class _Incoming:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


class _Verifier(HTTPMessageVerifier):
    """The library's verifier, with its time checks left to :meth:`BrokerEvents._verify`, which
    reads the bot's own clock (injected, so tests can move time) for both directions."""

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        if "created" not in sig_input.params:
            raise InvalidSignature('Signature is missing a required "created" parameter')


class Refused(Exception):  # noqa: N818 - a refusal, not a failure of the bot
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class BrokerEvents:
    """The aiohttp view behind ``POST /broker/events``."""

    def __init__(self, services: Services, bot: Bot) -> None:
        self.services = services
        self.bot = bot
        self.shown = 0  # messages sent to users, for the benchmark and the health page
        self.writes = WriteGate(services.settings.database_url)
        # on SQLite the nonce, the claim and "sent" skip the async driver (bot.store.fastwrite);
        # on PostgreSQL they, the user and the alert's check are three statements on a plain
        # asyncpg pool (bot.store.pgwrite)
        url = services.settings.database_url
        path, dsn = sqlite_file(url), postgres_dsn(url)
        self.fast: SqliteDeliveries | PgDeliveries | None = None
        if path is not None:
            self.fast = SqliteDeliveries(path)
        elif dsn is not None:
            self.fast = PgDeliveries(dsn)
        # deliveries this process is sending now: a retry that arrives meanwhile is "in progress"
        # however long the send takes, and the claim's lease is renewed while it runs, so only
        # a process that died (or stalled longer than the lease) ever loses its claim
        self._sending: set[str] = set()
        # a bot set to send faster than the free rate is a paid-broadcast bot: its pushed
        # messages say so, or Telegram would refuse them above ~30 a second
        self.paid = services.settings.max_messages_per_s > FREE_MESSAGES_PER_S

    def _verify(self, request: web.Request, body: bytes) -> str:
        """Check the signature and its age; returns the nonce."""
        settings = self.services.settings
        client_id = settings.broker_client_id
        secret = settings.broker_webhook_secret.get_secret_value().encode()
        if not client_id or not secret:
            raise Refused(503, "not_configured")
        verifier = _Verifier(
            signature_algorithm=algorithms.HMAC_SHA256,
            key_resolver=MappingKeyResolver(public_keys={client_id: secret}, private_keys={}),
        )
        url = settings.events_url() if settings.public_url else str(request.url)
        message = _Incoming("POST", url, dict(request.headers))
        try:
            results = verifier.verify(message, expect_tag=TAG, body=body, max_age=None)
        except (HTTPMessageSignaturesException, ValueError, KeyError) as e:
            raise Refused(401, "bad_signature") from e
        params = results[0].parameters
        created, nonce = params.get("created"), params.get("nonce")
        now = self.services.clock().timestamp()
        if not isinstance(created, int) or abs(now - created) > settings.webhook_max_age_s:
            raise Refused(401, "stale_signature")
        if not isinstance(nonce, str) or not nonce:
            raise Refused(401, "missing_nonce")
        return nonce

    async def handle(self, request: web.Request) -> web.Response:
        body = await _read(request, MAX_BATCH_BODY)
        if body is None:
            return _refuse(413, "too_large")
        try:
            nonce = self._verify(request, body)
        except Refused as e:
            log.warning("refused a broker delivery: %s", e.code)
            return _refuse(e.status, e.code)
        now = int(self.services.clock().timestamp())
        try:
            message = json.loads(body)
        except ValueError:
            message = None
        if isinstance(message, dict) and "events" in message and "id" not in message:
            return await self._batch(nonce, message["events"], now)
        if len(body) > MAX_BODY:
            return _refuse(413, "too_large")
        try:
            scoped: str | None = f"{self.services.settings.broker_client_id}:{message['id']}"
        except (KeyError, TypeError):
            message, scoped = None, None
        # the nonce is recorded first, then (on SQLite in the same transaction) the claim
        claim: Claim | None = None
        if self.fast is None:
            async with self.writes():
                fresh = await repo.first_time(self.services.sessions, f"nonce:{nonce}", now)
        elif scoped is None or scoped in self._sending:
            fresh = await self.fast.first_time(f"nonce:{nonce}", now)
        else:
            lease = self.services.settings.delivery_lease_s
            claim = await self.fast.first_time_and_claim(f"nonce:{nonce}", scoped, now, lease)
            fresh = claim is not None
        if not fresh:
            log.warning("refused a broker delivery: replayed")
            return _refuse(409, "replayed")
        if scoped is None or not isinstance(message, dict):
            return _refuse(400, "bad_body")
        if scoped in self._sending:
            return _refuse(503, "in_progress")
        self._sending.add(scoped)
        try:
            status, answer = await self._deliver(scoped, message, claim)
        finally:
            self._sending.discard(scoped)
        return web.json_response(answer, status=status)

    async def _batch(self, nonce: str, events: object, now: int) -> web.Response:
        """A batch ``{"events": [...]}``: the nonce once for the request, then each message as
        a single one, side by side; 200 with a result per id."""
        if self.fast is None:
            async with self.writes():
                fresh = await repo.first_time(self.services.sessions, f"nonce:{nonce}", now)
        else:
            fresh = await self.fast.first_time(f"nonce:{nonce}", now)
        if not fresh:
            log.warning("refused a broker delivery: replayed")
            return _refuse(409, "replayed")
        messages = _batch_messages(events)
        if messages is None:
            return _refuse(400, "bad_body")
        source = self.services.settings.broker_client_id
        results = await asyncio.gather(
            *(self._one(f"{source}:{m['id']}", m, now) for m in messages)
        )
        return web.json_response(
            {"results": {m["id"]: r for m, r in zip(messages, results, strict=True)}}
        )

    async def _one(self, scoped: str, message: dict[str, Any], now: int) -> dict[str, Any]:
        """One message of a batch, as :meth:`handle` delivers a single one; its result."""
        if scoped in self._sending:
            return {"error": "in_progress", "retry": True}
        self._sending.add(scoped)
        try:
            claim: Claim | None = None
            if self.fast is not None:
                lease = self.services.settings.delivery_lease_s
                claim = await self.fast.claim(scoped, now, lease)
            status, answer = await self._deliver(scoped, message, claim)
        except Exception:
            # as a single message's 500: the broker retries it (a claim left pending is taken
            # over once its lease runs out)
            log.exception("a batched broker delivery failed")
            return {"error": "internal", "retry": True}
        finally:
            self._sending.discard(scoped)
        if status == 200:
            return answer
        return {"error": answer["error"], "retry": status != 410}

    @contextlib.asynccontextmanager
    async def _holding(self, scoped: str) -> AsyncIterator[None]:
        """Renew the claim on ``scoped`` every third of the lease while the body runs."""
        every = max(0.2, self.services.settings.delivery_lease_s / 3)

        async def renew() -> None:
            while True:
                await asyncio.sleep(every)
                now = int(self.services.clock().timestamp())
                async with self.writes():
                    await deliveries.renew(self.services.sessions, scoped, now)

        task = asyncio.create_task(renew())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def open(self) -> None:
        if isinstance(self.fast, PgDeliveries):
            await self.fast.open()

    async def close(self) -> None:
        if isinstance(self.fast, PgDeliveries):
            await self.fast.close()
        elif self.fast is not None:
            self.fast.close()

    async def _deliver(
        self, scoped: str, message: dict[str, Any], claim: Claim | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Claim (unless ``claim`` was taken already), send, record "sent"; the HTTP status
        and body a single message is answered with."""
        sessions, settings = self.services.sessions, self.services.settings
        now = int(self.services.clock().timestamp())
        if claim is None:
            async with self.writes():
                claim = await deliveries.claim(sessions, scoped, now, settings.delivery_lease_s)
        if claim is Claim.SENT:
            return 200, {"status": "duplicate"}
        if claim is Claim.BUSY:
            return _refused(503, "in_progress")
        found: Found | None = None
        if isinstance(self.fast, PgDeliveries):
            # "sent" committed by another process after the claim's statement began is seen
            # here (bot.store.pgwrite), with the user and whether the alert was shown
            found = await self.fast.look(
                scoped,
                _alert_id(settings.broker_client_id, message),
                str(message.get("subject_id")),
            )
            if found.sent:
                return 200, {"status": "duplicate"}
        try:
            async with self._holding(scoped):
                outcome, alert_id = await self._show(message, found)
        except (Forbidden, BadRequest) as e:
            async with self.writes():
                await deliveries.release(sessions, scoped)
            code = "blocked_by_user" if isinstance(e, Forbidden) else "undeliverable"
            log.warning("the chat refused delivery for good (%s); telling the broker", code)
            return _refused(410, code)
        except TelegramError as e:
            async with self.writes():
                await deliveries.release(sessions, scoped)
            log.warning(
                "could not show delivery to the user (%s); the broker will retry", type(e).__name__
            )
            return _refused(503, "chat_unavailable")
        if self.fast is not None:
            await self.fast.mark_sent(scoped, now, alert_id)
        else:
            async with self.writes():
                await deliveries.mark_sent(sessions, scoped, now, alert_id)
        return 200, {"status": outcome}

    async def _show(
        self, message: dict[str, Any], found: Found | None = None
    ) -> tuple[str, str | None]:
        """Send the message; returns the outcome and the scoped id of the alert it showed.
        ``found``: the user and the alert's check, read already (on PostgreSQL)."""
        kind, data = str(message.get("kind")), message.get("data") or {}
        if found is not None:
            user = found.user
        else:
            user = await repo.user_by_subject(
                self.services.sessions, str(message.get("subject_id"))
            )
        if user is None or not isinstance(data, dict):
            return "no_such_user", None
        t = tr(user.language or "en", user.time_zone)
        alert_id = None
        if kind == "support_typing":
            await self.bot.send_chat_action(user.chat_id, ChatAction.TYPING)
            return "shown", None
        if kind == "support_message":
            return await self._support(user, t, data), None
        if kind == "fraud_alert":
            alert = data.get("alert") or {}
            alert_id = f"{self.services.settings.broker_client_id}:{alert.get('alert_id')}"
            if found is not None:
                shown = found.alert_shown
            else:
                shown = await deliveries.alert_shown(self.services.sessions, alert_id)
            if shown:
                return "duplicate_alert", None
            text, keyboard = views.alert(t, alert)
            await send_text(self.bot, user.chat_id, text, keyboard, allow_paid_broadcast=self.paid)
        elif kind in RECEIPTS:
            source = self.services.settings.broker_client_id
            now = int(self.services.clock().timestamp())
            await receipts.show(
                self.bot, self.services.sessions, source, user.chat_id, t, kind, data, now
            )
        else:
            bank = await self.services.bank_name(str(data.get("bank_id", "")))
            text, maybe_keyboard = views.notice(t, kind, data, bank)
            await send_text(
                self.bot, user.chat_id, text, maybe_keyboard, allow_paid_broadcast=self.paid
            )
            if kind in ENDS_A_LINK:
                await close_approval(
                    self.bot, self.services.sessions, user, str(data.get("consent_id"))
                )
        self.shown += 1
        label = kind if kind in ("fraud_alert", *RECEIPTS) else "notice"
        ALERTS_SHOWN.labels(label).inc()
        return "shown", alert_id

    async def _support(self, user: ChatUser, t: Tr, data: dict[str, Any]) -> str:
        """A message from a person at the bank; "left" hands the chat back to the bot."""
        message = data.get("message")
        if not isinstance(message, dict):
            return "bad_message"
        bank = await self.services.bank_name(str(data.get("bank_id", "")))
        text, keyboard = views.support_message(t, bank, message)
        kind, sessions = message.get("kind"), self.services.sessions
        conversation = str(message.get("conversation", ""))
        if kind == "left":
            chat = await repo.support_chat(sessions, user.telegram_user_id)
            if chat and chat.get("conversation") in (None, conversation):
                async with self.writes():
                    await repo.set_support_chat(sessions, user.telegram_user_id, None)
            async with self.writes():
                await repo.remember_rating(
                    sessions, user.telegram_user_id, conversation, str(data.get("consent_id"))
                )
        await send_text(self.bot, user.chat_id, text, keyboard)
        self.shown += 1
        ALERTS_SHOWN.labels("notice").inc()
        return "shown"


RECEIPTS = ("receipt", "receipt_summary")
ENDS_A_LINK = frozenset(
    {"consent_authorized", "consent_rejected", "consent_revoked", "consent_expired"}
)


def _alert_id(source: str, message: dict[str, Any]) -> str | None:
    """The scoped id of the fraud alert ``message`` carries (as :meth:`BrokerEvents._show`
    names it), or None."""
    data = message.get("data")
    if message.get("kind") != "fraud_alert" or not isinstance(data, dict):
        return None
    alert = data.get("alert") or {}
    return f"{source}:{alert.get('alert_id')}" if isinstance(alert, dict) else None


def _refused(status: int, code: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": code, "detail": "delivery refused"}


def _refuse(status: int, code: str) -> web.Response:
    body = _refused(status, code)[1]
    return web.json_response(body, status=status)


async def _read(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None if it is longer than ``limit`` bytes (read no further)."""
    if (request.content_length or 0) > limit:
        return None
    parts: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        parts.append(chunk)
        size += len(chunk)
        if size > limit:
            return None
    return b"".join(parts)


def _batch_messages(events: object) -> list[dict[str, Any]] | None:
    """The messages of a batch's ``events``: 1 to ``BATCH_MAX`` objects, each with its own
    non-empty string id; None if it is not such a list."""
    if not isinstance(events, list) or not 1 <= len(events) <= BATCH_MAX:
        return None
    ids = set()
    for m in events:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str) or not m["id"]:
            return None
        ids.add(m["id"])
    return events if len(ids) == len(events) else None
