"""Flood control: Telegram's 429 answers, the /api/flood switch, and PTB waiting them out."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given
from hypothesis import strategies as st
from telegram import Update
from telegram.ext import AIORateLimiter, ContextTypes, MessageHandler, filters

from localchat.app import create_app
from localchat.flood import FloodControl
from localchat.keys import STORE
from localchat.settings import Settings
from localchat.testing import ChatDriver
from tests.localchat.ptb import running_bot

TOKEN = "42:abc"
ALICE, OMAR = 1001, 1002
Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
MakeServer = Callable[..., Awaitable[TestServer]]


async def call(client: Client, method: str, **params: Any) -> tuple[int, dict[str, Any]]:
    form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
    resp = await client.post(f"/bot{TOKEN}/{method}", data=form)
    body: dict[str, Any] = await resp.json()
    return resp.status, body


events = st.lists(
    st.tuples(st.sampled_from([1, 2, 3]), st.floats(0, 0.7, allow_nan=False)), max_size=60
)


@given(events=events, per_chat=st.integers(0, 4), overall=st.integers(0, 8))
def test_a_send_is_refused_exactly_when_a_one_second_window_is_full(
    events: list[tuple[int, float]], per_chat: int, overall: int
) -> None:
    now = 0.0
    flood = FloodControl(per_chat, overall, clock=lambda: now)
    accepted: list[tuple[float, int]] = []
    for chat, step in events:
        now += step
        recent = [c for t, c in accepted if t > now - 1.0]
        full = (per_chat and recent.count(chat) >= per_chat) or (overall and len(recent) >= overall)
        wait = flood.check(chat)
        assert (wait is not None) == bool(full)
        if wait is None:
            accepted.append((now, chat))
            continue
        assert wait >= 1
        later = [c for t, c in accepted if t > now + wait - 1.0 + 1e-9]  # float rounding
        assert (not per_chat or later.count(chat) < per_chat) and (
            not overall or len(later) < overall
        )


async def test_a_full_chat_window_answers_429_with_retry_after(
    aiohttp_client: MakeClient,
) -> None:
    client = await aiohttp_client(create_app(Settings(bot_token=TOKEN, flood_per_chat_per_s=2)))
    client.app[STORE].flood.clock = lambda: 100.0  # every send lands in the same instant
    for n in range(2):
        assert (await call(client, "sendMessage", chat_id=ALICE, text=f"m{n}"))[0] == 200
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="one too many")
    assert status == 429
    assert body == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    assert (await call(client, "sendMessage", chat_id=OMAR, text="other chat"))[0] == 200
    texts = [m["text"] for m in await (await client.get(f"/api/messages/{ALICE}")).json()]
    assert texts == ["m0", "m1"]


async def test_the_flood_switch_refuses_the_next_k_sends_and_edits(
    aiohttp_client: MakeClient,
) -> None:
    client = await aiohttp_client(create_app(Settings(bot_token=TOKEN)))
    _, sent = await call(client, "sendMessage", chat_id=ALICE, text="before")
    resp = await client.post("/api/flood", json={"count": 2, "retry_after": 7})
    assert resp.status == 200
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="x")
    assert status == 429 and body["parameters"] == {"retry_after": 7}
    mid = sent["result"]["message_id"]
    status, body = await call(client, "editMessageText", chat_id=ALICE, message_id=mid, text="y")
    assert status == 429 and body["description"] == "Too Many Requests: retry after 7"
    assert (await call(client, "sendMessage", chat_id=ALICE, text="after"))[0] == 200
    assert (await client.post("/api/flood", json={"count": -1})).status == 400


async def test_ptbs_rate_limiter_waits_out_a_429_and_the_reply_arrives_once(
    aiohttp_server: MakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")  # RetryAfter.retry_after as PTB 23 will give it
    server = await aiohttp_server(create_app(Settings(bot_token=TOKEN)), host="127.0.0.1")
    base = str(server.make_url(""))

    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None and update.effective_message.text
        await update.effective_message.reply_text(f"echo: {update.effective_message.text}")

    handlers = [MessageHandler(filters.TEXT, echo)]
    limiter = AIORateLimiter(max_retries=2)
    async with running_bot(base, TOKEN, handlers, rate_limiter=limiter), ChatDriver(base) as chat:
        await chat.flood(1, retry_after=1)
        started = time.monotonic()
        await chat.send(ALICE, "hello")
        messages = await chat.wait_for(ALICE, lambda ms: any(m["from_bot"] for m in ms))
        waited = time.monotonic() - started
    assert [m["text"] for m in messages if m["from_bot"]] == ["echo: hello"]
    assert waited >= 1.0, "the bot retried before retry_after had passed"


@pytest.mark.parametrize("count", [0, 3])
def test_forcing_counts_down_to_normal_service(count: int) -> None:
    flood = FloodControl(0, 0)
    flood.force(count, 5)
    assert [flood.check(1) for _ in range(count + 2)] == [5] * count + [None, None]


async def test_beyond_the_free_rate_only_paid_broadcasts_go_through(
    aiohttp_client: MakeClient,
) -> None:
    """Telegram's ~30 messages a second per bot for free, up to 1000 with allow_paid_broadcast:
    with ``flood_free_per_s`` an unpaid send meets the lower limit (paid ones count towards it),
    a paid one only the higher."""
    settings = Settings(
        bot_token=TOKEN, flood_per_chat_per_s=0, flood_global_per_s=5, flood_free_per_s=2
    )
    client = await aiohttp_client(create_app(settings))
    client.app[STORE].flood.clock = lambda: 100.0  # every send lands in the same instant
    assert (await call(client, "sendMessage", chat_id=ALICE, text="free 1"))[0] == 200
    assert (await call(client, "sendMessage", chat_id=OMAR, text="free 2"))[0] == 200
    status, body = await call(client, "sendMessage", chat_id=ALICE, text="unpaid 3")
    assert status == 429 and body["parameters"]["retry_after"] == 1
    for n in range(3):
        paid = await call(
            client, "sendMessage", chat_id=OMAR, text=f"paid {n}", allow_paid_broadcast=True
        )
        assert paid[0] == 200
    status, _ = await call(
        client, "sendMessage", chat_id=OMAR, text="paid 4", allow_paid_broadcast=True
    )
    assert status == 429  # the paid ceiling (5 a second here) holds too


@given(sends=st.lists(st.booleans(), max_size=40), free=st.integers(1, 6))
def test_unpaid_sends_never_pass_the_free_rate(sends: list[bool], free: int) -> None:
    flood = FloodControl(0, 1000, free_per_s=free, clock=lambda: 0.0)
    accepted: list[bool] = []
    for paid in sends:
        if flood.check(1, paid=paid) is None:
            accepted.append(paid)
        else:
            assert not paid  # within 1000 a second a paid send always goes through
            assert len(accepted) >= free
    unpaid_after_full = [p for i, p in enumerate(accepted) if not p and i >= free]
    assert unpaid_after_full == []
