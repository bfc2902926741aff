"""``chatbank demo pay``: realistic card payments booked at a running bank, said plainly; and
``chatbank up --demo-payments`` turns on the bank's payment timer."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from bank_mock.app import create_app as create_bank
from bank_mock.keys import BANKS
from bank_mock.settings import BankSettings
from chatbank.cli import build_parser, main
from chatbank.demo import DemoError, book_payments
from tests.consent.broker_env import free_port


async def test_demo_pay_books_realistic_card_payments(aiohttp_server: Any) -> None:
    app = create_bank(BankSettings(customers_per_bank=2))
    server = await aiohttp_server(app)
    url = str(server.make_url("")).rstrip("/")
    answer = await book_payments(url, "northwind", "demo1", count=3, pending=True)
    assert len(answer["payments"]) == 3 and answer["notified_apps"] == []
    state = app[BANKS]["northwind"]
    for p in answer["payments"]:
        tx = state.find_added(p["transaction_id"])
        assert tx is not None and tx.status == "Pending" and tx.card_id is not None
        assert tx.merchant_name in {
            m.name for m in __import__("bank_mock.catalog").catalog.LOCAL_MERCHANTS["GB"]
        }
        assert p["Currency"] == "GBP" and p["status"] == "Pending"
    with pytest.raises(DemoError, match="has no customer"):
        await book_payments(url, "northwind", "nobody")
    with pytest.raises(DemoError, match="no bank"):
        await book_payments(url, "atlantis", "demo1")


async def test_the_bank_refuses_bad_payment_orders_with_typed_errors(aiohttp_server: Any) -> None:
    server = await aiohttp_server(create_bank(BankSettings(customers_per_bank=2)))
    client = server.make_url("/sandbox/banks/northwind/payments")
    import aiohttp

    async with aiohttp.ClientSession() as http:
        for body, status in (
            ({}, 400),
            ({"username": "demo1", "amount": "-3"}, 400),
            ({"username": "demo1", "count": 51}, 400),
            ({"account_id": "nope"}, 404),
        ):
            async with http.post(client, json=body) as resp:
                assert resp.status == status, body
                assert "Errors" in await resp.json()
        async with http.post(client, json={"username": "demo1"}) as resp:
            booked = (await resp.json())["payments"][0]
        settle = server.make_url(
            f"/sandbox/banks/northwind/payments/{booked['transaction_id']}/book"
        )
        async with http.post(settle) as resp:
            assert resp.status == 409  # booked already: not pending
        async with http.post(
            server.make_url("/sandbox/banks/northwind/payments/unknown/reverse")
        ) as resp:
            assert resp.status == 404


def test_demo_pay_without_a_running_bank_says_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    code = main(["demo", "pay", "--bank-url", f"http://127.0.0.1:{port}"])
    assert code == 2
    assert "chatbank up" in capsys.readouterr().err


def test_up_takes_a_demo_payment_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    parser = build_parser()
    assert parser.parse_args(["up"]).demo_payments == 0.0
    assert parser.parse_args(["up", "--demo-payments", "20"]).demo_payments == 20.0
    args = parser.parse_args(["demo", "pay", "--count", "3", "--pending"])
    assert (args.bank, args.customer, args.count, args.pending) == ("northwind", "demo1", 3, True)
    monkeypatch.delenv("BANK_DEMO_PAYMENTS_EVERY_S", raising=False)
    assert "BANK_DEMO_PAYMENTS_EVERY_S" not in os.environ


async def test_the_payment_timer_books_on_watched_accounts_only(aiohttp_server: Any) -> None:
    from bank_mock.payments import watched_accounts

    app = create_bank(BankSettings(customers_per_bank=2, demo_payments_every_s=0.05))
    await aiohttp_server(app)
    state = app[BANKS]["northwind"]
    before = state.version
    await asyncio.sleep(0.3)
    from datetime import UTC, datetime

    assert watched_accounts(state, datetime.now(UTC)) == []  # nobody linked: nothing booked
    assert state.version == before
