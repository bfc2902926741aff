"""Every conversation in English, Arabic and Polish, end to end."""

from __future__ import annotations

import pytest

from tests.bot.system import ALICE, OMAR, ZOFIA, System, button
from tests.bot.test_alerts_and_privacy import inject_fraud
from tests.bot.test_conversations import link_bank

USERS = {"en": ALICE, "ar": OMAR, "pl": ZOFIA}
WORDS: dict[str, dict[str, str]] = {
    "en": {
        "bank": "northwind",
        "pick": "Which bank",
        "balances": "Your balances",
        "transactions": "Transactions",
        "shared": "What you shared",
        "log": "Access log",
        "help": "What I can do",
        "alert": "Was this you?",
        "frozen": "frozen",
        "ask": "what's my balance",
        "unknown": "didn't get",
        "revoked": "Revoked",
    },
    "ar": {
        "bank": "nakheel",
        "pick": "أي بنك",
        "balances": "أرصدتك",
        "transactions": "المعاملات",
        "shared": "ما شاركته",
        "log": "سجل الوصول",
        "help": "ما الذي أستطيع فعله",
        "alert": "هل هذه العملية منك؟",
        "frozen": "تجميد",
        "ask": "كم رصيدي",
        "unknown": "لم أفهم",
        "revoked": "تم الإلغاء",
    },
    "pl": {
        "bank": "wisla",
        "pick": "Który bank",
        "balances": "Twoje salda",
        "transactions": "Transakcje",
        "shared": "Co udostępniasz",
        "log": "Dziennik dostępu",
        "help": "Co potrafię",
        "alert": "Czy to Ty?",
        "frozen": "zablokowana",
        "ask": "jakie mam saldo",
        "unknown": "nie zrozumiałem",
        "revoked": "Cofnięto",
    },
}


@pytest.mark.parametrize("language", ["en", "ar", "pl"])
async def test_every_conversation_in_each_language(system: System, language: str) -> None:
    w = WORDS[language]
    user, bank = USERS[language], w["bank"]
    await system.say(user, "/help", lambda t: w["help"] in t)
    await system.say(user, "/link", lambda t: w["pick"] in t)
    await system.say(user, "/cancel", lambda t: "/help" in t)
    await link_bank(system, user, bank)
    await system.say(user, "/balance", lambda t: w["balances"] in t)
    await system.say(user, w["ask"], lambda t: w["balances"] in t)
    await system.say(user, "zzqx vvkp", lambda t: w["unknown"] in t)
    if bank != "wisla":  # Bank Wisła does not share transactions through chat
        page = await system.say(user, "/transactions", lambda t: w["transactions"] in t)
        assert button(page, "tx:p:")
    else:
        reply = await system.say(user, "/transactions", lambda t: "⚠️" in t or "/link" in t)
        assert w["transactions"] not in reply["text"].split("\n")[0]
    before = {m["message_id"] for m in await system.chat.messages(user)}
    await inject_fraud(system, bank)
    alert = await system.expect(user, lambda t: w["alert"] in t, before)
    if bank != "wisla":  # card controls are not shared by Wisła either: no freeze button
        await system.press(user, alert, button(alert, "al:fz:"), lambda t: w["frozen"] in t)
    else:
        assert [b for row in alert["reply_markup"]["inline_keyboard"] for b in row][1:] == []
    page = await system.say(user, "/privacy", lambda t: "<code>" in t)
    await system.press(user, page, "pv:log", lambda t: w["log"] in t)
    listing = await system.say(user, "/consents", lambda t: w["shared"] in t)
    ask = await system.press(user, listing, button(listing, "cs:rv:"), lambda t: "cs:" not in t)
    await system.press(user, ask, button(ask, "cs:ok:"), lambda t: w["revoked"] in t)
