"""The bank's approval page opens in the chat user's language: the bot passes it with the
consent request, the broker puts it on the authorization URL as ``ui_locales``."""

from __future__ import annotations

from yarl import URL

from tests.bot.system import ALICE, OMAR, ZOFIA, System, url_button
from tests.bot.test_conversations import approval_message


async def _approval_url(system: System, user: int) -> URL:
    return URL(url_button(await approval_message(system, user)))


async def test_the_bank_page_opens_in_each_chat_users_language(system: System) -> None:
    for user, language, direction, login in (
        (OMAR, "ar", "rtl", "تسجيل الدخول"),
        (ZOFIA, "pl", "ltr", "Zaloguj się"),
        (ALICE, "en", "ltr", "Log in"),
    ):
        url = await _approval_url(system, user)
        assert url.query["ui_locales"] == language
        page = await system.env.bank.get(url.path_qs, headers={"Accept-Language": "de"})
        html = await page.text()
        assert page.status == 200
        assert f'<html lang="{language}" dir="{direction}">' in html and login in html
