"""Balances inside the request's deadline: per bank and per account, fresh, last known (sealed,
labelled with when it was read) or a typed reason; only what was served is logged as served."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import col, select

from consent.api.keys import BROKER
from consent.store import last_known
from consent.store.tables import LastBalance
from consent.vault.envelope import new_data_key
from consent.vault.keyring import VaultError
from tests.consent.broker_env import Env, start, stop

DOWN = {"error_rate": 1.0}


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, database_url)
    yield e
    await stop(e)


async def read(env: Env, subject: str, deadline_ms: int | None = None) -> tuple[int, Any]:
    headers = env.auth()
    if deadline_ms is not None:
        headers["X-Request-Deadline-Ms"] = str(deadline_ms)
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=headers)
    return resp.status, await resp.json()


async def log_of(env: Env, subject: str) -> list[dict[str, Any]]:
    resp = await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    entries: list[dict[str, Any]] = (await resp.json())["entries"]
    return [e for e in entries if e["action"] == "read.balances"]


async def test_a_bank_that_stops_answering_gets_its_last_known_balance_labelled(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    status, fresh = await read(env, subject)
    assert status == 200 and fresh["balances"] and fresh["unavailable"] == []
    await env.bank.put("/sandbox/banks/northwind/faults", json=DOWN)
    status, later = await read(env, subject)
    assert status == 200
    assert later["unavailable"] == []  # every account still has a balance to show
    by_handle = {b["account_handle"]: b for b in later["balances"]}
    for b in fresh["balances"]:
        kept = by_handle[b["account_handle"]]
        assert kept["status"] == "last_known"
        assert kept["reason"] == "bank_unavailable"
        assert kept["read_at"].startswith(env.clock().date().isoformat())
        assert kept["available"] == b["available"]
    entries = await log_of(env, subject)
    assert [(e["outcome"], e["reason"]) for e in entries] == [
        ("allowed", "ok"),
        ("allowed", "last_known"),
    ]


async def test_one_slow_bank_never_blanks_the_other(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject, "northwind")
    await env.link(subject, "wisla", scopes=["balances"], username="demo2")
    await env.bank.put("/sandbox/banks/northwind/faults", json={"latency_ms": 5000})
    started = time.monotonic()
    status, body = await read(env, subject, deadline_ms=1500)
    assert time.monotonic() - started < 4  # the slow bank's 5 s were not waited for
    assert status == 200
    assert {b["bank_name"] for b in body["balances"]} == {"Bank Wisła"}
    assert all(b["status"] == "fresh" for b in body["balances"])
    assert [(u["bank_id"], u["reason"]) for u in body["unavailable"]] == [
        ("northwind", "bank_timeout")
    ]
    outcomes = sorted((e["outcome"], e["reason"]) for e in await log_of(env, subject))
    assert outcomes == [("allowed", "ok"), ("denied", "bank_timeout")]


async def test_an_answer_not_ready_by_the_deadline_is_refused_and_not_logged_as_served(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject)
    status, body = await read(env, subject, deadline_ms=1)
    assert status == 504 and body["error"] == "deadline_exceeded"
    entries = await log_of(env, subject)
    assert [(e["outcome"], e["reason"]) for e in entries] == [("denied", "deadline_exceeded")]


async def test_a_malformed_deadline_is_a_clear_400(env: Env) -> None:
    subject = await env.subject()
    status, body = await read(env, subject, deadline_ms=0)
    assert status == 400 and "X-Request-Deadline-Ms" in body["detail"]


async def test_last_known_balances_are_shredded_with_the_consent(env: Env) -> None:
    subject = await env.subject()
    consent_id = await env.link(subject)
    assert (await read(env, subject))[0] == 200
    broker = env.broker.app[BROKER]

    async def stored() -> list[LastBalance]:
        async with broker.sessions() as session:
            return list(
                (
                    await session.exec(
                        select(LastBalance).where(col(LastBalance.consent_id) == consent_id)
                    )
                ).all()
            )

    assert await stored()
    resp = await env.broker.delete(
        f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth()
    )
    assert resp.status == 200
    assert await stored() == []


@settings(max_examples=50, deadline=None)
@given(
    view=st.dictionaries(
        st.sampled_from(["available", "current", "currency", "nickname"]),
        st.text(max_size=20) | st.none(),
    ),
    handles=st.tuples(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20)),
)
def test_a_sealed_last_balance_opens_only_for_its_consent_and_account(
    view: dict[str, str | None], handles: tuple[str, str]
) -> None:
    key = new_data_key()
    mine, other = handles
    if mine == other:
        other = mine + "x"
    blob = last_known.seal_view(key, "con_1", mine, dict(view))
    assert last_known.open_view(key, "con_1", mine, blob) == view
    for consent_id, handle in (("con_2", mine), ("con_1", other)):
        if (consent_id, handle) != ("con_1", mine):
            with pytest.raises(VaultError):
                last_known.open_view(key, consent_id, handle, blob)


async def test_transactions_from_a_slow_bank_are_refused_in_time_and_not_logged_as_served(
    env: Env,
) -> None:
    subject = await env.subject()
    await env.link(subject)
    _, body = await read(env, subject)
    handle = body["balances"][0]["account_handle"]
    await env.bank.put("/sandbox/banks/northwind/faults", json={"latency_ms": 5000})
    headers = {**env.auth(), "X-Request-Deadline-Ms": "1000"}
    started = time.monotonic()
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/accounts/{handle}/transactions", headers=headers
    )
    assert time.monotonic() - started < 4  # not the bank's 5 s
    assert resp.status == 504 and (await resp.json())["error"] == "bank_timeout"
    log = await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    entries = (await log.json())["entries"]
    assert not [e for e in entries if e["action"] == "read.transactions"]
