"""Signed events: SETs verify against the bank's JWKS and reach the client with retries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet

from bank_mock.app import create_app
from bank_mock.clock import FrozenClock
from bank_mock.fraud.publisher import CONSENT_REVOKED, FRAUD_ALERT, PUBLISHER, RESOURCE_UPDATE
from bank_mock.settings import BankSettings
from tests.bank_mock import flow

Client = TestClient[Any, Any]
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class Receiver:
    """A client's event endpoint: records bodies, can fail the first N attempts."""

    def __init__(self, fail_first: int = 0, status: int = 503) -> None:
        self.fail_first = fail_first
        self.status = status
        self.bodies: list[str] = []
        self.attempts = 0
        self.got = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.fail_first:
            return web.Response(status=self.status)
        assert request.content_type == "application/jwt"
        self.bodies.append(await request.text())
        self.got.set()
        return web.Response(status=202)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/events", self.handle)
        return app


async def _setup(
    aiohttp_server: ServerFactory, receiver: Receiver, clock: FrozenClock, **settings: Any
) -> tuple[Client, str, TestServer]:
    server = await aiohttp_server(receiver.app())
    bank_settings = BankSettings(customers_per_bank=2, event_retry_base_s=0.01, **settings)
    client = TestClient(TestServer(create_app(bank_settings, clock=clock)))
    await client.start_server()
    return client, str(server.make_url("/events")), server


async def _keys(client: Client) -> KeySet:
    resp = await client.get("/banks/northwind/.well-known/jwks.json")
    return KeySet.import_key_set(await resp.json())


async def test_authorising_and_revoking_push_signed_sets_that_verify_against_the_jwks(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    receiver = Receiver()
    client, url, _ = await _setup(aiohttp_server, receiver, clock)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        linked = await flow.link(client, reg)
        await client.post(f"/sandbox/banks/northwind/consents/{linked.consent_id}/revoke")
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        keys = await _keys(client)
        tokens = [jwt.decode(body, keys, algorithms=["ES256"]) for body in receiver.bodies]
        kinds = [next(iter(t.claims["events"])) for t in tokens]
        assert kinds == [RESOURCE_UPDATE, CONSENT_REVOKED]
        for t in tokens:
            assert t.header["typ"] == "secevent+jwt"
            assert t.claims["aud"] == reg.client_id
            assert t.claims["iss"].endswith("/banks/northwind")
            assert t.claims["sub"].endswith(linked.consent_id)
            assert t.claims["jti"]
        assert len({t.claims["jti"] for t in tokens}) == 2
    finally:
        await client.close()


async def test_a_tampered_or_foreign_set_does_not_verify(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    receiver = Receiver()
    client, url, _ = await _setup(aiohttp_server, receiver, clock)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        await flow.link(client, reg)
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        keys = await _keys(client)
        header, payload, signature = receiver.bodies[0].split(".")
        forged_payload = payload[:-4] + ("AAAA" if payload[-4:] != "AAAA" else "BBBB")
        with pytest.raises(BadSignatureError):
            jwt.decode(f"{header}.{forged_payload}.{signature}", keys, algorithms=["ES256"])
        stranger = ECKey.generate_key("P-256", private=True)
        with pytest.raises(BadSignatureError):
            jwt.decode(receiver.bodies[0], stranger, algorithms=["ES256"])
    finally:
        await client.close()


async def test_delivery_retries_until_the_receiver_accepts(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    receiver = Receiver(fail_first=2)
    client, url, _ = await _setup(aiohttp_server, receiver, clock)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        await flow.link(client, reg)
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        assert receiver.attempts == 3
        assert len(receiver.bodies) == 1
        assert client.app[PUBLISHER].stats.delivered == 1
    finally:
        await client.close()


async def test_delivery_gives_up_after_the_retry_limit(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    receiver = Receiver(fail_first=100)
    client, url, _ = await _setup(aiohttp_server, receiver, clock, event_retry_max=3)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        await flow.link(client, reg)
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        assert receiver.attempts == 4
        assert client.app[PUBLISHER].stats.failed == 1
    finally:
        await client.close()


async def test_a_client_error_is_not_retried(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    receiver = Receiver(fail_first=100, status=400)
    client, url, _ = await _setup(aiohttp_server, receiver, clock)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        await flow.link(client, reg)
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        assert receiver.attempts == 1
    finally:
        await client.close()


async def test_an_injected_suspicious_payment_raises_a_fraud_alert_event(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    receiver = Receiver()
    client, url, _ = await _setup(aiohttp_server, receiver, clock)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        linked = await flow.link(client, reg)
        resp = await client.post(
            "/sandbox/banks/northwind/transactions",
            json={
                "account_id": "noc000001a0",
                "amount": "2450.00",
                "currency": "EUR",
                "merchant_name": "Luxe Watches",
                "country": "FR",
            },
        )
        assert resp.status == 201
        injected = await resp.json()
        assert injected["alerts"]
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        keys = await _keys(client)
        alerts = [
            jwt.decode(b, keys, algorithms=["ES256"]).claims["events"][FRAUD_ALERT]
            for b in receiver.bodies
            if FRAUD_ALERT in jwt.decode(b, keys, algorithms=["ES256"]).claims["events"]
        ]
        assert len(alerts) == 1
        alert = alerts[0]
        assert alert["alert_id"] == injected["alerts"][0]
        assert alert["consent_id"] == linked.consent_id
        assert alert["reason"] in ("unusual_amount", "unusual_country")
        assert alert["masked_pan"].startswith("************")
        assert alert["transaction"]["Currency"] == "GBP"
    finally:
        await client.close()


async def test_only_consents_that_read_transactions_hear_that_they_changed(
    aiohttp_server: ServerFactory, clock: FrozenClock
) -> None:
    """A payment tells a client with a transactions permission (resource-update) but not one
    that may only see the account (fraud alerts): it could not read what changed, and that a
    payment happened is itself transaction data."""
    receiver = Receiver()
    client, url, _ = await _setup(aiohttp_server, receiver, clock)
    try:
        reg = await flow.register(client, "northwind", events_url=url)
        reader = await flow.link(client, reg)  # every read permission
        alerts_only = await flow.link(client, reg, permissions=["ReadAccountsBasic"])
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        receiver.bodies.clear()
        resp = await client.post(
            "/sandbox/banks/northwind/transactions",
            json={
                "account_id": "noc000001a0",
                "amount": "2450.00",
                "currency": "EUR",
                "merchant_name": "Luxe Watches",
                "country": "FR",
            },
        )
        assert resp.status == 201
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        keys = await _keys(client)
        claims = [jwt.decode(b, keys, algorithms=["ES256"]).claims for b in receiver.bodies]
        told = {(next(iter(c["events"])), c["sub"].rsplit("/", 1)[1]) for c in claims}
        assert (RESOURCE_UPDATE, reader.consent_id) in told
        assert (RESOURCE_UPDATE, alerts_only.consent_id) not in told
        # the fraud alert still reaches both
        assert (FRAUD_ALERT, reader.consent_id) in told
        assert (FRAUD_ALERT, alerts_only.consent_id) in told
    finally:
        await client.close()


class SlowReceiver(Receiver):
    """Holds each delivery until released; counts how many are on the wire at once."""

    def __init__(self) -> None:
        super().__init__()
        self.on_wire = 0
        self.most_on_wire = 0
        self.release = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.on_wire += 1
        self.most_on_wire = max(self.most_on_wire, self.on_wire)
        try:
            await self.release.wait()
            return await super().handle(request)
        finally:
            self.on_wire -= 1


@pytest.mark.parametrize("in_flight", [1, 3])
async def test_at_most_event_in_flight_deliveries_are_on_the_wire_to_one_receiver(
    aiohttp_server: ServerFactory, clock: FrozenClock, in_flight: int
) -> None:
    """A burst of fraud alerts to a receiver that holds every request: ``event_in_flight`` of
    them reach it, the rest wait their turn (not timed out, not retried), and all arrive."""
    receiver = SlowReceiver()
    client, url, _ = await _setup(aiohttp_server, receiver, clock, event_in_flight=in_flight)
    try:
        receiver.release.set()  # the consent's own events pass straight through
        reg = await flow.register(client, "northwind", events_url=url)
        await flow.link(client, reg)
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        receiver.release.clear()
        receiver.most_on_wire = 0
        burst = 8
        payments = [
            {
                "account_id": "noc000001a0",
                "amount": "2450.00",
                "currency": "EUR",
                "merchant_name": f"Luxe Watches {i}",
                "country": "FR",
            }
            for i in range(burst)
        ]
        resp = await client.post(
            "/sandbox/banks/northwind/transactions/batch", json={"transactions": payments}
        )
        assert resp.status == 201
        before = len(receiver.bodies)
        for _ in range(100):
            if receiver.on_wire == in_flight:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # a publisher that ignored the bound would send more by now
        assert receiver.on_wire == in_flight
        receiver.release.set()
        await asyncio.wait_for(client.app[PUBLISHER].drain(), 5)
        assert receiver.most_on_wire == in_flight
        assert len(receiver.bodies) - before >= burst  # every alert arrived, none given up
        assert client.app[PUBLISHER].stats.failed == 0
    finally:
        await client.close()
