"""The doors issue 10 found open, each closed: alerts on ended consents, /v1/banks without a
purpose, refused requests spending the read budget, a client without a limit, probes of another
client's resources that reached no log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bank_mock.keys import BANKS
from chatbank.cli import main as chatbank
from tests.consent.broker_env import ADMIN, Env, start, stop
from tests.consent.test_events_and_webhooks import Bot, wired  # noqa: F401 - the fixture

Wired = tuple[Env, Bot, str]


@pytest.fixture
async def env(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, sqlite_url, sweep_interval_s=3600)
    yield e
    await stop(e)


async def _log(env: Env, subject: str) -> list[dict[str, Any]]:
    resp = await env.broker.get(f"/v1/subjects/{subject}/access-log", headers=env.auth())
    body = await resp.json()
    assert body["integrity"]["ok"] is True
    entries: list[dict[str, Any]] = body["entries"]
    return entries


async def _security(env: Env) -> list[dict[str, Any]]:
    resp = await env.broker.get(
        "/admin/v1/security-log", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert resp.status == 200
    entries: list[dict[str, Any]] = (await resp.json())["entries"]
    return entries


async def _real_alert(env: Env, bot: Bot, subject: str) -> tuple[str, str]:
    """A fraud alert the bank really raised for demo1's first card; (alert id, account id)."""
    account = env.bank_app[BANKS]["northwind"].customers_by_username["demo1"].account_ids[0]
    inject = await env.bank.post(
        "/sandbox/banks/northwind/transactions",
        json={"account_id": account, "amount": "2900.00", "merchant_name": "Gadget Hub"},
    )
    assert (await inject.json())["alerts"]
    alert = (await bot.next_kind("fraud_alert"))["data"]["alert"]
    return str(alert["alert_id"]), account


def _card_status(env: Env, account: str) -> str:
    bank = env.bank_app[BANKS]["northwind"]
    return str(bank.cards[bank.accounts[account].card_ids[0]].status)


async def test_an_alert_on_an_expired_consent_freezes_nothing_and_is_logged_denied(
    wired: Wired,  # noqa: F811
) -> None:
    env, bot, _ = wired
    subject = await env.subject()
    scopes = ["balances", "fraud_alerts", "card_controls"]
    await env.link(subject, scopes=scopes, duration_days=1)
    alert_id, account = await _real_alert(env, bot, subject)
    env.clock.now += timedelta(days=1, minutes=1)
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/alerts/{alert_id}/answer",
        json={"answer": "freeze_card"},
        headers=env.auth(),
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "consent_expired"
    assert _card_status(env, account) != "Frozen"
    last = (await _log(env, subject))[-1]
    assert (last["action"], last["outcome"], last["reason"]) == (
        "alert.answer",
        "denied",
        "consent_expired",
    )
    assert last["scope"] == "card_controls"


async def test_an_alert_on_a_revoked_consent_is_refused_and_logged(
    wired: Wired,  # noqa: F811
) -> None:
    env, bot, _ = wired
    subject = await env.subject()
    consent_id = await env.link(subject, scopes=["balances", "fraud_alerts"])
    alert_id, _ = await _real_alert(env, bot, subject)
    await env.broker.delete(f"/v1/subjects/{subject}/consents/{consent_id}", headers=env.auth())
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/alerts/{alert_id}/answer",
        json={"answer": "it_was_me"},
        headers=env.auth(),
    )
    assert resp.status == 403
    assert (await resp.json())["error"] == "consent_not_authorized"
    last = (await _log(env, subject))[-1]
    assert (last["action"], last["outcome"], last["reason"]) == (
        "alert.answer",
        "denied",
        "consent_not_authorized",
    )


async def test_the_bank_list_is_served_for_the_chat_service_only(env: Env) -> None:
    for purpose in ("advertising", ""):
        headers = env.auth(purpose=purpose)
        resp = await env.broker.get("/v1/banks", headers=headers)
        assert resp.status == 403
        assert (await resp.json())["error"] == "purpose_not_permitted"
    client_id = env.credential.split(".")[0]
    logged = [(e["client_id"], e["route"], e["reason"]) for e in await _security(env)]
    assert logged[:2] == [(client_id, "/v1/banks", "purpose_not_permitted")] * 2
    assert (await env.broker.get("/v1/banks", headers=env.auth())).status == 200


async def test_refused_reads_never_spend_the_subjects_budget(env: Env) -> None:
    subject = await env.subject()
    url = f"/v1/subjects/{subject}/balances"
    for _ in range(31):
        refused = await env.broker.get(url, headers=env.auth(purpose="advertising"))
        assert refused.status == 403
    assert (await env.broker.get(url, headers=env.auth())).status == 200
    denied = [e for e in await _log(env, subject) if e["outcome"] == "denied"]
    assert len(denied) == 31


async def test_a_client_over_its_own_limit_gets_429_and_an_operator_sees_it(
    tmp_path: Path, sqlite_url: str
) -> None:
    env = await start(tmp_path, sqlite_url, client_requests_per_minute=3)
    try:
        statuses = [
            (await env.broker.get("/v1/banks", headers=env.auth())).status for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = await env.broker.get("/v1/banks", headers=env.auth())
        assert refused.headers["Retry-After"] == "20"
        other = await env.new_client("another-platform")  # clients are limited one by one
        assert (await env.broker.get("/v1/banks", headers=env.auth(credential=other))).status == 200
        reasons = [e["reason"] for e in await _security(env)]
        assert reasons[:2] == ["client_rate_limited"] * 2
    finally:
        await stop(env)


async def test_probes_of_another_clients_resources_reach_the_security_log_without_ids(
    env: Env,
) -> None:
    mine = await env.subject()
    other = await env.new_client("another-platform")
    theirs = await env.subject(credential=other)
    probe = await env.broker.get(f"/v1/subjects/{theirs}/export", headers=env.auth())
    missing = await env.broker.get("/v1/subjects/sub_nobodyatall/export", headers=env.auth())
    assert (probe.status, await probe.json()) == (missing.status, await missing.json())
    assert (await probe.json())["error"] == "not_found"
    newest, before = (await _security(env))[:2]
    assert (newest["reason"], before["reason"]) == ("unknown_resource", "other_clients_resource")
    assert before["route"] == "/v1/subjects/{subject_id}/export"
    assert before["client_id"] == env.credential.split(".")[0]
    assert theirs not in str(newest) + str(before)
    assert [e for e in await _log(env, mine) if e["outcome"] == "denied"] == []


async def test_the_security_log_needs_the_admin_token(env: Env) -> None:
    for headers in ({}, env.auth()):
        resp = await env.broker.get("/admin/v1/security-log", headers=headers)
        assert resp.status == 401
    bad = await env.broker.get(
        "/admin/v1/security-log?limit=²", headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert bad.status == 400


async def test_a_strict_banks_refusals_at_link_time_are_in_the_access_log(env: Env) -> None:
    subject = await env.subject()
    for body, code, reason in (
        ({"scopes": ["transactions"]}, "scope_not_allowed_by_bank", "scope_not_allowed_by_bank"),
        (
            {"scopes": ["balances"], "duration_days": 60},
            "invalid_duration",
            "duration_not_allowed_by_bank",
        ),
    ):
        resp = await env.broker.post(
            f"/v1/subjects/{subject}/consents",
            json={"bank_id": "wisla", **body},
            headers=env.auth(),
        )
        assert (await resp.json())["error"] == code
        last = (await _log(env, subject))[-1]
        assert (last["action"], last["outcome"], last["reason"]) == (
            "consent.create",
            "denied",
            reason,
        )


async def test_operators_read_the_security_log_from_the_command_line(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    await env.broker.get("/v1/banks")  # no credential
    monkeypatch.setenv("CONSENT_DATABASE_URL", env.broker_settings.database_url)
    assert await asyncio.to_thread(chatbank, ["security-log", "--limit", "5"]) == 0
    out = capsys.readouterr().out
    assert "GET    /v1/banks  unauthenticated" in out
