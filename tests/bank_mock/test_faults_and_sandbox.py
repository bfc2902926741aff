"""Fault injection on the API paths, and the sandbox endpoints and their guard."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bank_mock.app import create_app
from bank_mock.auth.pkce import challenge_of
from bank_mock.settings import BankSettings, FaultSettings
from tests.bank_mock import flow

Client = TestClient[Any, Any]
AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]


async def test_an_error_rate_of_one_fails_every_api_call_but_not_the_pages(
    aiohttp_client: AiohttpClient,
) -> None:
    settings = BankSettings(
        customers_per_bank=2, faults={"northwind": FaultSettings(error_rate=1.0)}
    )
    client = await aiohttp_client(create_app(settings))
    reg = await flow.register(client, "northwind")
    token = await client.post(
        "/banks/northwind/token", data={"grant_type": "client_credentials"}, headers=reg.basic()
    )
    assert token.status == 500
    body = await token.json()
    assert body["Errors"][0]["ErrorCode"] == "UK.OBIE.UnexpectedError"
    other_bank = await flow.register(client, "libertas")
    assert await flow.cc_token(client, other_bank)  # other banks are unaffected
    page = await client.get("/banks/northwind/dashboard")
    assert page.status == 200


async def test_latency_and_timeouts_can_be_set_at_run_time(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    put = await bank_client.put("/sandbox/banks/northwind/faults", json={"latency_ms": 150})
    assert put.status == 200
    start = time.monotonic()
    await flow.cc_token(bank_client, reg)
    assert time.monotonic() - start >= 0.15
    await bank_client.put(
        "/sandbox/banks/northwind/faults", json={"timeout_rate": 1.0, "timeout_s": 0.05}
    )
    resp = await bank_client.post(
        "/banks/northwind/token", data={"grant_type": "client_credentials"}, headers=reg.basic()
    )
    assert resp.status == 504
    bad = await bank_client.put("/sandbox/banks/northwind/faults", json={"error_rate": 2})
    assert bad.status == 400


async def test_sandbox_endpoints_do_not_exist_when_the_sandbox_is_off(
    aiohttp_client: AiohttpClient,
) -> None:
    client = await aiohttp_client(create_app(BankSettings(customers_per_bank=1, sandbox=False)))
    for path in (
        "/sandbox/banks/northwind/customers",
        "/sandbox/banks/northwind/raw/accounts/noc000001a0",
    ):
        resp = await client.get(path)
        assert resp.status == 404
    resp = await client.post("/sandbox/banks/northwind/transactions", json={})
    assert resp.status == 404


async def test_the_sandbox_lists_test_customers_and_their_raw_records(bank_client: Client) -> None:
    customers = (await (await bank_client.get("/sandbox/banks/wisla/customers")).json())[
        "customers"
    ]
    assert customers[0]["username"] == "demo1"
    assert customers[0]["password"] == "pass-1"
    account_id = customers[0]["accounts"][0]["account_id"]
    raw = await (await bank_client.get(f"/sandbox/banks/wisla/raw/accounts/{account_id}")).json()
    assert raw["account"]["iban"].startswith("PL")
    assert raw["cards"][0]["pan"]
    first = raw["transactions"][0]
    for field in ("raw_descriptor", "bank_reference", "balance_after_minor", "risk_score"):
        assert field in first


async def test_sandbox_approval_gives_a_code_that_still_needs_pkce(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "libertas")
    consent_id = await flow.create_consent(bank_client, reg)
    verifier = "v" * 50
    resp = await bank_client.post(
        f"/sandbox/banks/libertas/consents/{consent_id}/approve",
        json={
            "username": "demo2",
            "redirect_uri": flow.REDIRECT,
            "code_challenge": challenge_of(verifier),
        },
    )
    assert resp.status == 200
    code = (await resp.json())["code"]
    wrong = await bank_client.post(
        "/banks/libertas/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.REDIRECT,
            "code_verifier": "w" * 50,
        },
        headers=reg.basic(),
    )
    assert wrong.status == 400


async def test_injected_transactions_are_validated(bank_client: Client) -> None:
    for body in (
        {"account_id": "noc000001a0", "amount": "-5", "merchant_name": "x"},
        {"account_id": "noc000001a0", "amount": "1.234", "merchant_name": "x"},
        {"account_id": "noc000001a0", "amount": "NaN", "merchant_name": "x"},
        {
            "account_id": "noc000001a0",
            "amount": "10",
            "merchant_name": "x",
            "card_id": "someone-else",
        },
        {"account_id": "noc000001a0", "amount": "10", "merchant_name": "x", "currency": "XYZ"},
        {"account_id": "noc000001a0", "amount": "10"},
    ):
        resp = await bank_client.post("/sandbox/banks/northwind/transactions", json=body)
        assert resp.status == 400, body
    missing = await bank_client.post(
        "/sandbox/banks/northwind/transactions",
        json={"account_id": "nope", "amount": "1", "merchant_name": "x"},
    )
    assert missing.status == 404


async def test_an_injected_ordinary_payment_is_booked_without_an_alert(bank_client: Client) -> None:
    resp = await bank_client.post(
        "/sandbox/banks/northwind/transactions",
        json={"account_id": "noc000001a0", "amount": "12.50", "merchant_name": "Pret A Manger"},
    )
    body = await resp.json()
    assert resp.status == 201
    assert body["alerts"] == []
    raw = await (await bank_client.get("/sandbox/banks/northwind/raw/accounts/noc000001a0")).json()
    assert any(t["transaction_id"] == body["transaction_id"] for t in raw["transactions"])
