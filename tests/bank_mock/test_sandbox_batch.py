"""``POST /sandbox/banks/{bank_id}/transactions/batch``: several payments booked in one request
(load generators), each as the single-payment call would book it; a bad one refuses the whole
batch, naming it, and books nothing."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bank_mock.keys import BANKS
from tests.bank_mock.test_extension_spec import conforms

Client = TestClient[Any, Any]
BATCH = "/sandbox/banks/northwind/transactions/batch"
ACCOUNT = "noc000001a0"


def _payment(merchant: str, amount: str = "4000", **more: Any) -> dict[str, Any]:
    return {"account_id": ACCOUNT, "amount": amount, "merchant_name": merchant, **more}


def _booked(app: web.Application, merchant_prefix: str) -> list[str]:
    bank = app[BANKS]["northwind"]
    return [
        t.merchant_name or ""
        for t in bank.ledger(ACCOUNT).transactions
        if (t.merchant_name or "").startswith(merchant_prefix)
    ]


async def test_a_batch_books_each_payment_in_order_and_raises_their_alerts(
    bank_client: Client, bank_app: web.Application
) -> None:
    names = [f"Batch Shop {i}" for i in range(5)]
    resp = await bank_client.post(
        BATCH, json={"transactions": [_payment(n, country="BR") for n in names]}
    )
    assert resp.status == 201, await resp.text()
    results = (await resp.json())["results"]
    assert len(results) == 5
    assert all(r["alerts"] and r["transaction_id"] for r in results)
    assert len({r["transaction_id"] for r in results}) == 5
    assert _booked(bank_app, "Batch Shop ") == names


async def test_one_bad_payment_refuses_the_batch_and_books_nothing(
    bank_client: Client, bank_app: web.Application
) -> None:
    batch = [_payment("Refused Shop 0"), _payment("Refused Shop 1", amount="1.234")]
    resp = await bank_client.post(BATCH, json={"transactions": batch})
    assert resp.status == 400
    assert "transactions.1" in await resp.text()
    unknown = [_payment("Refused Shop 2"), {**_payment("Refused Shop 3"), "account_id": "nope"}]
    resp = await bank_client.post(BATCH, json={"transactions": unknown})
    assert resp.status == 404
    assert _booked(bank_app, "Refused Shop ") == []


async def test_empty_oversized_and_malformed_batches_are_400(bank_client: Client) -> None:
    bodies: list[dict[str, Any]] = [
        {"transactions": []},
        {"transactions": [_payment("Big")] * 501},
        {"transactions": "all of them"},
        {},
    ]
    for body in bodies:
        resp = await bank_client.post(BATCH, json=body)
        assert resp.status == 400, body
    resp = await bank_client.post(BATCH, data=b"not json")
    assert resp.status == 400


async def test_the_batch_answers_as_its_spec_says(bank_client: Client) -> None:
    await conforms(
        await bank_client.post(BATCH, json={"transactions": [_payment("Spec Shop")]}), "POST"
    )
