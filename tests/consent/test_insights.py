"""The insights view against a real mock bank: the totals are the bank's own sums (computed here
from bank_mock's ledger), currencies stay apart, no rows and no merchants unless one category's
top merchants are asked for, a failing or stalling bank is named without blanking the others,
every read is in the access log, and bad input is a typed 400."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bank_mock.keys import BANKS
from bank_mock.models import Direction
from tests.consent.broker_env import Env, start, stop

OCTOBER = {"from": "2026-10-01", "to": "2026-10-31"}


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _insights(
    env: Env, subject: str, params: dict[str, str], **headers: str
) -> tuple[int, Any]:
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/insights", params=params, headers={**env.auth(), **headers}
    )
    return resp.status, await resp.json()


async def _log(env: Env, subject: str) -> list[dict[str, Any]]:
    resp = await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    entries: list[dict[str, Any]] = (await resp.json())["entries"]
    return [e for e in entries if e["action"] == "read.insights"]


def _bank_out(env: Env, bank_id: str, start: date, end: date) -> tuple[dict[str, Decimal], int]:
    """Money out per currency and the number of payments, from the bank's own ledger."""
    bank = env.bank_app[BANKS][bank_id]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    count = 0
    low, high = datetime.combine(start, time.min, UTC), datetime.combine(end, time(23, 59, 59), UTC)
    for account_id in bank.customers_by_username["demo1"].account_ids:
        for tx in bank.ledger(account_id).between(low, high):
            if tx.direction is Direction.DEBIT:
                totals[tx.currency] += Decimal(tx.amount_minor) / 100
                count += 1
    return dict(totals), count


async def test_totals_and_the_previous_month_are_the_banks_own_sums(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    status, body = await _insights(env, subject, OCTOBER)
    assert status == 200, body
    assert (body["previous_from"], body["previous_to"]) == ("2026-09-01", "2026-09-30")
    assert body["complete"] is True and body["unavailable"] == []
    now, now_count = _bank_out(env, "northwind", date(2026, 10, 1), date(2026, 10, 31))
    before, before_count = _bank_out(env, "northwind", date(2026, 9, 1), date(2026, 9, 30))
    [gbp] = body["currencies"]
    assert gbp["currency"] == "GBP"
    assert Decimal(gbp["total"]) == now["GBP"] and gbp["count"] == now_count
    assert Decimal(gbp["previous_total"]) == before["GBP"] and gbp["previous_count"] == before_count
    assert Decimal(gbp["change"]) == now["GBP"] - before["GBP"]
    categories = gbp["categories"]
    assert sum(Decimal(c["total"]) for c in categories) == now["GBP"]
    totals = [Decimal(c["total"]) for c in categories]
    assert totals == sorted(totals, reverse=True)
    # an aggregate: no rows, no ids, no merchants
    text = str(body)
    assert "Tesco" not in text and "booking_date" not in text and "'id'" not in text
    assert "top_merchants" not in body
    [entry] = await _log(env, subject)
    assert (entry["outcome"], entry["reason"], entry["scope"]) == ("allowed", "ok", "transactions")
    assert "merchant" not in entry["fields"] and "total" in entry["fields"]


async def test_top_merchants_only_for_the_category_asked_and_logged_as_merchants(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    status, body = await _insights(env, subject, {**OCTOBER, "top_merchants": "groceries"})
    assert status == 200, body
    top = body["top_merchants"]
    assert top["category"] == "groceries" and 0 < len(top["merchants"]) <= 5
    groceries = next(c for c in body["currencies"][0]["categories"] if c["category"] == "groceries")
    assert sum(Decimal(m["total"]) for m in top["merchants"]) <= Decimal(groceries["total"])
    names = {m["merchant"] for m in top["merchants"]}
    assert "Tesco" in names and "Shell" not in names  # fuel is another category
    [entry] = await _log(env, subject)
    assert "merchant" in entry["fields"]


async def test_currencies_are_never_added_together(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    await env.link(subject, "libertas", scopes=["transactions"])
    status, body = await _insights(env, subject, OCTOBER)
    assert status == 200
    by_currency = {c["currency"]: c for c in body["currencies"]}
    assert set(by_currency) == {"GBP", "USD"}
    usd, _ = _bank_out(env, "libertas", date(2026, 10, 1), date(2026, 10, 31))
    assert Decimal(by_currency["USD"]["total"]) == usd["USD"]
    assert body["accounts"] >= 2 and len(await _log(env, subject)) == 2


async def test_a_failing_bank_is_named_and_the_others_still_answer(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    await env.link(subject, "libertas", scopes=["transactions"])
    await env.bank.put("/sandbox/banks/libertas/faults", json={"error_rate": 1.0})
    status, body = await _insights(env, subject, OCTOBER)
    assert status == 200, body
    assert body["complete"] is False
    assert [(u["bank_id"], u["bank_name"]) for u in body["unavailable"]] == [
        ("libertas", "Libertas Federal")
    ]
    assert body["unavailable"][0]["reason"] == "bank_unavailable"
    assert [c["currency"] for c in body["currencies"]] == ["GBP"]  # none of a half-read bank
    outcomes = sorted((e["outcome"], e["reason"]) for e in await _log(env, subject))
    assert outcomes == [("allowed", "ok"), ("denied", "bank_unavailable")]


async def test_a_stalling_bank_is_cut_off_at_the_deadline_and_named(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    await env.link(subject, "libertas", scopes=["transactions"])
    await env.bank.put("/sandbox/banks/libertas/faults", json={"latency_ms": 5000})
    started = datetime.now(UTC)
    status, body = await _insights(env, subject, OCTOBER, **{"X-Request-Deadline-Ms": "2500"})
    took = (datetime.now(UTC) - started).total_seconds()
    assert status == 200, body
    assert took < 2.5
    assert body["unavailable"][0]["bank_id"] == "libertas"
    assert body["unavailable"][0]["reason"] == "bank_timeout"
    assert [c["currency"] for c in body["currencies"]] == ["GBP"]


async def test_an_answer_not_ready_in_time_is_a_504_and_logged_as_not_served(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    status, body = await _insights(env, subject, OCTOBER, **{"X-Request-Deadline-Ms": "1"})
    assert status == 504 and body["error"] == "deadline_exceeded"
    assert [(e["outcome"], e["reason"]) for e in await _log(env, subject)] == [
        ("denied", "deadline_exceeded")
    ]


async def test_a_period_without_payments_has_no_currencies(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    status, body = await _insights(env, subject, {"from": "2020-01-01", "to": "2020-01-31"})
    assert status == 200
    assert body["currencies"] == [] and body["complete"] is True and body["accounts"] > 0


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"from": "2026-10-31", "to": "2026-10-01"}, "invalid_date"),
        ({"from": "2024-01-01", "to": "2026-10-01"}, "invalid_date"),
        ({"from": "2027-01-01", "to": "2027-01-31"}, "invalid_date"),
        ({"from": "October"}, "invalid_date"),
        ({"top_merchants": "tesco"}, "invalid_category"),
    ],
)
async def test_bad_input_is_a_typed_400(env: Env, params: dict[str, str], code: str) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    status, body = await _insights(env, subject, params)
    assert status == 400 and body["error"] == code, body


async def test_another_purpose_another_client_and_no_credential_are_refused(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/insights", headers=env.auth(purpose="advertising")
    )
    assert resp.status == 403 and (await resp.json())["error"] == "purpose_not_permitted"
    [denied] = await _log(env, subject)
    assert (denied["outcome"], denied["purpose"]) == ("denied", "advertising")
    other = await env.new_client("someone-else")
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/insights", headers=env.auth(credential=other)
    )
    assert resp.status == 404
    assert (await env.broker.get(f"/v1/subjects/{subject}/insights")).status == 401


async def test_a_consent_without_transactions_is_logged_denied_and_adds_nothing(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["balances"])
    status, body = await _insights(env, subject, OCTOBER)
    assert status == 200 and body["currencies"] == [] and body["accounts"] == 0
    assert await _log(env, subject) == []  # the consent never had the scope: nothing to refuse
