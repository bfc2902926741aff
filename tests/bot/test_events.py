"""The bot's broker webhook: signatures, age, replays, duplicates, and retry on failure."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from telegram import Bot
from telegram._utils.types import ODVInput
from telegram.error import NetworkError
from telegram.request import BaseRequest, RequestData

from bot import events as events_module
from bot.broker import BrokerClient
from bot.context import Services
from bot.events import MAX_BATCH_BODY, MAX_BODY, BrokerEvents
from bot.settings import BotSettings
from bot.store import deliveries, repo
from bot.store.db import make_engine, session_factory, upgrade_async
from bot.store.deliveries import Claim
from bot.store.tables import ChatUser, SeenDelivery
from bot.telegram_http import AiohttpRequest, send_text
from consent.outbox.signing import sign_webhook
from localchat.app import create_app as create_localchat
from localchat.settings import Settings as LocalchatSettings
from localchat.testing import ChatDriver

TOKEN = "4242:events-test"
SECRET = "webhook-secret-for-tests"
CLIENT = "pc_test"
NOW = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)
ALICE = 1001


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Hook:
    def __init__(self, client: TestClient[Any, Any], events: BrokerEvents, chat: ChatDriver):
        self.client, self.events, self.chat = client, events, chat
        self.bot = events.bot
        self.url = str(client.make_url("/broker/events"))

    async def post(
        self,
        message: dict[str, Any],
        *,
        secret: str = SECRET,
        key_id: str = CLIENT,
        signed_at: datetime = NOW,
        tamper: bool = False,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        body = json.dumps(message).encode()
        signed = headers or sign_webhook(
            self.url, body, key_id=key_id, secret=secret.encode(), now=signed_at
        )
        if tamper:
            body = body.replace(b"Luxe", b"Lux3")
        data = io.BytesIO(body) if len(body) > MAX_BODY else body  # aiohttp warns on big bytes
        resp = await self.client.post("/broker/events", data=data, headers=signed)
        return resp.status, await resp.json(), signed

    async def post_batch(
        self,
        messages: list[dict[str, Any]],
        *,
        signed_at: datetime = NOW,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """A batched delivery (``webhook_batch_max`` > 1), as the relay builds it."""
        return await self.post({"events": messages}, signed_at=signed_at, headers=headers)


def alert_message(n: int = 1, alert_id: str = "fa-1") -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "kind": "fraud_alert",
        "subject_id": "sub_alice",
        "data": {
            "alert": {
                "alert_id": alert_id,
                "account_handle": "acc_x",
                "card_last4": "4242",
                "merchant": "Luxe Watches",
                "amount": "2750.00",
                "currency": "EUR",
                "time": "2026-11-20T18:59:00+00:00",
                "reason": "unusual_amount",
                "actions": ["it_was_me", "freeze_card"],
            }
        },
    }


@pytest.fixture
async def hook(
    database_url: str, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> AsyncIterator[Hook]:
    """The webhook on SQLite and on PostgreSQL (each with its own fast path: bot.store.fastwrite,
    bot.store.pgwrite; the PostgreSQL runs skip without CHATBANK_TEST_POSTGRES_URL)."""
    chat_server = await aiohttp_server(create_localchat(LocalchatSettings(bot_token=TOKEN)))
    base = str(chat_server.make_url("")).rstrip("/")
    url = database_url
    await upgrade_async(url)
    engine = make_engine(url)
    settings = BotSettings(
        token=TOKEN,
        broker_credential=f"{CLIENT}.secret",
        broker_webhook_secret=SECRET,
        database_url=url,
    )
    sessions = session_factory(engine)
    await repo.save_user(
        sessions,
        ChatUser(telegram_user_id=ALICE, chat_id=ALICE, subject_id="sub_alice", language="en"),
    )
    broker = BrokerClient("http://127.0.0.1:9", "x.y")
    services = Services(settings, broker, sessions, Clock())
    bot = Bot(TOKEN, base_url=f"{base}/bot")
    await bot.initialize()
    events = BrokerEvents(services, bot)
    app = web.Application()
    app.router.add_post("/broker/events", events.handle)
    client = TestClient(TestServer(app, host="127.0.0.1"))
    await client.start_server()
    chat = ChatDriver(base)
    yield Hook(client, events, chat)
    await chat.close()
    await client.close()
    await events.close()
    await bot.shutdown()
    await broker.close()
    await engine.dispose()


async def test_a_signed_alert_is_shown_once_with_its_buttons(hook: Hook) -> None:
    status, body, _ = await hook.post(alert_message())
    assert (status, body["status"]) == (200, "shown")
    messages = await hook.chat.messages(ALICE)
    assert len(messages) == 1 and "Luxe Watches" in messages[0]["text"]
    data = [
        b["callback_data"] for row in messages[0]["reply_markup"]["inline_keyboard"] for b in row
    ]
    assert data == ["al:me:fa-1", "al:fz:fa-1"]
    assert all(len(d.encode()) <= 64 for d in data)


async def test_the_same_delivery_retried_is_acknowledged_but_not_shown_again(hook: Hook) -> None:
    await hook.post(alert_message())
    status, body, _ = await hook.post(alert_message())  # a new signature, the same message id
    assert (status, body["status"]) == (200, "duplicate")
    status, body, _ = await hook.post(alert_message(n=2))  # another message, the same alert
    assert (status, body["status"]) == (200, "duplicate_alert")
    assert len(await hook.chat.messages(ALICE)) == 1


async def test_a_replayed_signature_is_refused(hook: Hook) -> None:
    _, _, headers = await hook.post(alert_message())
    status, body, _ = await hook.post(alert_message(), headers=headers)
    assert (status, body["error"]) == (409, "replayed")


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"secret": "not-the-secret"}, "bad_signature"),
        ({"key_id": "pc_other"}, "bad_signature"),
        ({"tamper": True}, "bad_signature"),
        ({"signed_at": NOW - timedelta(minutes=10)}, "stale_signature"),
        ({"signed_at": NOW + timedelta(minutes=10)}, "stale_signature"),
    ],
)
async def test_forged_tampered_or_stale_deliveries_are_refused(
    hook: Hook, change: dict[str, Any], code: str
) -> None:
    status, body, _ = await hook.post(alert_message(), **change)
    assert (status, body["error"]) == (401, code)
    assert await hook.chat.messages(ALICE) == []


async def test_unsigned_or_malformed_bodies_are_refused(hook: Hook) -> None:
    resp = await hook.client.post("/broker/events", data=b"{}")
    assert resp.status == 401
    body = b"not json"
    headers = sign_webhook(hook.url, body, key_id=CLIENT, secret=SECRET.encode(), now=NOW)
    resp = await hook.client.post("/broker/events", data=body, headers=headers)
    assert resp.status == 400


async def test_when_the_chat_is_down_the_delivery_fails_so_the_broker_retries(
    hook: Hook,
) -> None:
    hook.events.bot = Bot(TOKEN, base_url="http://127.0.0.1:9/bot")  # nothing listens there
    status, body, _ = await hook.post(alert_message())
    assert (status, body["error"]) == (503, "chat_unavailable")
    # the claim was dropped, so the retry is shown at once
    hook.events.bot = hook.bot
    status, body, _ = await hook.post(alert_message())
    assert (status, body["status"]) == (200, "shown")
    assert len(await hook.chat.messages(ALICE)) == 1


async def test_a_delivery_pending_when_the_bot_died_is_shown_by_the_retry(hook: Hook) -> None:
    """The bot claimed the delivery and died before sendMessage: the claim is older than the
    lease, so the broker's retry shows the alert instead of calling it a duplicate."""
    services = hook.events.services
    lease = services.settings.delivery_lease_s
    died_at = int(NOW.timestamp()) - lease
    claim = await deliveries.claim(services.sessions, f"{CLIENT}:msg_1", died_at, lease)
    assert claim is Claim.CLAIMED
    status, body, _ = await hook.post(alert_message())
    assert (status, body["status"]) == (200, "shown")
    assert len(await hook.chat.messages(ALICE)) == 1
    status, body, _ = await hook.post(alert_message())
    assert (status, body["status"]) == (200, "duplicate")
    assert len(await hook.chat.messages(ALICE)) == 1


async def test_a_retry_while_the_delivery_is_being_sent_is_told_to_come_back(hook: Hook) -> None:
    services = hook.events.services
    now = int(NOW.timestamp())
    lease = services.settings.delivery_lease_s
    assert await deliveries.claim(services.sessions, f"{CLIENT}:msg_1", now, lease) is Claim.CLAIMED
    status, body, _ = await hook.post(alert_message())
    assert (status, body["error"]) == (503, "in_progress")
    assert await hook.chat.messages(ALICE) == []


async def test_delivery_ids_are_scoped_by_their_broker(hook: Hook) -> None:
    """The same message id from another broker (another platform client) is another delivery."""
    services = hook.events.services
    await deliveries.mark_sent(services.sessions, "pc_other:msg_1", 0, "pc_other:fa-1")
    status, body, _ = await hook.post(alert_message())
    assert (status, body["status"]) == (200, "shown")


async def test_a_user_who_blocked_the_bot_is_a_permanent_failure(hook: Hook) -> None:
    await hook.chat.block(ALICE)
    status, body, _ = await hook.post(alert_message())
    assert (status, body["error"]) == (410, "blocked_by_user")
    await hook.chat.block(ALICE, blocked=False)
    status, body, _ = await hook.post(alert_message())  # nothing was recorded as sent
    assert (status, body["status"]) == (200, "shown")


async def test_notices_are_shown_in_the_users_language(hook: Hook) -> None:
    message = {
        "id": "msg_9",
        "kind": "consent_expiring",
        "subject_id": "sub_alice",
        "data": {"consent_id": "c1", "bank_id": "northwind", "days_left": 7},
    }
    status, body, _ = await hook.post(message)
    assert (status, body["status"]) == (200, "shown")
    shown = (await hook.chat.messages(ALICE))[0]
    assert "7 days" in shown["text"]
    renew = shown["reply_markup"]["inline_keyboard"][0][0]
    assert renew["callback_data"] == "rn:northwind"


async def test_a_delivery_for_a_forgotten_user_is_acknowledged_and_dropped(hook: Hook) -> None:
    message = alert_message()
    message["subject_id"] = "sub_nobody"
    status, body, _ = await hook.post(message)
    assert (status, body["status"]) == (200, "no_such_user")


async def test_a_link_needing_approval_again_is_shown_with_a_button_to_relink(
    hook: Hook,
) -> None:
    await repo.save_user(
        hook.events.services.sessions,
        ChatUser(telegram_user_id=ALICE, chat_id=ALICE, subject_id="sub_alice", language="pl"),
    )
    message = {
        "id": "msg_11",
        "kind": "consent_needs_reauthorization",
        "subject_id": "sub_alice",
        "data": {"consent_id": "c1", "bank_id": "northwind"},
    }
    status, body, _ = await hook.post(message)
    assert (status, body["status"]) == (200, "shown")
    shown = (await hook.chat.messages(ALICE))[0]
    assert "/link" in shown["text"] and "nie akceptuje" in shown["text"]
    button = shown["reply_markup"]["inline_keyboard"][0][0]
    assert (button["text"], button["callback_data"]) == ("Połącz ponownie", "rn:northwind")


class FaultyRequest(AiohttpRequest):
    """The Bot API transport, with faults for ``sendMessage``: while ``hold`` is set each one
    waits (``started`` set) until ``go`` is set; to the chats in ``down`` it fails with a network
    error (as a reset connection does)."""

    def __init__(self) -> None:
        super().__init__()
        self.hold = False
        self.started = asyncio.Event()
        self.go = asyncio.Event()
        self.down: set[int] = set()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        if url.endswith("/sendMessage") and request_data is not None:
            if self.hold:
                self.started.set()
                await self.go.wait()
            if int(request_data.json_parameters["chat_id"]) in self.down:
                raise NetworkError("connection reset")
        return await super().do_request(
            url, method, request_data, read_timeout, write_timeout, connect_timeout, pool_timeout
        )


def faulty_bot(hook: Hook) -> tuple[Bot, FaultyRequest]:
    """A bot on the same Bot API as ``hook``'s, through a :class:`FaultyRequest`."""
    request = FaultyRequest()
    base = str(hook.bot.base_url).removesuffix(TOKEN)
    return Bot(TOKEN, base_url=base, request=request), request


async def _pending_since(hook: Hook, scoped: str) -> int | None:
    async with hook.events.services.sessions() as session:
        row = await session.get(SeenDelivery, f"pending:{scoped}")
        return None if row is None else row.seen_at


async def test_a_send_slower_than_the_lease_keeps_its_claim(hook: Hook) -> None:
    """A sendMessage that takes longer than the lease (a busy Bot API, a long rate-limit queue)
    is still running: a retry must not take the claim over and show the alert twice, neither in
    this process (it knows what it is sending) nor in another (the claim is renewed)."""
    services = hook.events.services
    clock = services.clock
    assert isinstance(clock, Clock)
    services.settings.delivery_lease_s = 1
    slow_bot, slow = faulty_bot(hook)
    slow.hold = True
    await slow_bot.initialize()
    hook.events.bot = slow_bot
    other = BrokerEvents(services, hook.bot)  # another bot process on the same database
    app = web.Application()
    app.router.add_post("/broker/events", other.handle)
    other_client = TestClient(TestServer(app, host="127.0.0.1"))
    await other_client.start_server()
    try:
        first = asyncio.create_task(hook.post(alert_message()))
        await asyncio.wait_for(slow.started.wait(), 10)
        clock.now = NOW + timedelta(seconds=30)  # far past the lease
        # a retry that took the claim over would send again (and wait on the slow Bot API)
        retry = hook.post(alert_message(), signed_at=clock.now)
        status, body, _ = await asyncio.wait_for(retry, 10)
        assert (status, body["error"]) == (503, "in_progress")
        scoped = f"{CLIENT}:msg_1"
        for _ in range(200):  # the sender renews its claim every third of the lease
            if await _pending_since(hook, scoped) == int(clock.now.timestamp()):
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("the claim was not renewed while its send was running")
        body_bytes = json.dumps(alert_message()).encode()
        url = str(other_client.make_url("/broker/events"))
        headers = sign_webhook(
            url, body_bytes, key_id=CLIENT, secret=SECRET.encode(), now=clock.now
        )
        resp = await asyncio.wait_for(
            other_client.post("/broker/events", data=body_bytes, headers=headers), 10
        )
        assert (resp.status, (await resp.json())["error"]) == (503, "in_progress")
        slow.go.set()
        status, body, _ = await first
        assert (status, body["status"]) == (200, "shown")
        assert len(await hook.chat.messages(ALICE)) == 1
        assert await _pending_since(hook, scoped) is None
    finally:
        slow.go.set()
        await other_client.close()
        await other.close()
        await slow_bot.shutdown()


# --- batched deliveries ({"events": [...]}, answered per id) ---------------------------------

BOB, CAROL = 1002, 1003


async def _three_users(hook: Hook) -> list[dict[str, Any]]:
    """Alice, Bob and Carol linked; one alert for each (as a batch carries them: one message
    per subject)."""
    sessions = hook.events.services.sessions
    for chat, name in ((BOB, "bob"), (CAROL, "carol")):
        user = ChatUser(
            telegram_user_id=chat, chat_id=chat, subject_id=f"sub_{name}", language="en"
        )
        await repo.save_user(sessions, user)
    messages = []
    for n, subject in enumerate(("sub_alice", "sub_bob", "sub_carol"), start=1):
        message = alert_message(n, alert_id=f"fa-{n}")
        message["subject_id"] = subject
        messages.append(message)
    return messages


async def _shown(hook: Hook) -> dict[int, int]:
    return {chat: len(await hook.chat.messages(chat)) for chat in (ALICE, BOB, CAROL)}


async def test_a_batch_is_shown_once_each_and_its_retry_acknowledged(hook: Hook) -> None:
    messages = await _three_users(hook)
    status, body, _ = await hook.post_batch(messages)
    assert status == 200
    assert body == {"results": {m["id"]: {"status": "shown"} for m in messages}}
    assert await _shown(hook) == {ALICE: 1, BOB: 1, CAROL: 1}
    # the broker's retry (a new signature): acknowledged, not shown again
    status, body, _ = await hook.post_batch(messages, signed_at=NOW + timedelta(seconds=1))
    assert status == 200
    assert body == {"results": {m["id"]: {"status": "duplicate"} for m in messages}}
    assert await _shown(hook) == {ALICE: 1, BOB: 1, CAROL: 1}
    # and a single retry of one of them too
    status, body, _ = await hook.post(messages[1])
    assert (status, body["status"]) == (200, "duplicate")


async def test_a_chat_that_blocked_the_bot_fails_for_good_in_a_batch_the_others_are_shown(
    hook: Hook,
) -> None:
    messages = await _three_users(hook)
    await hook.chat.block(BOB)
    status, body, _ = await hook.post_batch(messages)
    assert status == 200
    results = body["results"]
    assert results[messages[1]["id"]] == {"error": "blocked_by_user", "retry": False}
    assert results[messages[0]["id"]] == results[messages[2]["id"]] == {"status": "shown"}
    assert await _shown(hook) == {ALICE: 1, BOB: 0, CAROL: 1}
    await hook.chat.block(BOB, blocked=False)
    _, body, _ = await hook.post(messages[1])  # nothing was recorded as sent for Bob
    assert body["status"] == "shown"


async def test_a_send_failing_mid_batch_is_retried_and_then_each_shown_exactly_once(
    hook: Hook,
) -> None:
    messages = await _three_users(hook)
    flaky_bot, flaky = faulty_bot(hook)
    await flaky_bot.initialize()
    try:
        flaky.down.add(CAROL)
        hook.events.bot = flaky_bot
        status, body, _ = await hook.post_batch(messages)
        assert status == 200
        results = body["results"]
        assert results[messages[2]["id"]] == {"error": "chat_unavailable", "retry": True}
        assert await _shown(hook) == {ALICE: 1, BOB: 1, CAROL: 0}
        # the broker retries the whole batch (as after a timeout) or only Carol's message
        flaky.down.clear()
        status, body, _ = await hook.post_batch(messages, signed_at=NOW + timedelta(seconds=1))
        assert [body["results"][m["id"]] for m in messages] == [
            {"status": "duplicate"},
            {"status": "duplicate"},
            {"status": "shown"},
        ]
        assert await _shown(hook) == {ALICE: 1, BOB: 1, CAROL: 1}
    finally:
        await flaky_bot.shutdown()


async def test_a_message_being_sent_is_told_to_come_back_the_rest_of_its_batch_is_shown(
    hook: Hook,
) -> None:
    messages = await _three_users(hook)
    services = hook.events.services
    now, lease = int(NOW.timestamp()), services.settings.delivery_lease_s
    scoped = f"{CLIENT}:{messages[0]['id']}"
    assert await deliveries.claim(services.sessions, scoped, now, lease) is Claim.CLAIMED
    status, body, _ = await hook.post_batch(messages)
    assert status == 200
    assert body["results"][messages[0]["id"]] == {"error": "in_progress", "retry": True}
    assert await _shown(hook) == {ALICE: 0, BOB: 1, CAROL: 1}


async def test_a_replayed_batch_is_refused_as_a_whole(hook: Hook) -> None:
    messages = await _three_users(hook)
    _, _, headers = await hook.post_batch(messages[:1])
    status, body, _ = await hook.post_batch(messages[:1], headers=headers)
    assert (status, body["error"]) == (409, "replayed")
    # the same signature over another body does not verify at all
    status, body, _ = await hook.post_batch(messages, headers=headers)
    assert (status, body["error"]) == (401, "bad_signature")
    assert await _shown(hook) == {ALICE: 1, BOB: 0, CAROL: 0}


@pytest.mark.parametrize(
    "events",
    [
        [],
        "msg_1",
        [{"kind": "fraud_alert"}],
        [{"id": 7}],
        [{"id": ""}],
        [alert_message(1), alert_message(1)],  # one id twice
        [alert_message(n) for n in range(101)],  # more than BATCH_MAX
    ],
)
async def test_a_malformed_batch_is_refused_and_nothing_shown(hook: Hook, events: Any) -> None:
    status, body, headers = await hook.post({"events": events})
    assert (status, body["error"]) == (400, "bad_body")
    assert await hook.chat.messages(ALICE) == []
    status, _, _ = await hook.post({"events": events}, headers=headers)
    assert status == 409  # its nonce was recorded all the same, as a single body's is


async def test_a_body_larger_than_a_batch_may_be_is_refused_before_anything_else(
    hook: Hook,
) -> None:
    message = alert_message()
    message["data"]["padding"] = "x" * MAX_BATCH_BODY
    status, body, _ = await hook.post_batch([message])
    assert (status, body["error"]) == (413, "too_large")
    # a single message keeps its own bound
    single = alert_message()
    single["data"]["padding"] = "x" * MAX_BODY
    status, body, _ = await hook.post(single)
    assert (status, body["error"]) == (413, "too_large")
    assert await hook.chat.messages(ALICE) == []
    # a batch between the two bounds is taken
    messages = await _three_users(hook)
    for m in messages:
        m["data"]["padding"] = "x" * (MAX_BODY // 2)
    status, body, _ = await hook.post_batch(messages)
    assert status == 200 and len(body["results"]) == 3


async def test_a_bug_showing_one_message_of_a_batch_is_a_retry_for_it_alone(
    hook: Hook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a single message's 500: that one is retried (its claim left to run out), the rest of
    the batch is shown and answered."""
    messages = await _three_users(hook)

    async def broken(bot: Bot, chat_id: int, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if chat_id == ALICE:
            raise RuntimeError("a bug")  # no Telegram error
        return await send_text(bot, chat_id, *args, **kwargs)

    monkeypatch.setattr(events_module, "send_text", broken)
    status, body, _ = await hook.post_batch(messages)
    assert status == 200
    assert [body["results"][m["id"]] for m in messages] == [
        {"error": "internal", "retry": True},
        {"status": "shown"},
        {"status": "shown"},
    ]
    assert await _shown(hook) == {ALICE: 0, BOB: 1, CAROL: 1}
