"""The accounts view (what each account allows) and the spending totals view, end to end
against a real mock bank: multi-bank, strict-bank, authorization and the access log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.consent.broker_env import Env, start, stop

ACCOUNT_KEYS = {
    "account_handle",
    "bank_id",
    "bank_name",
    "nickname",
    "account_type",
    "last4",
    "currency",
    "actions",
    "status",  # fresh, or last_known (with read_at and reason) when the bank did not answer
}


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def _get(env: Env, subject: str, path: str, **kw: Any) -> Any:
    resp = await env.broker.get(f"/v1/subjects/{subject}/{path}", headers=env.auth(), **kw)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _log(env: Env, subject: str) -> list[dict[str, Any]]:
    log = await _get(env, subject, "access-log")
    assert log["integrity"]["ok"] is True
    return list(log["entries"])


async def test_accounts_list_every_bank_with_what_each_consent_and_policy_allow(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject, "wisla", scopes=["balances", "fraud_alerts"], username="demo2")
    await env.link(subject, "libertas", scopes=["balances", "transactions", "card_controls"])
    accounts = (await _get(env, subject, "accounts"))["accounts"]
    by_bank: dict[str, list[dict[str, Any]]] = {}
    for a in accounts:
        assert set(a) <= ACCOUNT_KEYS and a["account_handle"].startswith("acc_")
        by_bank.setdefault(a["bank_id"], []).append(a)
    assert set(by_bank) == {"wisla", "libertas"}
    assert all(a["actions"] == ["balances"] for a in by_bank["wisla"])
    assert all(
        a["actions"] == ["balances", "transactions", "spending", "card_controls"]
        for a in by_bank["libertas"]
    )
    assert {a["bank_name"] for a in accounts} == {"Bank Wisła", "Libertas Federal"}
    # the handles are the ones the balances view uses
    balances = (await _get(env, subject, "balances"))["balances"]
    assert {b["account_handle"] for b in balances} == {a["account_handle"] for a in accounts}
    allowed = [e for e in await _log(env, subject) if e["action"] == "read.accounts"]
    assert [e["outcome"] for e in allowed] == ["allowed", "allowed"]
    assert "available" not in allowed[0]["fields"] and "actions" in allowed[0]["fields"]


async def test_a_transactions_only_consent_lists_its_accounts_for_transactions(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["transactions"])
    accounts = (await _get(env, subject, "accounts"))["accounts"]
    assert accounts and all(a["actions"] == ["transactions", "spending"] for a in accounts)
    assert (await _get(env, subject, "balances"))["balances"] == []
    handle = accounts[0]["account_handle"]
    page = await _get(env, subject, f"accounts/{handle}/transactions", params={"limit": "3"})
    assert len(page["transactions"]) == 3


async def test_a_consent_without_a_read_scope_lists_nothing_and_is_logged_denied(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind", scopes=["fraud_alerts"])
    assert (await _get(env, subject, "accounts"))["accounts"] == []
    denied = [e for e in await _log(env, subject) if e["action"] == "read.accounts"]
    assert [(e["outcome"], e["reason"]) for e in denied] == [("denied", "scope_not_consented")]


async def test_revoked_and_expired_consents_list_no_accounts_and_total_nothing(env: Env) -> None:
    subject = await env.subject()
    consent_id = await env.link(subject, "northwind")
    await env.link(subject, "libertas", username="demo2")
    resp = await env.broker.delete(
        f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth()
    )
    assert resp.status == 200
    accounts = (await _get(env, subject, "accounts"))["accounts"]
    assert {a["bank_id"] for a in accounts} == {"libertas"}
    env.clock.now += timedelta(days=181)  # Libertas allows 180 days at most
    assert (await _get(env, subject, "accounts"))["accounts"] == []
    spent = await _get(env, subject, "spending")
    assert spent["totals"] == []
    reasons = {e["reason"] for e in await _log(env, subject) if e["outcome"] == "denied"}
    assert "consent_expired" in reasons


@pytest.mark.parametrize("path", ["accounts", "spending"])
async def test_the_new_views_refuse_another_purpose_and_another_clients_subject(
    env: Env, path: str
) -> None:
    subject = await env.subject()
    await env.link(subject)
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/{path}", headers=env.auth(purpose="advertising")
    )
    assert resp.status == 403 and (await resp.json())["error"] == "purpose_not_permitted"
    denied = [e for e in await _log(env, subject) if e["outcome"] == "denied"]
    assert denied[-1]["action"] == f"read.{path}" and denied[-1]["purpose"] == "advertising"
    other = await env.new_client("someone-else")
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/{path}", headers=env.auth(credential=other)
    )
    assert resp.status == 404
    resp = await env.broker.get(f"/v1/subjects/{subject}/{path}")
    assert resp.status == 401


async def _walk_out(env: Env, subject: str, handle: str, start: date, end: date) -> list[Any]:
    """Every transaction of an account over the period, through the paged transactions view."""
    rows: list[Any] = []
    cursor: str | None = None
    for _ in range(100):
        params = {"from": start.isoformat(), "to": end.isoformat(), "limit": "50"}
        if cursor:
            params["cursor"] = cursor
        page = await _get(env, subject, f"accounts/{handle}/transactions", params=params)
        rows += page["transactions"]
        cursor = page["next_cursor"]
        if not cursor:
            return rows
    raise AssertionError("the history did not end")


async def test_spending_totals_the_whole_period_across_accounts_not_one_page(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "nakheel")
    start, end = date(2026, 10, 1), date(2026, 10, 31)
    accounts = (await _get(env, subject, "accounts"))["accounts"]
    expected: dict[str, Decimal] = {}
    count = 0
    for a in accounts:
        for tx in await _walk_out(env, subject, a["account_handle"], start, end):
            if tx["direction"] == "out" and tx.get("merchant") == "Carrefour":
                expected[tx["currency"]] = expected.get(tx["currency"], Decimal(0)) + abs(
                    Decimal(tx["amount"])
                )
                count += 1
    assert count > 5  # more than one page of five would show
    params = {"from": start.isoformat(), "to": end.isoformat()}
    latin = await _get(env, subject, "spending", params={**params, "merchant": "Carrefour"})
    assert latin["complete"] is True
    assert {t["currency"]: Decimal(t["total"]) for t in latin["totals"]} == expected
    assert sum(t["count"] for t in latin["totals"]) == count
    arabic = await _get(env, subject, "spending", params={**params, "merchant": "كارفور"})
    assert arabic["totals"] == latin["totals"]
    groceries = await _get(env, subject, "spending", params={**params, "category": "groceries"})
    assert Decimal(groceries["totals"][0]["total"]) > Decimal(latin["totals"][0]["total"])
    everything = await _get(env, subject, "spending", params=params)
    assert {c["category"] for c in everything["by_category"]} >= {"groceries"}
    assert "transactions" not in everything and set(everything["totals"][0]) == {
        "currency",
        "total",
        "count",
    }
    allowed = [e for e in await _log(env, subject) if e["action"] == "read.spending"]
    assert allowed and all(e["outcome"] == "allowed" for e in allowed)


async def test_spending_skips_a_bank_that_never_shares_transactions(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "wisla", scopes=["balances"], username="demo2")
    await env.link(subject, "libertas")
    spent = await _get(env, subject, "spending", params={"merchant": "Amazon"})
    assert [t["currency"] for t in spent["totals"]] in ([], ["USD"])
    everything = await _get(env, subject, "spending")
    assert [t["currency"] for t in everything["totals"]] == ["USD"]
    wisla = await _get(env, subject, "spending", params={"bank": "wisla"})
    assert (wisla["accounts"], wisla["totals"]) == (0, [])
    libertas = await _get(env, subject, "spending", params={"bank": "libertas"})
    assert libertas["accounts"] >= 1 and libertas["totals"] == everything["totals"]


async def test_spending_for_one_account_and_bad_queries(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind")
    accounts = (await _get(env, subject, "accounts"))["accounts"]
    one = await _get(env, subject, "spending", params={"account": accounts[0]["account_handle"]})
    everything = await _get(env, subject, "spending")
    assert sum(t["count"] for t in one["totals"]) <= sum(t["count"] for t in everything["totals"])
    for params, code in (
        ({"category": "caviar"}, "invalid_category"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, "invalid_date"),
        ({"from": "2024-01-01", "to": "2026-11-01"}, "invalid_date"),
        ({"from": "yesterday"}, "invalid_date"),
    ):
        resp = await env.broker.get(
            f"/v1/subjects/{subject}/spending", params=params, headers=env.auth()
        )
        assert resp.status == 400 and (await resp.json())["error"] == code, params
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/spending", params={"account": "acc_nope"}, headers=env.auth()
    )
    assert resp.status == 404


async def test_transactions_filter_by_category_and_amount_size(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind")
    handle = (await _get(env, subject, "accounts"))["accounts"][0]["account_handle"]
    path = f"accounts/{handle}/transactions"
    fuel = await _get(env, subject, path, params={"category": "fuel", "limit": "50"})
    assert fuel["transactions"] and all(t["category"] == "fuel" for t in fuel["transactions"])
    big = await _get(env, subject, path, params={"amount_min": "40", "limit": "50"})
    assert all(abs(Decimal(t["amount"])) >= 40 for t in big["transactions"])
    small = await _get(env, subject, path, params={"amount_max": "5.50", "limit": "50"})
    assert all(abs(Decimal(t["amount"])) <= Decimal("5.50") for t in small["transactions"])
    for params, code in (
        ({"category": "caviar"}, "invalid_category"),
        ({"amount_min": "lots"}, "invalid_amount"),
        ({"amount_max": "-3"}, "invalid_amount"),
    ):
        resp = await env.broker.get(
            f"/v1/subjects/{subject}/{path}", params=params, headers=env.auth()
        )
        assert resp.status == 400 and (await resp.json())["error"] == code, params


@pytest.mark.parametrize("path", ["accounts", "spending"])
async def test_a_failing_bank_is_named_with_a_typed_reason_and_not_logged_as_served(
    env: Env, path: str
) -> None:
    subject = await env.subject()
    await env.link(subject)
    await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    failed = await _get(env, subject, path)  # an answer, not a 502 for the whole request
    assert [(u["bank_id"], u["bank_name"], u["reason"]) for u in failed["unavailable"]] == [
        ("northwind", "Northwind Bank", "bank_unavailable")
    ]
    if path == "accounts":
        assert failed["accounts"] == []  # nothing was ever read from it to fall back on
    else:
        assert (failed["totals"], failed["complete"]) == ([], False)
    await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 0.0})
    env.clock.now += timedelta(minutes=1)  # the bank's circuit breaker half-opens
    again = await _get(env, subject, path)
    assert again["unavailable"] == []
    logged = [
        (e["outcome"], e["reason"])
        for e in await _log(env, subject)
        if e["action"] == f"read.{path}"
    ]
    assert logged == [("denied", "bank_unavailable"), ("allowed", "ok")]


async def test_an_expired_bank_token_is_refreshed_for_the_new_views(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "libertas")
    env.clock.now += timedelta(minutes=10)  # the bank's 5-minute access token has expired
    assert (await _get(env, subject, "accounts"))["accounts"]
    env.clock.now += timedelta(minutes=10)
    spent = await _get(env, subject, "spending")
    assert spent["accounts"] >= 1 and spent["totals"]
