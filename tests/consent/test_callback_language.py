"""The page the bank sends the customer back to speaks the language the link was started in
(carried in the OAuth state), else the browser's; the bank got it as ``ui_locales``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from consent.api.page_language import from_accept_language
from consent.domain.language import LANGUAGES, language_of_state, state_with_language
from tests.consent.broker_env import Env, start, stop


@pytest.fixture
async def env(tmp_path: Path, sqlite_url: str) -> AsyncIterator[Env]:
    e = await start(tmp_path, sqlite_url)
    yield e
    await stop(e)


async def _link_and_land(env: Env, language: str | None, accept: str | None) -> tuple[URL, str]:
    subject = await env.subject()
    body: dict[str, object] = {"bank_id": "northwind", "scopes": ["balances"]}
    if language is not None:
        body["language"] = language
    resp = await env.broker.post(f"/v1/subjects/{subject}/consents", json=body, headers=env.auth())
    assert resp.status == 201, await resp.text()
    url = URL((await resp.json())["authorization_url"])
    approve = await env.bank.post(
        f"/sandbox/banks/northwind/consents/{url.query['consent_id']}/approve",
        json={
            "username": "demo1",
            "redirect_uri": url.query["redirect_uri"],
            "code_challenge": url.query["code_challenge"],
            "scopes": url.query["scope"].split(),
        },
    )
    code = (await approve.json())["code"]
    headers = {"Accept-Language": accept} if accept else {}
    landing = await env.broker.get(
        "/callback/northwind",
        params={"state": url.query["state"], "code": code},
        headers=headers,
    )
    assert landing.status == 200, await landing.text()
    return url, await landing.text()


async def test_an_arabic_link_asks_the_bank_in_arabic_and_lands_on_an_arabic_page(
    env: Env,
) -> None:
    url, page = await _link_and_land(env, "ar", accept="en")
    assert url.query["ui_locales"] == "ar"
    assert '<html lang="ar" dir="rtl">' in page and "تم ربط بنكك" in page


async def test_without_a_language_the_browser_decides_the_return_page(env: Env) -> None:
    url, page = await _link_and_land(env, None, accept="pl-PL,pl;q=0.9")
    assert "ui_locales" not in url.query
    assert '<html lang="pl" dir="ltr">' in page and "Twój bank jest połączony" in page


async def test_a_language_outside_the_contract_is_refused(env: Env) -> None:
    subject = await env.subject()
    body = {"bank_id": "northwind", "scopes": ["balances"], "language": "<script>"}
    resp = await env.broker.post(f"/v1/subjects/{subject}/consents", json=body, headers=env.auth())
    assert resp.status == 400


async def test_an_unknown_link_is_explained_in_the_browsers_language(env: Env) -> None:
    resp = await env.broker.get(
        "/callback/northwind",
        params={"state": "nope", "code": "x"},
        headers={"Accept-Language": "ar"},
    )
    assert resp.status == 404
    assert '<html lang="ar" dir="rtl">' in await resp.text()


@given(st.text(max_size=40), st.sampled_from([*LANGUAGES, None, "de", "x" * 30]))
def test_the_state_keeps_a_supported_language_and_nothing_else(
    token: str, language: str | None
) -> None:
    state = state_with_language(token.replace(".", ""), language)
    assert language_of_state(state) == (language if language in LANGUAGES else None)
    assert len(state) <= len(token) + 3


def test_accept_language_prefers_the_highest_quality() -> None:
    assert from_accept_language("en;q=0.2, ar;q=0.8") == "ar"
    assert from_accept_language("fr") is None
