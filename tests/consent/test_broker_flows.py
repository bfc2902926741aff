"""The broker end to end against a real mock bank: link, read, refuse, revoke, shred."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bank_mock.keys import BANKS
from consent.store.db import make_engine, session_factory
from consent.store.secrets import data_key
from consent.store.tables import ConsentKey, SealedSecret
from consent.vault.envelope import open_sealed
from consent.vault.keyring import VaultError, parse_keyring
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


def _raw_values(raw: dict[str, Any]) -> set[str]:
    """Values of the bank's raw records the platform must never see."""
    account = raw["account"]
    customer = raw["customer"]
    values = {
        account["account_number"],
        account["identification"],
        account["holder_name"],
        account["account_id"],
    }
    values |= {
        customer["full_name"],
        customer["address"],
        customer["email"],
        customer["phone"],
        customer["customer_id"],
    }
    if account.get("iban"):
        values.add(account["iban"])
    if account.get("sort_code"):
        values.add(account["sort_code"])
    values |= {c["pan"] for c in raw["cards"]}
    for t in raw["transactions"][-50:]:
        values |= {t["raw_descriptor"], t["bank_reference"], t["transaction_id"]}
        values |= {
            v
            for v in (t["device_id"], t["ip_address"], t["terminal_id"], t["counterparty_account"])
            if v
        }
    return {str(v) for v in values if v}


async def test_a_linked_subject_reads_minimized_balances_across_banks(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind")
    await env.link(subject, "wisla", scopes=["balances"], username="demo2")
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200, await resp.text()
    balances = (await resp.json())["balances"]
    assert {b["bank_name"] for b in balances} == {"Northwind Bank", "Bank Wisła"}
    for b in balances:
        assert set(b) <= {
            "bank_name",
            "account_handle",
            "nickname",
            "account_type",
            "last4",
            "currency",
            "available",
            "current",
            "as_of",
            "status",
        }
        assert b["status"] == "fresh"
        assert b["account_handle"].startswith("acc_")
        assert len(b["last4"]) == 4
    again = await (
        await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    ).json()
    assert sorted(b["account_handle"] for b in again["balances"]) == sorted(
        b["account_handle"] for b in balances
    )


async def test_nothing_the_platform_receives_contains_a_raw_bank_field(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind")
    body = await (
        await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    ).text()
    body += await (
        await env.broker.get(f"/v1/subjects/{subject}/consents", headers=env.auth())
    ).text()
    body += await (
        await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    ).text()
    bank = env.bank_app[BANKS]["northwind"]
    for account_id in bank.customers_by_username["demo1"].account_ids:
        raw = await (
            await env.bank.get(f"/sandbox/banks/northwind/raw/accounts/{account_id}")
        ).json()
        leaked = [v for v in _raw_values(raw) if v in body]
        assert leaked == []


async def test_another_clients_subject_is_not_found(env: Env) -> None:
    subject = await env.subject()
    other = await env.new_client("someone-else")
    for method, path in (("GET", "balances"), ("GET", "consents"), ("GET", "access-log")):
        resp = await env.broker.request(
            method, f"/v1/subjects/{subject}/{path}", headers=env.auth(credential=other)
        )
        assert resp.status == 404
        assert (await resp.json())["error"] == "not_found"


async def test_a_wrong_purpose_is_refused_and_logged(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/balances", headers=env.auth(purpose="advertising")
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "purpose_not_permitted"
    log = await (
        await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    ).json()
    assert log["integrity"]["ok"] is True
    denied = [e for e in log["entries"] if e["outcome"] == "denied"]
    assert denied[-1]["purpose"] == "advertising"
    assert denied[-1]["reason"] == "purpose_not_permitted"


async def test_the_strict_bank_refuses_transactions_before_anything_is_created(env: Env) -> None:
    subject = await env.subject()
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        json={"bank_id": "wisla", "scopes": ["transactions"]},
        headers=env.auth(),
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "scope_not_allowed_by_bank"
    too_long = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        json={"bank_id": "wisla", "scopes": ["balances"], "duration_days": 60},
        headers=env.auth(),
    )
    assert (await too_long.json())["error"] == "invalid_duration"
    listed = await (
        await env.broker.get(f"/v1/subjects/{subject}/consents", headers=env.auth())
    ).json()
    assert listed["consents"] == []


async def test_revoking_shreds_the_tokens_for_good(env: Env) -> None:
    subject = await env.subject()
    consent_id = await env.link(subject)
    engine = make_engine(env.broker_settings.database_url)
    ring = parse_keyring(env.broker_settings.keyring.get_secret_value())
    try:
        async with session_factory(engine)() as session:
            sealed = (
                await session.exec(
                    select(SealedSecret).where(SealedSecret.consent_id == consent_id)
                )
            ).all()
            blobs = {s.field: s.blob for s in sealed}
            key = await data_key(session, ring, consent_id)
        assert key is not None
        assert open_sealed(key, blobs["access_token"], consent_id=consent_id, field="access_token")
        resp = await env.broker.delete(
            f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth()
        )
        assert (await resp.json())["status"] == "revoked"
        async with session_factory(engine)() as session:
            assert await session.get(ConsentKey, consent_id) is None
            assert await data_key(session, ring, consent_id) is None
        # even with the KEK ring and the old ciphertext, nothing opens without the shredded key
        with pytest.raises(VaultError):
            open_sealed(
                ring.keys[1], blobs["access_token"], consent_id=consent_id, field="access_token"
            )
    finally:
        await engine.dispose()
    after = await (
        await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    ).json()
    assert after["balances"] == []
    again = await env.broker.delete(
        f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth()
    )
    assert again.status == 200


async def test_a_failing_bank_with_nothing_known_is_named_with_a_typed_reason(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["balances"] == []
    assert [(u["bank_name"], u["reason"]) for u in body["unavailable"]] == [
        ("Northwind Bank", "bank_unavailable")
    ]


async def test_an_expired_bank_token_is_refreshed_transparently(env: Env) -> None:
    from datetime import timedelta

    subject = await env.subject()
    await env.link(subject)
    env.clock.now += timedelta(minutes=10)  # the bank's 5-minute access token has expired
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    assert resp.status == 200, await resp.text()
    balances = (await resp.json())["balances"]
    assert balances
    # the transactions view opens its token in its own session: the same refresh applies
    env.clock.now += timedelta(minutes=10)
    handle = balances[0]["account_handle"]
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/accounts/{handle}/transactions", headers=env.auth()
    )
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["transactions"]


async def test_bad_input_gets_typed_4xx_errors(env: Env) -> None:
    subject = await env.subject()
    cases = [
        ({"bank_id": "northwind", "scopes": ["everything"]}, "invalid_scope"),
        ({"bank_id": "nope", "scopes": ["balances"]}, "unknown_bank"),
        ({"bank_id": "northwind"}, "invalid_request"),
    ]
    for body, code in cases:
        resp = await env.broker.post(
            f"/v1/subjects/{subject}/consents", json=body, headers=env.auth()
        )
        assert 400 <= resp.status < 500
        assert (await resp.json())["error"] == code
    garbage = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        data=b"{",
        headers={**env.auth(), "Content-Type": "application/json"},
    )
    assert garbage.status == 400
    unauth = await env.broker.get(f"/v1/subjects/{subject}/balances")
    assert unauth.status == 401
    wrong = await env.broker.get(
        f"/v1/subjects/{subject}/balances", headers=env.auth(credential="pc_x.wrong")
    )
    assert wrong.status == 401
    assert json.loads(await wrong.text())["error"] == "unauthenticated"


async def _handle(env: Env, subject: str) -> str:
    balances = (
        await (await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())).json()
    )["balances"]
    current = next(b for b in balances if b["account_type"] == "CurrentAccount")
    return str(current["account_handle"])


async def test_transactions_page_with_a_cursor_filter_by_merchant_and_total_per_currency(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject)
    handle = await _handle(env, subject)
    url = f"/v1/subjects/{subject}/accounts/{handle}/transactions"
    seen: list[str] = []
    cursor = None
    for _ in range(3):
        params = {"limit": "40", **({"cursor": cursor} if cursor else {})}
        page = await (await env.broker.get(url, params=params, headers=env.auth())).json()
        assert len(page["transactions"]) == 40
        seen += [t["id"] for t in page["transactions"]]
        cursor = page["next_cursor"]
        assert cursor
    assert len(seen) == len(set(seen))  # pages never overlap
    march = await (
        await env.broker.get(
            url,
            params={"from": "2026-03-01", "to": "2026-03-31", "limit": "50"},
            headers=env.auth(),
        )
    ).json()
    assert march["transactions"]
    assert all(t["booking_date"].startswith("2026-03") for t in march["transactions"])
    tesco = await (
        await env.broker.get(url, params={"merchant": "tesco", "limit": "10"}, headers=env.auth())
    ).json()
    assert tesco["transactions"]
    assert all(t["merchant"] == "Tesco" for t in tesco["transactions"])
    spent = sum(Decimal(t["amount"]) for t in tesco["transactions"] if t["direction"] == "out")
    assert Decimal(tesco["totals"]["GBP"]["out"]) == spent
    for t in tesco["transactions"]:
        assert set(t) <= {
            "id",
            "booking_date",
            "amount",
            "currency",
            "direction",
            "status",
            "merchant",
            "category",
            "card_last4",
        }


async def test_transaction_queries_are_validated(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    handle = await _handle(env, subject)
    url = f"/v1/subjects/{subject}/accounts/{handle}/transactions"
    for params, code in (
        ({"from": "March"}, "invalid_date"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "invalid_date"),
        ({"limit": "0"}, "invalid_request"),
        ({"cursor": "!!!"}, "invalid_cursor"),
    ):
        resp = await env.broker.get(url, params=params, headers=env.auth())
        assert resp.status == 400, params
        assert (await resp.json())["error"] == code
    missing = await env.broker.get(
        f"/v1/subjects/{subject}/accounts/acc_nope/transactions", headers=env.auth()
    )
    assert missing.status == 404


async def test_concurrent_reads_for_one_subject_keep_the_audit_chain_intact(env: Env) -> None:
    import asyncio

    subject = await env.subject()
    await env.link(subject)
    url = f"/v1/subjects/{subject}/balances"
    responses = await asyncio.gather(*(env.broker.get(url, headers=env.auth()) for _ in range(12)))
    assert [r.status for r in responses] == [200] * 12
    log = await (
        await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    ).json()
    assert log["integrity"]["ok"] is True
    assert sum(e["action"] == "read.balances" for e in log["entries"]) == 12


async def test_a_bank_failure_while_linking_leaves_nothing_half_written(env: Env) -> None:
    subject = await env.subject()
    await env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        json={"bank_id": "northwind", "scopes": ["balances"]},
        headers=env.auth(),
    )
    assert resp.status == 502
    assert resp.headers["Retry-After"]
    listed = await (
        await env.broker.get(f"/v1/subjects/{subject}/consents", headers=env.auth())
    ).json()
    assert listed["consents"] == []


async def test_reading_faster_than_a_human_gets_a_429(env: Env) -> None:
    subject = await env.subject()
    url = f"/v1/subjects/{subject}/balances"
    statuses = [(await env.broker.get(url, headers=env.auth())).status for _ in range(31)]
    assert statuses[:30] == [200] * 30
    assert statuses[30] == 429
