"""The bank's own pages in the customer's language: chosen from the authorization request
(``ui_locales``), else the browser's Accept-Language; Arabic right to left; and the approval
page says what the broker receives and what the chat platform sees."""

from __future__ import annotations

import re
import secrets
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient
from babel.messages.pofile import read_po
from hypothesis import given
from hypothesis import strategies as st

from bank_mock.auth.permissions import KINDS, PLAIN_WORDS, platform_sees
from bank_mock.auth.pkce import challenge_of
from bank_mock.dashboard import STATUS_WORDS
from bank_mock.i18n import LANGUAGES, choose, from_accept_language
from tests.bank_mock import flow

Client = TestClient[Any, Any]
PACKAGE = Path(__file__).resolve().parents[2] / "bank_mock"
_HTML = re.compile(r'<html lang="([a-z]+)" dir="(ltr|rtl)">')


def _lang_dir(html: str) -> tuple[str, str]:
    found = _HTML.search(html)
    assert found is not None, html[:200]
    return found.group(1), found.group(2)


async def _pages(
    client: Client,
    *,
    ui_locales: str | None = None,
    accept: str | None = None,
    scope: str = "openid accounts cards",
) -> tuple[str, str]:
    """The login page and, after logging in, the approval page, as a browser would get them."""
    reg = await flow.register(client, "northwind")
    consent_id = await flow.create_consent(client, reg)
    query = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": flow.REDIRECT,
        "state": "st-1",
        "code_challenge": challenge_of(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        "consent_id": consent_id,
        "scope": scope,
        **({"ui_locales": ui_locales} if ui_locales else {}),
    }
    headers = {"Accept-Language": accept} if accept else {}
    login = await client.get("/banks/northwind/authorize", params=query, headers=headers)
    assert login.status == 200, await login.text()
    login_html = await login.text()
    form = flow.parse_form(login_html)
    approval = await client.post(
        form.actions[0],
        data={"request_id": form.fields["request_id"], "username": "demo1", "password": "pass-1"},
    )
    assert approval.status == 200, await approval.text()
    return login_html, await approval.text()


async def test_arabic_from_the_consent_request_is_right_to_left_on_every_page(
    bank_client: Client,
) -> None:
    login, approval = await _pages(bank_client, ui_locales="ar", accept="en-GB,en;q=0.9")
    assert _lang_dir(login) == ("ar", "rtl") and _lang_dir(approval) == ("ar", "rtl")
    assert "تسجيل الدخول" in login and "Username" not in login
    assert "ما يراه تطبيق المحادثة" in approval  # what the chat app sees
    assert "آخر 4 أرقام" in approval  # the last 4 digits
    assert "أرصدة حساباتك" in approval  # a permission, translated
    assert "موافقة" in approval and ">Approve<" not in approval
    assert 'dir="ltr">••' in approval  # account endings stay left to right
    assert "(حساب جارٍ)" in approval and "CurrentAccount" not in approval  # the account kind


async def test_polish_from_the_browser_when_the_request_names_no_language(
    bank_client: Client,
) -> None:
    login, approval = await _pages(bank_client, accept="de-DE,pl;q=0.8,en;q=0.5")
    assert _lang_dir(login) == ("pl", "ltr") and _lang_dir(approval) == ("pl", "ltr")
    assert "Zaloguj się" in login
    assert "Co widzi aplikacja czatu" in approval and "Zatwierdź" in approval
    assert "Do czasu, aż ją wycofasz." in approval  # no expiry date was asked for


async def test_the_request_language_wins_over_the_browser(bank_client: Client) -> None:
    login, _ = await _pages(bank_client, ui_locales="pl ar", accept="ar")
    assert _lang_dir(login) == ("pl", "ltr")


async def test_english_says_what_the_broker_receives_and_what_the_platform_sees(
    bank_client: Client,
) -> None:
    login, approval = await _pages(bank_client)
    assert _lang_dir(login) == ("en", "ltr")
    assert "What Chatbank Broker receives from Northwind Bank" in approval
    assert "Your account names, types and account numbers" in approval  # the broker's share
    assert "What the chat app sees" in approval
    assert "Balances, with only the last 4 digits of each account number" in approval
    assert "Never: full account or card numbers" in approval
    assert "Fraud alerts and card freezes" in approval  # the cards scope was asked
    assert "(current account)" in approval


async def test_a_wrong_sign_in_is_answered_in_the_request_language(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    consent_id = await flow.create_consent(bank_client, reg)
    query = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": flow.REDIRECT,
        "code_challenge": challenge_of(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        "consent_id": consent_id,
        "ui_locales": "pl",
    }
    page = await bank_client.get("/banks/northwind/authorize", params=query)
    form = flow.parse_form(await page.text())
    wrong = await bank_client.post(
        form.actions[0],
        data={"request_id": form.fields["request_id"], "username": "demo1", "password": "x"},
    )
    assert wrong.status == 401
    assert "Nieprawidłowa nazwa użytkownika lub hasło." in await wrong.text()
    bad = await bank_client.get(
        "/banks/northwind/authorize", params={**query, "client_id": "nobody"}
    )
    assert bad.status == 400 and _lang_dir(await bad.text()) == ("pl", "ltr")
    assert "nie jest zarejestrowana" in await bad.text()


async def test_the_dashboard_keeps_its_language_through_login_and_revoke(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)
    page = await bank_client.get("/banks/northwind/dashboard", params={"ui_locales": "ar"})
    assert _lang_dir(await page.text()) == ("ar", "rtl")
    form = flow.parse_form(await page.text())
    listed = await bank_client.post(
        form.actions[0], data={"username": "demo1", "password": "pass-1"}
    )
    html = await listed.text()
    assert _lang_dir(html) == ("ar", "rtl") and "التطبيقات المتصلة" in html and "نشطة" in html
    revoke_form = flow.parse_form(html)
    revoked = await bank_client.post(
        revoke_form.actions[0],
        data={"csrf": revoke_form.fields["csrf"], "consent_id": linked.consent_id},
    )
    assert "تم إلغاء الوصول." in await revoked.text()


def _msgids() -> set[str]:
    """Every English text the bank's pages show (the msgids of the catalogs)."""
    found: set[str] = set(PLAIN_WORDS.values()) | set(KINDS.values()) | set(STATUS_WORDS.values())
    found |= set(
        platform_sees(["ReadBalances", "ReadTransactionsBasic"], frozenset({"cards", "support"}))
    )
    patterns = (
        r'\b_\(\s*"((?:[^"\\]|\\.)+)"',
        r'PageError\(\s*"([^"]+)"',
        r'error="([^"]+)"',
        r'_login\(request, bank, "([^"]+)"',
    )
    for path in [*PACKAGE.rglob("*.py"), *(PACKAGE / "templates").glob("*.html")]:
        text = path.read_text()
        for pattern in patterns:
            found |= set(re.findall(pattern, text))
    return found - {"access_denied", "invalid_token", "…"}  # OAuth codes, a docstring


def test_every_text_of_the_bank_pages_is_translated_in_arabic_and_polish() -> None:
    wanted = _msgids()
    assert len(wanted) > 50
    for language in ("ar", "pl"):
        po = PACKAGE / "locales" / language / "LC_MESSAGES" / "bank.po"
        with po.open("rb") as f:
            catalog = read_po(f, locale=language)
        translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
        assert sorted(wanted - translated) == [], language


def test_accept_language_follows_the_quality_values() -> None:
    assert from_accept_language("en;q=0.3, ar-EG;q=0.9, pl;q=0.5") == "ar"
    assert from_accept_language("pl-PL") == "pl"
    assert from_accept_language("de, fr;q=0.9") is None
    assert from_accept_language("pl;q=0, en;q=0.1") == "en"
    assert from_accept_language("ar;q=abc, pl") == "pl"


@given(st.text(max_size=80), st.text(max_size=80))
def test_any_language_header_yields_a_language_the_pages_have(ui: str, accept: str) -> None:
    assert choose(ui, accept) in LANGUAGES
