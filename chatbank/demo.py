"""``chatbank demo fraud``: book a suspicious card payment at a mock bank, so its fraud engine
raises an alert that travels bank → broker → bot → chat."""

from __future__ import annotations

from typing import Any

import aiohttp


class DemoError(Exception):
    """Something the person running the demo can fix (wrong bank, customer, or nothing running)."""


async def inject_fraud(
    bank_url: str,
    bank_id: str,
    customer: str,
    *,
    amount: str = "2750.00",
    merchant: str = "Luxe Watches",
    country: str = "FR",
) -> dict[str, Any]:
    """Find ``customer``'s first account with a card and book the payment; returns the bank's
    answer (with the alert ids)."""
    base = f"{bank_url.rstrip('/')}/sandbox/banks/{bank_id}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/customers") as resp:
                if resp.status == 404:
                    raise DemoError(f"no bank called {bank_id!r}")
                customers = (await resp.json())["customers"]
            found = next((c for c in customers if c["username"] == customer), None)
            if found is None:
                names = ", ".join(c["username"] for c in customers)
                raise DemoError(f"{bank_id} has no customer {customer!r} (try: {names})")
            account = next((a for a in found["accounts"] if a["card_ids"]), None)
            if account is None:
                raise DemoError(f"{customer} has no card at {bank_id}")
            body = {
                "account_id": account["account_id"],
                "amount": amount,
                "currency": "EUR",
                "merchant_name": merchant,
                "country": country,
            }
            async with session.post(f"{base}/transactions", json=body) as resp:
                answer: dict[str, Any] = await resp.json()
                if resp.status >= 400:
                    raise DemoError(f"the bank refused: {answer}")
                return answer
    except aiohttp.ClientConnectionError as e:
        raise DemoError(
            f"no bank answers at {bank_url}; is `chatbank up` running? "
            "(check BANK_PORT and BANK_PUBLIC_URL in .env, or pass --bank-url)"
        ) from e


async def book_payments(
    bank_url: str,
    bank_id: str,
    customer: str,
    *,
    count: int = 1,
    merchant: str | None = None,
    amount: str | None = None,
    pending: bool = False,
) -> dict[str, Any]:
    """Book ``count`` card payments for ``customer`` (``chatbank demo pay``); the bank tells
    every app with a live consent on the account, and those with receipts on show them."""
    url = f"{bank_url.rstrip('/')}/sandbox/banks/{bank_id}/payments"
    body: dict[str, Any] = {"username": customer, "count": count, "pending": pending}
    if merchant:
        body["merchant"] = merchant
    if amount:
        body["amount"] = amount
    try:
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as resp:
            try:
                answer: dict[str, Any] = await resp.json()
            except (aiohttp.ContentTypeError, ValueError) as e:
                raise DemoError(f"no bank called {bank_id!r}") from e
            if resp.status >= 400:
                errors = answer.get("Errors") or [{}]
                where = errors[0].get("Path") if isinstance(errors[0], dict) else None
                if where == "bank_id":
                    raise DemoError(f"no bank called {bank_id!r}")
                if where == "username":
                    raise DemoError(f"{bank_id} has no customer {customer!r} (try demo1)")
                raise DemoError(f"the bank refused: {answer.get('Message', answer)}")
            return answer
    except aiohttp.ClientConnectionError as e:
        raise DemoError(
            f"no bank answers at {bank_url}; is `chatbank up` running? "
            "(check BANK_PORT and BANK_PUBLIC_URL in .env, or pass --bank-url)"
        ) from e
