"""Bank events reach the platform: verified SETs, minimized alerts, signed webhooks, replays."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from http_message_signatures import (
    HTTPMessageVerifier,
    InvalidSignature,
    MappingKeyResolver,
    algorithms,
)
from joserfc.jwk import ECKey

from bank_mock.fraud.publisher import FRAUD_ALERT, PUBLISHER
from bank_mock.fraud.signing import SIGNERS, Signer
from bank_mock.keys import BANKS
from consent.api.keys import BROKER
from consent.domain.views import FRAUD_ALERT_FIELDS
from tests.consent.broker_env import ADMIN, Env, start, stop

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@dataclass
class Incoming:
    method: str
    url: str
    headers: dict[str, str]


@dataclass
class Bot:
    """Stands in for the bot's webhook: records every delivery."""

    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        self.arrived.set()
        return web.Response(status=204)

    async def next_kind(self, kind: str) -> dict[str, Any]:
        async with asyncio.timeout(10):
            while True:
                for _, body in self.received:
                    msg = json.loads(body)
                    if msg["kind"] == kind:
                        return dict(msg)
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def wired(
    tmp_path: Path, database_url: str, aiohttp_server: ServerFactory
) -> AsyncIterator[tuple[Env, Bot, str]]:
    env = await start(tmp_path, database_url)
    bot = Bot()
    app = web.Application()
    app.router.add_post("/webhook", bot.handle)
    server = await aiohttp_server(app)
    bot.url = str(server.make_url("/webhook"))
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot", "webhook_url": bot.url},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    body = await resp.json()
    env.credential = body["credential"]
    yield env, bot, body["webhook_secret"]
    await stop(env)


def verify_webhook(
    headers: dict[str, str], body: bytes, url: str, client_id: str, secret: str
) -> None:
    verifier = HTTPMessageVerifier(
        signature_algorithm=algorithms.HMAC_SHA256,
        key_resolver=MappingKeyResolver(public_keys={client_id: secret.encode()}, private_keys={}),
    )
    # the test clock is frozen days before the real one, so the age check is the receiver's job
    verifier.verify(
        Incoming("POST", url, headers), expect_tag="chatbank-webhook", body=body, max_age=None
    )


async def test_a_fraud_alert_reaches_the_platform_minimized_and_signed(
    wired: tuple[Env, Bot, str],
) -> None:
    env, bot, secret = wired
    subject = await env.subject()
    await env.link(subject, scopes=["balances", "fraud_alerts", "card_controls"])
    account = env.bank_app[BANKS]["northwind"].customers_by_username["demo1"].account_ids[0]
    inject = await env.bank.post(
        "/sandbox/banks/northwind/transactions",
        json={
            "account_id": account,
            "amount": "2750.00",
            "currency": "EUR",
            "merchant_name": "Luxe Watches",
            "country": "FR",
        },
    )
    assert (await inject.json())["alerts"]
    message = await bot.next_kind("fraud_alert")
    alert = message["data"]["alert"]
    assert message["subject_id"] == subject
    assert set(alert) <= FRAUD_ALERT_FIELDS
    assert alert["actions"] == ["it_was_me", "freeze_card"]
    assert alert["merchant"] == "Luxe Watches"
    assert len(alert["card_last4"]) == 4
    raw = json.dumps(message)
    for secret_value in ("risk_score", "rule_ids", "latitude", "device_id", "AMT-01", account):
        assert secret_value not in raw
    headers, body = next((h, b) for h, b in bot.received if json.loads(b)["kind"] == "fraud_alert")
    verify_webhook(headers, body, bot.url, env.credential.split(".")[0], secret)
    with pytest.raises(InvalidSignature):
        verify_webhook(
            headers, body.replace(b"Luxe", b"Fake"), bot.url, env.credential.split(".")[0], secret
        )


async def test_a_revocation_at_the_bank_revokes_shreds_and_tells_the_platform(
    wired: tuple[Env, Bot, str],
) -> None:
    env, bot, _ = wired
    subject = await env.subject()
    consent_id = await env.link(subject)
    bank_consent = next(iter(env.bank_app[BANKS]["northwind"].consents))
    resp = await env.bank.post(f"/sandbox/banks/northwind/consents/{bank_consent}/revoke")
    assert resp.status == 200
    notice = await bot.next_kind("consent_revoked")
    assert notice["data"] == {"consent_id": consent_id, "bank_id": "northwind", "by": "bank"}
    listed = await (
        await env.broker.get(f"/v1/subjects/{subject}/consents", headers=env.auth())
    ).json()
    assert listed["consents"][0]["status"] == "revoked"


async def _post_set(env: Env, token: str) -> tuple[int, dict[str, Any]]:
    resp = await env.broker.post(
        "/events/northwind", data=token, headers={"Content-Type": "application/jwt"}
    )
    return resp.status, await resp.json()


async def _bank_set(env: Env, signer: Signer, now: datetime) -> str:
    broker = env.broker.app[BROKER]
    cred = await broker.credentials("northwind")
    return signer.make_set(
        audience=cred.client_id, subject="x", events={FRAUD_ALERT: {"alert_id": "fa-x"}}, now=now
    )


async def test_replayed_and_forged_events_are_refused(wired: tuple[Env, Bot, str]) -> None:
    env, _, _ = wired
    subject = await env.subject()
    await env.link(subject)
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    signer = env.bank_app[SIGNERS]["northwind"]
    token = await _bank_set(env, signer, env.clock.now)
    first = await _post_set(env, token)
    replay = await _post_set(env, token)
    assert first == (202, {"status": "ignored"})  # a valid SET about an unknown consent
    assert replay == (202, {"status": "duplicate"})
    forger = Signer(signer.issuer, ECKey.generate_key("P-256", private=True))
    forged = await _post_set(env, await _bank_set(env, forger, env.clock.now))
    assert forged[0] == 401
    assert forged[1]["error"] == "invalid_event"
    stale = await _post_set(env, await _bank_set(env, signer, env.clock.now - timedelta(hours=1)))
    assert stale[0] == 401
    garbage = await _post_set(env, "not.a.jwt")
    assert garbage[0] == 401
    wrong_type = await env.broker.post(
        "/events/northwind", data=token, headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415


async def test_the_remembered_event_audience_follows_a_healed_registration(
    wired: tuple[Env, Bot, str],
) -> None:
    """The broker remembers its client id at the bank for verifying events; one that another
    broker process replaced (a healed registration) is read again, and a token for anyone else
    is still refused."""
    env, _, _ = wired
    subject = await env.subject()
    await env.link(subject)
    await asyncio.wait_for(env.bank_app[PUBLISHER].drain(), 10)
    broker = env.broker.app[BROKER]
    signer = env.bank_app[SIGNERS]["northwind"]
    assert broker.event_audiences["northwind"] == (await broker.credentials("northwind")).client_id
    broker.event_audiences["northwind"] = "a-client-id-since-replaced"
    assert await _post_set(env, await _bank_set(env, signer, env.clock.now)) == (
        202,
        {"status": "ignored"},
    )
    assert broker.event_audiences["northwind"] == (await broker.credentials("northwind")).client_id
    other = signer.make_set(
        audience="someone-else",
        subject="x",
        events={FRAUD_ALERT: {"alert_id": "fa-y"}},
        now=env.clock.now,
    )
    refused = await _post_set(env, other)
    assert refused[0] == 401
    assert refused[1]["error"] == "invalid_event"


async def test_answering_an_alert_freezes_the_card_once_and_the_platform_hears_of_the_link(
    wired: tuple[Env, Bot, str],
) -> None:
    env, bot, _ = wired
    subject = await env.subject()
    consent_id = await env.link(subject, scopes=["balances", "fraud_alerts", "card_controls"])
    authorized = await bot.next_kind("consent_authorized")
    assert authorized["data"]["consent_id"] == consent_id
    bank = env.bank_app[BANKS]["northwind"]
    account = bank.customers_by_username["demo1"].account_ids[0]
    await env.bank.post(
        "/sandbox/banks/northwind/transactions",
        json={
            "account_id": account,
            "amount": "3100.00",
            "merchant_name": "Gadget Hub",
            "country": "BR",
        },
    )
    alert = (await bot.next_kind("fraud_alert"))["data"]["alert"]
    # the platform holds an opaque handle, never the bank's own alert id
    (bank_alert_id,) = bank.alerts
    assert alert["alert_id"].startswith("alt_")
    assert all(bank_alert_id.encode() not in body for _, body in bot.received)
    by_bank_id = await env.broker.post(
        f"/v1/subjects/{subject}/alerts/{bank_alert_id}/answer",
        json={"answer": "freeze_card"},
        headers=env.auth(),
    )
    assert by_bank_id.status == 404
    url = f"/v1/subjects/{subject}/alerts/{alert['alert_id']}/answer"
    for _ in range(2):  # pressing twice is fine
        resp = await env.broker.post(url, json={"answer": "freeze_card"}, headers=env.auth())
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["card_status"] == "Frozen"
        assert (await resp.json())["alert_id"] == alert["alert_id"]
    assert bank.cards[bank.accounts[account].card_ids[0]].status == "Frozen"
    late = await env.broker.post(url, json={"answer": "it_was_me"}, headers=env.auth())
    assert late.status == 200  # a late "it was me" converges on the frozen state
    stands = await late.json()
    assert (stands["answer"], stands["card_status"]) == ("freeze_card", "Frozen")
    assert stands["alert"]["actions"] == ["unfreeze_card"]
    assert bank.cards[bank.accounts[account].card_ids[0]].status == "Frozen"
    unknown = await env.broker.post(
        f"/v1/subjects/{subject}/alerts/fa-nope/answer",
        json={"answer": "it_was_me"},
        headers=env.auth(),
    )
    assert unknown.status == 404
