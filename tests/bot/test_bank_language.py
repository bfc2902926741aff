"""The bank's approval page opens in the chat user's language: the bot passes it with the
consent request, the broker puts it on the authorization URL as ``ui_locales``."""

from __future__ import annotations

from yarl import URL

from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, url_button


async def _approval_url(system: System, user: int) -> URL:
    picker = await system.say(user, "/link", lambda t: True)
    scopes = await system.press(user, picker, "lk:bank:northwind", lambda t: True)
    durations = await system.press(user, scopes, "lk:next", lambda t: True)
    disclosure = await system.press(
        user, durations, button(durations, "lk:days:"), lambda t: "<b>" in t
    )
    approve = await system.press(user, disclosure, "lk:ok", lambda t: True)
    return URL(url_button(approve))


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
