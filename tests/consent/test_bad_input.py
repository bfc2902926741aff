"""Bad input never answers 5xx: ids with a NUL byte or the wrong shape (PostgreSQL refuses NUL in
text), numeric query parameters that are not ASCII digits, oversized request lines."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot import redact
from consent.domain.ids import is_id
from tests.consent.broker_env import ADMIN, Env, start, stop


@pytest.fixture
async def env(tmp_path: Path, database_url: str) -> AsyncIterator[Env]:
    env = await start(tmp_path, database_url)
    yield env
    await stop(env)


NUL = "a%00b"
BODY = {"answer": "it_was_me", "bank_id": "northwind", "scopes": ["balances"]}


async def test_a_nul_byte_in_any_id_is_a_typed_4xx_not_a_500(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    handle = (await resp.json())["balances"][0]["account_handle"]
    tx = f"/v1/subjects/{subject}/accounts/{handle}/transactions"
    probes = [
        ("GET", f"/v1/subjects/{NUL}/balances", 404),
        ("GET", f"/v1/subjects/{NUL}/consents", 404),
        ("POST", f"/v1/subjects/{NUL}/consents", 404),
        ("GET", f"/v1/subjects/{NUL}/access-log", 404),
        ("GET", f"/v1/subjects/{NUL}/export", 404),
        ("DELETE", f"/v1/subjects/{NUL}", 404),
        ("DELETE", f"/v1/subjects/{subject}/consents/{NUL}", 404),
        ("GET", f"/v1/subjects/{subject}/accounts/{NUL}/transactions", 404),
        ("POST", f"/v1/subjects/{subject}/alerts/{NUL}/answer", 404),
        ("GET", f"{tx}?cursor={NUL}", 400),
        ("GET", f"{tx}?merchant={NUL}", 400),
        ("POST", f"/events/{NUL}", 404),
    ]
    for method, path, status in probes:
        resp = await env.broker.request(method, path, headers=env.auth(), json=BODY)
        assert resp.status == status, (method, path, await resp.text())
        assert (await resp.json())["error"] in {"not_found", "invalid_request"}
    # a forged credential whose client id has no id shape never reaches the database
    resp = await env.broker.get(
        f"/v1/subjects/{subject}/balances", headers=env.auth(credential="pc_ü'.secret")
    )
    assert resp.status == 401


async def test_the_callback_refuses_a_nul_byte_in_state_without_credentials(env: Env) -> None:
    for bank, state in [("northwind", NUL), ("northwind", "a%C3%BCb"), ("north%00wind", "abc")]:
        resp = await env.broker.get(f"/callback/{bank}?state={state}&code=x")
        assert resp.status == 404
        assert "Link not found" in await resp.text()


async def test_a_nul_byte_in_a_json_body_is_refused(env: Env) -> None:
    subject = await env.subject()
    resp = await env.broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot\x00"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    assert resp.status == 400
    resp = await env.broker.post(
        f"/v1/subjects/{subject}/consents",
        json={"bank_id": "north\x00wind", "scopes": ["balances"]},
        headers=env.auth(),
    )
    assert 400 <= resp.status < 500, await resp.text()


async def test_limit_and_amounts_accept_ascii_digits_in_range_only(env: Env) -> None:
    subject = await env.subject()
    await env.link(subject)
    resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
    handle = (await resp.json())["balances"][0]["account_handle"]
    path = f"/v1/subjects/{subject}/accounts/{handle}/transactions"
    for limit in ["²", "①", "٣", "+5", " 5", "5 ", "", "0", "51", "9" * 30, "-1"]:
        resp = await env.broker.get(path, params={"limit": limit}, headers=env.auth())
        assert resp.status == 400, (limit, await resp.text())
        assert (await resp.json())["error"] == "invalid_request"
    resp = await env.broker.get(path, params={"limit": "50"}, headers=env.auth())
    assert resp.status == 200, await resp.text()
    for amount in ["١٢", "1_000", "1e5", "NaN", "Infinity", "-1", "12.", ".5", "1" * 14]:
        resp = await env.broker.get(path, params={"amount_min": amount}, headers=env.auth())
        assert resp.status == 400, (amount, await resp.text())
        assert (await resp.json())["error"] == "invalid_amount"
    resp = await env.broker.get(path, params={"amount_min": "12.50"}, headers=env.auth())
    assert resp.status == 200, await resp.text()
    for where in (path, f"/v1/subjects/{subject}/spending"):
        resp = await env.broker.get(where, params={"from": "", "to": "²"}, headers=env.auth())
        assert resp.status == 400, await resp.text()
        assert (await resp.json())["error"] == "invalid_date"


async def _oversized_requests(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    subject = await env.subject()
    secret = "m" * 10_000
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        resp = await env.broker.get(
            f"/v1/subjects/{subject}/accounts/acc_x/transactions",
            params={"merchant": secret},
            headers=env.auth(),
        )
        assert resp.status == 400
        resp = await env.broker.get(
            f"/v1/subjects/{subject}/balances", headers={**env.auth(), "X-Cursor": secret}
        )
        assert resp.status == 400
    records = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(records) == 2
    for record in records:
        assert record.levelno == logging.WARNING
        assert record.exc_info is None and record.exc_text is None
        line = record.getMessage()
        assert "\n" not in line and "LineTooLong" in line and "mmmm" not in line


async def test_an_oversized_query_or_header_is_logged_as_one_warning_line(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    factory = logging.getLogRecordFactory()
    try:
        logging.setLogRecordFactory(logging.LogRecord)
        await _oversized_requests(env, caplog)
        # in ``chatbank up`` the bot's redacting record factory rewrites every record first
        redact.install()
        await _oversized_requests(env, caplog)
    finally:
        logging.setLogRecordFactory(factory)


@given(st.text(max_size=200))
def test_an_id_is_short_and_url_safe(value: str) -> None:
    ok = is_id(value)
    assert ok == (
        0 < len(value) <= 128 and all(c.isascii() and (c.isalnum() or c in "_.~-") for c in value)
    )
