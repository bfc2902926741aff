"""Talk to a person at the bank, through the broker: the support scope decides, messages go to
the bank and come back as minimized, signed deliveries; the access log names them by id only;
the conversation is in the export, and goes with revocation and deletion."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import select

from bank_mock.fraud.publisher import SUPPORT
from bank_mock.fraud.signing import SIGNERS
from bank_mock.keys import BANKS
from bank_mock.support import DESK
from consent.api.keys import BROKER
from consent.store.tables import ConsentRow, SupportConversation, SupportMessage
from tests.consent.broker_env import Env
from tests.consent.test_events_and_webhooks import Bot, wired  # noqa: F401 - the fixture

PAN = "4539578763621486"
SCOPES = ["balances", "support"]


async def _staff(bank: TestClient[Any, Any]) -> str:
    resp = await bank.post(
        "/banks/northwind/agent/login", data={"username": "agent1", "password": "agent-demo"}
    )
    found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
    assert found
    return found.group(1)


async def _send(env: Env, subject: str, consent: str, text: str) -> Any:
    return await env.broker.post(
        f"/v1/subjects/{subject}/consents/{consent}/support/messages",
        json={"text": text, "language": "en"},
        headers=env.auth(),
    )


async def test_a_conversation_both_ways_logged_by_id_exported_and_deleted(
    wired: tuple[Env, Bot, str],  # noqa: F811
) -> None:
    env, bot, _ = wired
    env.clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # Friday morning in London
    subject = await env.subject()
    consent = await env.link(subject, scopes=SCOPES)
    resp = await _send(env, subject, consent, "My card was charged twice")
    assert resp.status == 201, await resp.text()
    sent = await resp.json()
    assert sent["opened"] is True and sent["status"] == "waiting"
    assert sent["expected_reply_at"] == "2026-11-20T10:30:00+00:00"  # nobody at the console
    desk = env.bank_app[DESK]
    (conv,) = desk.conversations.values()
    assert conv.conversation_id not in sent["conversation"]  # the bank's id stays at the broker
    csrf = await _staff(env.bank)
    base = f"/banks/northwind/agent/conversations/{conv.conversation_id}"
    await env.bank.post(base + "/assign", data={"csrf": csrf})
    joined = await bot.next_kind("support_message")
    assert joined["data"]["message"]["kind"] == "joined"
    assert joined["data"]["message"]["display_name"] == "Sarah"
    await env.bank.post(base + "/messages", data={"csrf": csrf, "text": f"Is it {PAN}?"})
    async with asyncio.timeout(10):
        while True:
            texts = [
                json.loads(b)["data"]["message"].get("text")
                for _, b in bot.received
                if b"support_message" in b
            ]
            if any(t for t in texts):
                break
            bot.arrived.clear()
            await bot.arrived.wait()
    answer = next(t for t in texts if t)
    assert answer == "Is it •••• 1486?"
    message = json.loads(
        next(b for _, b in bot.received if b"support_message" in b and PAN[-4:].encode() in b)
    )["data"]["message"]
    assert set(message) == {
        "conversation",
        "kind",
        "role",
        "display_name",
        "text",
        "time",
    }
    assert message["role"] == "bank_representative"
    assert message["conversation"] == sent["conversation"]
    assert all(PAN.encode() not in b and b"stf-" not in b for _, b in bot.received)
    # the access log: every message by id and time, never its words
    log = await (
        await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    ).json()
    support = [e for e in log["entries"] if e["scope"] == "support"]
    assert [e["action"] for e in support] == [
        "support.send",
        "push.support_message",
        "push.support_message",
    ]
    assert all(re.fullmatch(r"message:sm_[\w-]+", e["fields"][0]) for e in support)
    assert "charged" not in str(log) and "1486" not in str(log)
    # closing asks for a rating, which reaches the bank
    await env.bank.post(base + "/close", data={"csrf": csrf})
    await bot.next_kind("support_message")
    async with asyncio.timeout(10):
        while not any(b'"kind":"left"' in b for _, b in bot.received):
            bot.arrived.clear()
            await bot.arrived.wait()
    rated = await env.broker.post(
        f"/v1/subjects/{subject}/consents/{consent}/support/rating",
        json={"conversation": sent["conversation"], "rating": 4},
        headers=env.auth(),
    )
    assert rated.status == 200, await rated.text()
    assert conv.rating == 4
    export = await (
        await env.broker.get(f"/v1/subjects/{subject}/export", headers=env.auth())
    ).json()
    (exported,) = export["support_conversations"]
    assert exported["rating"] == 4 and exported["status"] == "closed"
    assert [m["kind"] for m in exported["messages"]] == ["message", "joined", "message", "left"]
    assert exported["messages"][0]["text"] == "My card was charged twice"
    # revoking shreds the words
    await env.broker.delete(f"/v1/subjects/{subject}/consents/{consent}", headers=env.auth())
    export = await (
        await env.broker.get(f"/v1/subjects/{subject}/export", headers=env.auth())
    ).json()
    assert export["support_conversations"][0]["messages"] == []
    deleted = await env.broker.delete(f"/v1/subjects/{subject}", headers=env.auth())
    assert deleted.status == 204


async def test_without_the_support_scope_or_with_bad_input_nothing_reaches_the_bank(
    wired: tuple[Env, Bot, str],  # noqa: F811
) -> None:
    env, _, _ = wired
    subject = await env.subject()
    consent = await env.link(subject, scopes=["balances"])
    refused = await _send(env, subject, consent, "hello")
    assert refused.status == 403 and (await refused.json())["error"] == "scope_not_consented"
    assert not env.bank_app[DESK].conversations
    consent = await env.link(subject, scopes=SCOPES)
    for body in ({"text": ""}, {"text": "x" * 2001}, {"text": "hi", "language": "de"}, {}):
        resp = await env.broker.post(
            f"/v1/subjects/{subject}/consents/{consent}/support/messages",
            json=body,
            headers=env.auth(),
        )
        assert resp.status == 400, body
    blank = await _send(env, subject, consent, "   ")
    assert blank.status == 400
    other = await env.subject()
    probe = await _send(env, other, consent, "hello")
    assert probe.status == 404  # another subject's consent is a missing one
    ads = await env.broker.post(
        f"/v1/subjects/{subject}/consents/{consent}/support/messages",
        json={"text": "hi"},
        headers=env.auth(purpose="marketing"),
    )
    assert ads.status == 403
    open_rating = await env.broker.post(
        f"/v1/subjects/{subject}/consents/{consent}/support/rating",
        json={"conversation": "conv_nope", "rating": 5},
        headers=env.auth(),
    )
    assert open_rating.status == 404
    assert not env.bank_app[DESK].conversations


async def test_outside_business_hours_the_answer_says_when(
    wired: tuple[Env, Bot, str],  # noqa: F811
) -> None:
    env, _, _ = wired  # the test clock: Friday 19:00 UTC
    subject = await env.subject()
    consent = await env.link(subject, scopes=SCOPES)
    sent = await (await _send(env, subject, consent, "hello?")).json()
    assert sent["outside_hours"] is True
    assert sent["expected_reply_at"] == "2026-11-23T09:00:00+00:00"
    again = await (await _send(env, subject, consent, "anyone?")).json()
    assert again["opened"] is False and again["conversation"] == sent["conversation"]
    closed = await env.broker.post(
        f"/v1/subjects/{subject}/consents/{consent}/support/close",
        json={"conversation": sent["conversation"]},
        headers=env.auth(),
    )
    assert (await closed.json())["status"] == "closed"
    (conv,) = env.bank_app[DESK].conversations.values()
    assert conv.status == "closed" and conv.closed_by == "customer"


async def _support_set(env: Env, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A support event signed by Northwind's own key, posted to the broker."""
    broker = env.broker.app[BROKER]
    cred = await broker.credentials("northwind")
    token = env.bank_app[SIGNERS]["northwind"].make_set(
        audience=cred.client_id, subject="x", events={SUPPORT: payload}, now=env.clock.now
    )
    resp = await env.broker.post(
        "/events/northwind", data=token, headers={"Content-Type": "application/jwt"}
    )
    return resp.status, await resp.json()


async def test_bank_events_for_the_wrong_consent_or_conversation_reach_no_one(
    wired: tuple[Env, Bot, str],  # noqa: F811
) -> None:
    env, bot, _ = wired
    subject = await env.subject()
    plain = await env.link(subject, scopes=["balances"])
    chatty = await env.link(subject, scopes=SCOPES)
    sent = await (await _send(env, subject, chatty, "hello")).json()
    (conv,) = env.bank_app[DESK].conversations.values()
    bank_consent = {c.consent_id: c for c in env.bank_app[BANKS]["northwind"].consents.values()}
    assert len(bank_consent) == 2
    broker = env.broker.app[BROKER]
    async with broker.sessions() as session:
        rows = {c: await session.get(ConsentRow, c) for c in (plain, chatty)}
    message = {
        "conversation_id": conv.conversation_id,
        "type": "message",
        "agent_name": "Mallory",
        "text": "hi",
        "message_id": "msg-1",
        "sent_at": env.clock.now.isoformat(),
    }
    # a consent without the support scope: ignored, whatever the bank says
    plain_row, chatty_row = rows[plain], rows[chatty]
    assert plain_row is not None and chatty_row is not None
    ignored = await _support_set(env, {**message, "consent_id": plain_row.bank_consent_id})
    assert ignored == (202, {"status": "ignored"})
    # a conversation the broker never opened: ignored
    unknown = {**message, "conversation_id": "cnv-nope", "consent_id": chatty_row.bank_consent_id}
    assert await _support_set(env, unknown) == (202, {"status": "ignored"})
    # an unknown kind: ignored; the real one: processed once, a second copy is a duplicate
    odd = {**message, "type": "shout", "consent_id": chatty_row.bank_consent_id}
    assert await _support_set(env, odd) == (202, {"status": "ignored"})
    real = {**message, "consent_id": chatty_row.bank_consent_id}
    assert await _support_set(env, real) == (202, {"status": "processed"})
    assert await _support_set(env, real) == (202, {"status": "duplicate"})
    delivered = await bot.next_kind("support_message")
    assert delivered["data"]["message"]["conversation"] == sent["conversation"]
    await asyncio.sleep(0.3)
    assert sum(b"support_message" in b for _, b in bot.received) == 1


async def test_a_bank_that_fails_leaves_nothing_half_written(
    wired: tuple[Env, Bot, str],  # noqa: F811
) -> None:
    env, _, _ = wired
    subject = await env.subject()
    consent = await env.link(subject, scopes=SCOPES)
    await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    failed = await _send(env, subject, consent, "hello")
    assert failed.status in (502, 503), await failed.text()
    assert (await failed.json())["error"] in ("bank_unavailable", "bank_error")
    async with env.broker.app[BROKER].sessions() as session:
        assert not (await session.exec(select(SupportMessage))).all()
        assert not (await session.exec(select(SupportConversation))).all()
    log = await (
        await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    ).json()
    assert not [e for e in log["entries"] if e["action"] == "support.send"]
    await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 0.0})
    assert (await _send(env, subject, consent, "hello again")).status == 201
