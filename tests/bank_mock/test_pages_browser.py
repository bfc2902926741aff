"""The Arabic approval page as Chromium draws it: right to left, with account endings kept
left to right (``••1234``, not ``1234••``)."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from yarl import URL

from bank_mock.app import create_app
from bank_mock.auth.pkce import challenge_of
from bank_mock.settings import BankSettings
from tests.bank_mock import flow
from tests.localchat.browser import page, shots

if TYPE_CHECKING:
    from playwright.async_api import Page

__all__ = ["page", "shots"]

# x of the first and the last character of each account ending, as drawn
_ENDINGS = """() => [...document.querySelectorAll('label.account bdi[dir=ltr]')].map(el => {
  const text = el.firstChild, range = document.createRange();
  const x = i => { range.setStart(text, i); range.setEnd(text, i + 1);
                   return range.getBoundingClientRect().x; };
  return [el.textContent, x(0), x(text.length - 1)];
})"""


async def test_the_arabic_approval_page_is_drawn_right_to_left(
    aiohttp_client: Any, page: Page, shots: Path
) -> None:
    client = await aiohttp_client(create_app(BankSettings(customers_per_bank=2)))
    reg = await flow.register(client, "northwind")
    consent_id = await flow.create_consent(client, reg)
    query = {
        "response_type": "code",
        "client_id": reg.client_id,
        "redirect_uri": flow.REDIRECT,
        "code_challenge": challenge_of(secrets.token_urlsafe(48)),
        "code_challenge_method": "S256",
        "consent_id": consent_id,
        "scope": "openid accounts cards",
        "ui_locales": "ar",
    }
    await page.goto(str(URL(str(client.make_url("/banks/northwind/authorize"))).with_query(query)))
    await page.get_by_label("اسم المستخدم").fill("demo1")
    await page.get_by_label("كلمة المرور").fill("pass-1")
    await page.get_by_role("button", name="تسجيل الدخول").click()
    await page.get_by_role("button", name="موافقة").wait_for()
    assert await page.evaluate("document.documentElement.dir") == "rtl"
    assert await page.evaluate("getComputedStyle(document.querySelector('main')).direction") == (
        "rtl"
    )
    endings = await page.evaluate(_ENDINGS)
    assert endings, "no account endings on the page"
    assert all(text.startswith("••") and first < last for text, first, last in endings), endings
    await page.screenshot(path=shots / "09-bank-approval-arabic.png", full_page=True)
