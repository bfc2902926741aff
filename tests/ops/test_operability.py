"""Every service answers /healthz, /readyz (503 naming what is not ready) and /metrics; metrics
are labelled by route pattern and hold no per-user value; a client that goes away is one log
line, never a traceback."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from bank_mock.app import create_app as create_bank
from bank_mock.settings import BankSettings
from consent.app import create_app as create_broker
from localchat.app import create_app as create_localchat
from localchat.settings import Settings as LocalchatSettings
from ops.metrics import metrics_middleware
from tests.bot.system import ALICE, System
from tests.bot.test_alerts_and_privacy import inject_fraud
from tests.bot.test_conversations import link_bank
from tests.consent.broker_env import free_port


def requests(service: str, route: str, method: str, status: str) -> float:
    labels = {"service": service, "route": route, "method": method, "status": status}
    return REGISTRY.get_sample_value("chatbank_http_requests_total", labels) or 0.0


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return resp.status, await resp.json()


async def test_every_service_is_alive_ready_and_measured(system: System) -> None:
    bank, broker = system.env.bank, system.env.broker
    bot = system.runtime.base_url()
    chat = str(system.localchat.make_url("")).rstrip("/")
    urls = {
        "bank_mock": str(bank.make_url("")).rstrip("/"),
        "consent": str(broker.make_url("")).rstrip("/"),
        "bot": bot,
        "localchat": chat,
    }
    expected_checks = {
        "bank_mock": {"banks", "signing_keys"},
        "consent": {"database", "keys", "bank_directory"},
        "bot": {"database", "broker"},
        "localchat": set(),
    }
    for service, url in urls.items():
        status, body = await get_json(f"{url}/healthz")
        assert (status, body["status"], body["service"]) == (200, "ok", service)
        status, body = await get_json(f"{url}/readyz")
        assert status == 200 and body["status"] == "ready", body
        assert set(body["checks"]) == expected_checks[service]
        async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain")
            text = await resp.text()
        assert f'service="{service}"' in text and 'route="/healthz"' in text


async def test_readiness_names_the_check_that_fails(system: System) -> None:
    await system.env.bank.close()  # the bank directory is gone
    status, body = await get_json(str(system.env.broker.make_url("/readyz")))
    assert status == 503 and body["failing"] == ["bank_directory"], body
    assert body["checks"]["database"] == "ok"
    await system.env.broker.close()  # and now the broker too
    status, body = await get_json(f"{system.runtime.base_url()}/readyz")
    assert status == 503 and body["failing"] == ["broker"], body


async def test_metrics_count_routes_by_pattern_and_hold_no_per_user_value(system: System) -> None:
    await link_bank(system, ALICE)
    reply = await system.say(ALICE, "/balance", lambda t: "balances" in t.lower())
    await inject_fraud(system, merchant="Metrics Probe Shop")
    await system.expect(ALICE, lambda t: "Metrics Probe Shop" in t)
    user = await _subject(system)
    route = "/v1/subjects/{subject_id}/balances"
    assert requests("consent", route, "GET", "200") >= 1
    broker_metrics = await _scrape(str(system.env.broker.make_url("/metrics")))
    bot_metrics = await _scrape(f"{system.runtime.base_url()}/metrics")
    assert 'chatbank_bank_calls_total{bank="northwind",outcome="ok"}' in broker_metrics
    assert 'chatbank_bank_breaker_state{bank="northwind"} 0.0' in broker_metrics
    assert re.search(r"^chatbank_outbox_depth \d", broker_metrics, re.MULTILINE)
    assert re.search(r"^chatbank_outbox_oldest_age_seconds \d", broker_metrics, re.MULTILINE)
    assert "chatbank_delivery_dead_letters_total" in broker_metrics
    assert "chatbank_outbox_delivered_total" in broker_metrics
    # the alert was claimed by the relay (a claim that found it)
    assert re.search(r'^chatbank_outbox_claims_total\{found="rows"\} [1-9]', broker_metrics, re.M)
    assert re.search(r'chatbank_bot_messages_shown_total\{kind="fraud_alert"\} [1-9]', bot_metrics)
    amounts = set(re.findall(r"\d+[.,]\d\d", reply["text"]))
    assert amounts  # the balances the user saw
    for text in (broker_metrics, bot_metrics):
        assert user not in text
        assert "Metrics Probe Shop" not in text
        labels = " ".join(re.findall(r"\{[^}]*\}", text))
        assert not any(amount in labels for amount in amounts)
        assert "2750" not in labels


async def _subject(system: System) -> str:
    from bot.store import repo

    services = system.runtime.application.bot_data["chatbank.services"]  # type: ignore[union-attr]
    user = await repo.get_user(services.sessions, ALICE)
    assert user is not None and user.subject_id
    return str(user.subject_id)


async def _scrape(url: str) -> str:
    async with aiohttp.ClientSession() as http, http.get(url) as resp:
        return await resp.text()


async def test_a_client_that_went_away_is_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def vanishing(request: web.Request) -> web.Response:
        raise aiohttp.ClientConnectionResetError("Cannot write to closing transport")

    app = web.Application(middlewares=[metrics_middleware("probe")])
    app.router.add_get("/gone/{thing_id}", vanishing)
    before = requests("probe", "/gone/{thing_id}", "GET", "499")
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.DEBUG):
            await client.get("/gone/42")
            missing = await client.get("/nowhere")
    assert missing.status == 404
    assert requests("probe", "/gone/{thing_id}", "GET", "499") == before + 1
    assert requests("probe", "unmatched", "GET", "404") >= 1
    assert not [r for r in caplog.records if r.exc_info]
    lines = [r.getMessage() for r in caplog.records if r.name == "ops.metrics"]
    assert lines == [
        "probe: the client went away during GET /gone/{thing_id} (ClientConnectionResetError)"
    ]


async def test_a_bank_event_cut_off_mid_body_logs_one_line_at_the_broker(
    system: System, caplog: pytest.LogCaptureFixture
) -> None:
    """A sender that dies half-way through its body: the broker reads ``Connection lost``. (The
    broker runs as ``python -m consent`` does: aiohttp's test server would cancel the handler
    instead.)"""
    warm_up = await system.env.broker.post(  # the broker registers at the bank on first sight
        "/events/northwind", data=b"not-a-jwt", headers={"Content-Type": "application/jwt"}
    )
    assert 400 <= warm_up.status < 500
    runner = web.AppRunner(create_broker(system.env.broker_settings, clock=system.env.clock))
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        with caplog.at_level(logging.INFO):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"POST /events/northwind HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/jwt\r\nContent-Length: 1000\r\n\r\neyJhbGciOi"
            )
            await writer.drain()
            await asyncio.sleep(0.3)  # the broker is reading the body now
            writer.close()
            for _ in range(100):
                if any(r.name == "ops.metrics" for r in caplog.records):
                    break
                await asyncio.sleep(0.02)
    finally:
        await runner.cleanup()
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
    gone = [r.getMessage() for r in caplog.records if r.name == "ops.metrics"]
    assert gone == [
        "consent: the client went away during POST /events/{bank_id} (ConnectionResetError)"
    ]


@pytest.mark.parametrize("service", ["bank_mock", "localchat"])
async def test_a_4xx_is_no_traceback(service: str, caplog: pytest.LogCaptureFixture) -> None:
    app = (
        create_bank(BankSettings(customers_per_bank=1))
        if service == "bank_mock"
        else create_localchat(LocalchatSettings())
    )
    async with TestClient(TestServer(app)) as client:
        with caplog.at_level(logging.DEBUG):
            assert (await client.get("/no/such/page")).status == 404
            assert (await client.post("/metrics")).status == 405
    assert not [r for r in caplog.records if r.exc_info]
