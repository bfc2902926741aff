"""Bounded delivery: a platform that refuses a message for good (410, e.g. the user blocked the
bot) or keeps failing ends it as a dead letter, with an access-log entry, visible to operators;
and bank event ids are de-duplicated per bank."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlmodel import col, select

from bank_mock.keys import BANKS
from chatbank.cli import main as chatbank_main
from consent.api.keys import BROKER, RELAY
from consent.events.ingest import FRAUD_ALERT, ingest
from consent.outbox import deadletter
from consent.outbox.stats import Depth, depth
from consent.outbox.write import enqueue
from consent.store.tables import AlertRow, AuditRow, ConsentRow, OutboxRow
from tests.consent.broker_env import ADMIN, Env, start, stop

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Platform:
    """The bot's webhook, answering ``status`` with ``body`` to every delivery."""

    status: int = 204
    body: dict[str, Any] = field(default_factory=dict)
    calls: int = 0
    ids: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.ids.append(json.loads(await request.read())["id"])
        self.calls += 1
        if self.status == 204:
            return web.Response(status=204)
        return web.json_response(self.body, status=self.status)


@pytest.fixture
async def wired(
    tmp_path: Path, database_url: str, aiohttp_server: ServerFactory
) -> AsyncIterator[tuple[Env, Platform]]:
    env = await start(tmp_path, database_url)
    platform = Platform()
    app = web.Application()
    app.router.add_post("/webhook", platform.handle)
    server = await aiohttp_server(app)
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot", "webhook_url": str(server.make_url("/webhook"))},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    env.credential = (await resp.json())["credential"]
    yield env, platform
    await stop(env)


async def _listed(env: Env) -> list[dict[str, Any]]:
    resp = await env.broker.get(
        "/admin/v1/outbox/dead-letters", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert resp.status == 200
    letters: list[dict[str, Any]] = (await resp.json())["dead_letters"]
    return letters


async def _until_dead(env: Env, *, advance: timedelta = timedelta(0)) -> list[dict[str, Any]]:
    """Let the relay work (moving the clock on by ``advance`` each pass) until a dead letter."""
    relay = env.broker.app[RELAY]
    async with asyncio.timeout(10):
        while not (letters := await _listed(env)):
            env.clock.now += advance
            relay.wake.set()
            await asyncio.sleep(0.05)
    return letters


async def _outbox(env: Env) -> list[OutboxRow]:
    async with env.broker.app[BROKER].sessions() as session:
        return list((await session.exec(select(OutboxRow))).all())


async def test_a_user_who_blocked_the_bot_ends_as_one_dead_letter_in_the_access_log(
    wired: tuple[Env, Platform],
) -> None:
    env, platform = wired
    platform.status, platform.body = 410, {"error": "blocked_by_user", "detail": "x"}
    subject = await env.subject()
    await env.link(subject)  # the platform is told: "consent_authorized"
    letters = await _until_dead(env)
    assert len(letters) == 1
    letter = letters[0]
    assert (letter["subject_id"], letter["kind"]) == (subject, "consent_authorized")
    assert (letter["reason"], letter["attempts"]) == ("platform:blocked_by_user", 1)
    assert platform.calls == 1  # refused for good: never retried
    assert await _outbox(env) == []
    async with env.broker.app[BROKER].sessions() as session:
        actions = (
            await session.exec(select(AuditRow.action).where(col(AuditRow.subject_id) == subject))
        ).all()
    assert "push.dead_letter" in actions


async def test_deleting_the_subject_deletes_its_dead_letters(
    wired: tuple[Env, Platform],
) -> None:
    env, platform = wired
    platform.status, platform.body = 410, {"error": "blocked_by_user", "detail": "x"}
    subject = await env.subject()
    await env.link(subject)
    assert [d["subject_id"] for d in await _until_dead(env)] == [subject]
    resp = await env.broker.delete(f"/v1/subjects/{subject}", headers=env.auth())
    assert resp.status < 300
    assert await _listed(env) == []


async def test_a_delivery_failing_every_time_is_given_up_after_the_bounded_attempts(
    wired: tuple[Env, Platform],
) -> None:
    env, platform = wired
    env.broker.app[BROKER].settings.outbox_max_attempts = 3
    platform.status, platform.body = 503, {"error": "chat_unavailable"}
    await env.link(await env.subject())
    letters = await _until_dead(env, advance=timedelta(minutes=10))
    assert [(d["reason"], d["attempts"]) for d in letters] == [("too_many_attempts", 3)]
    assert platform.calls == 3
    assert await _outbox(env) == []
    assert await deadletter.count(env.broker.app[BROKER].sessions) == 1


async def test_a_410_without_a_plain_code_is_still_final(wired: tuple[Env, Platform]) -> None:
    env, platform = wired
    platform.status, platform.body = 410, {"error": "<script>"}
    await env.link(await env.subject())
    assert [d["reason"] for d in await _until_dead(env)] == ["gone"]


async def test_dead_letters_need_the_admin_token(wired: tuple[Env, Platform]) -> None:
    env, _ = wired
    resp = await env.broker.get("/admin/v1/outbox/dead-letters")
    assert resp.status == 401
    resp = await env.broker.get(
        "/admin/v1/outbox/dead-letters", headers={"Authorization": f"Bearer {env.credential}"}
    )
    assert resp.status == 401
    resp = await env.broker.get(
        "/admin/v1/outbox/dead-letters?limit=x", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert resp.status == 400


async def test_operators_list_dead_letters_with_the_cli(
    wired: tuple[Env, Platform],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env, platform = wired
    platform.status, platform.body = 410, {"error": "blocked_by_user"}
    await env.link(await env.subject())
    [letter] = await _until_dead(env)
    monkeypatch.setenv("CONSENT_DATABASE_URL", env.broker_settings.database_url)
    assert await asyncio.to_thread(chatbank_main, ["outbox", "dead-letters"]) == 0
    out = capsys.readouterr().out
    assert "1 dead letter(s)" in out
    assert letter["message_id"] in out and "platform:blocked_by_user" in out


async def test_an_event_id_another_bank_used_is_not_a_duplicate(
    wired: tuple[Env, Platform],
) -> None:
    """jti values are unique per issuer only: a Wisła event must not hide a Northwind alert."""
    env, _ = wired
    broker = env.broker.app[BROKER]
    subject = await env.subject()
    consent_id = await env.link(subject, scopes=["balances", "fraud_alerts", "card_controls"])
    async with broker.sessions() as session:
        row = await session.get(ConsentRow, consent_id)
        assert row is not None
    account = env.bank_app[BANKS]["northwind"].customers_by_username["demo1"].account_ids[0]
    event = {"consent_id": row.bank_consent_id, "alert_id": "fa-77", "account_id": account}
    claims = {"jti": "shared-jti", "events": {FRAUD_ALERT: event}}
    assert await ingest(broker, "wisla", claims) == "ignored"  # no Wisła consent: nothing to do
    assert await ingest(broker, "northwind", claims) == "processed"
    assert await ingest(broker, "northwind", claims) == "duplicate"
    async with broker.sessions() as session:
        key = {"consent_id": consent_id, "alert_id": "fa-77"}  # one alert row per consent
        assert await session.get(AlertRow, key) is not None


async def test_a_failing_message_holds_back_the_later_ones_of_its_subject(
    wired: tuple[Env, Platform],
) -> None:
    """The relay posts subjects side by side but one subject's messages in order: while the
    first keeps failing, the ones written after it are not sent ahead of it."""
    env, platform = wired
    broker = env.broker.app[BROKER]
    platform.status, platform.body = 503, {"error": "chat_unavailable"}
    subject = await env.subject()
    client_id = env.credential.split(".")[0]
    async with broker.sessions() as session:
        ids = [
            enqueue(
                session,
                client_id=client_id,
                subject_id=subject,
                kind="consent_expiring",
                data={"n": n},
                now=env.clock.now + timedelta(microseconds=n),
            )
            for n in range(3)
        ]
        await session.commit()
    relay = env.broker.app[RELAY]
    for _ in range(3):
        await relay.run_once()
        env.clock.now += timedelta(minutes=10)
    assert platform.ids and set(platform.ids) == {ids[0]}
    async with broker.sessions() as session:
        later = [await session.get(OutboxRow, i) for i in ids[1:]]
    assert [r.attempts for r in later if r is not None] == [0, 0]


async def test_the_outbox_depth_counts_what_waits_and_its_age(
    wired: tuple[Env, Platform],
) -> None:
    env, platform = wired
    broker = env.broker.app[BROKER]
    assert await depth(broker.sessions, env.clock.now) == Depth(0, 0.0)
    platform.status, platform.body = 503, {"error": "chat_unavailable"}
    await env.link(await env.subject())  # its notice cannot be delivered
    later = env.clock.now + timedelta(seconds=90)
    assert await depth(broker.sessions, later) == Depth(1, 90.0)
