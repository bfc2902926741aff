"""The bot end to end: real Application, localchat as Telegram, a real broker and bank."""

from __future__ import annotations

from pathlib import Path

import consent
from bot.i18n import tr
from consent.domain.policy import load_policies
from localchat.testing import Message
from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, buttons, url_button

LANGUAGE = {ALICE: "en", OMAR: "ar", ZOFIA: "pl"}  # localchat's demo users
BANK_NAMES = {
    p.bank_id: p.display_name
    for p in load_policies(Path(consent.__file__).with_name("policies")).values()
}


async def link_bank(
    system: System,
    user: int,
    bank: str = "northwind",
    *,
    drop: tuple[str, ...] = (),
    days: int | None = None,
) -> str:
    """:func:`approval_message`, then approve at the bank; the bot confirms naming the bank.
    Returns the approval URL the user was given (its button goes once the link is done)."""
    approve = await approval_message(system, user, bank, drop=drop, days=days)
    url = url_button(approve)
    before = {m["message_id"] for m in await system.chat.messages(user)}
    await system.approve_at_bank(url)
    await system.expect(user, lambda t: "/balance" in t and BANK_NAMES[bank] in t, before)

    def closed(ms: list[Message], mid: int = approve["message_id"]) -> bool:
        return not any(m["message_id"] == mid and buttons(m) for m in ms)

    await system.chat.wait_for(user, closed)  # the finished link's button has gone
    return url


async def approval_message(
    system: System,
    user: int,
    bank: str = "northwind",
    *,
    drop: tuple[str, ...] = (),
    days: int | None = None,
) -> Message:
    """/link → bank → (untick ``drop``) → Next → days (the shortest offered when not given)
    → I agree: the message with the bank's approval button. Every step must name the bank (no
    error message does) and carry its buttons."""
    which = tr(LANGUAGE[user])._("Which bank would you like to link?")
    name = BANK_NAMES[bank]

    def names_bank(text: str) -> bool:
        return name in text

    picker = await system.say(user, "/link", lambda t: which in t)
    assert button(picker, f"lk:bank:{bank}")
    scopes = await system.press(user, picker, f"lk:bank:{bank}", names_bank)
    assert button(scopes, "lk:sc:")
    for scope in drop:  # unticking edits only the keyboard: wait for the edit itself
        edits, picker_id = scopes["edit_count"], scopes["message_id"]
        await system.chat.press(user, picker_id, f"lk:sc:{scope}")
        messages = await system.chat.wait_for(
            user,
            lambda ms, e=edits, i=picker_id: any(  # type: ignore[misc]
                m["message_id"] == i and m["edit_count"] > e for m in ms
            ),
            timeout=10,
        )
        scopes = next(m for m in messages if m["message_id"] == picker_id)
    durations = await system.press(user, scopes, "lk:next", names_bank)
    choice = f"lk:days:{days}" if days else button(durations, "lk:days:")
    disclosure = await system.press(user, durations, choice, lambda t: names_bank(t) and "<b>" in t)
    assert button(disclosure, "lk:ok")
    approve = await system.press(user, disclosure, "lk:ok", names_bank)
    assert url_button(approve)
    return approve


async def test_start_welcomes_in_the_users_language_with_the_privacy_promise(
    system: System,
) -> None:
    en = await system.say(ALICE, "/start", lambda t: "Welcome" in t)
    assert "advertising" in en["text"]
    ar = await system.say(OMAR, "/start", lambda t: "chatbank" in t)
    assert "Welcome" not in ar["text"]
    assert ar["text"].startswith("\u200f")
    pl = await system.say(ZOFIA, "/start", lambda t: "chatbank" in t)
    assert "Witaj" in pl["text"] or "Witamy" in pl["text"]


async def test_linking_a_bank_shows_the_disclosure_and_confirms_when_authorized(
    system: System,
) -> None:
    picker = await system.say(ALICE, "/link", lambda t: "bank" in t.lower())
    scopes = await system.press(ALICE, picker, "lk:bank:northwind", lambda t: "Northwind" in t)
    durations = await system.press(ALICE, scopes, "lk:next", lambda t: "how long" in t.lower())
    disclosure = await system.press(ALICE, durations, "lk:days:90", lambda t: "approve" in t)
    text = disclosure["text"]
    for promise in ("Who receives", "What:", "Why:", "90 days", "/consents", "advertising"):
        assert promise in text
    approve = await system.press(ALICE, disclosure, "lk:ok", lambda t: "Open" in t)
    url = url_button(approve)
    assert url.startswith(str(system.env.bank.make_url("/banks/northwind")))
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    await system.approve_at_bank(url)
    linked = await system.expect(ALICE, lambda t: "linked" in t, before)
    assert "Northwind" in linked["text"]


async def test_balance_lists_linked_accounts_grouped_by_bank_with_local_amounts(
    system: System,
) -> None:
    await link_bank(system, ALICE, "northwind")
    await link_bank(system, ALICE, "libertas")
    reply = await system.say(ALICE, "/balance", lambda t: "balances" in t.lower())
    text = reply["text"]
    assert "Northwind" in text and "Libertas" in text
    banks = {part.split("</b>", 1)[0]: part for part in text.split("🏦 <b>")[1:]}
    assert set(banks) == {"Northwind Bank", "Libertas Federal"}
    # each bank's amounts in its own currency, formatted for the user's language
    assert "£" in banks["Northwind Bank"] and "$" not in banks["Northwind Bank"]
    assert "US$" in banks["Libertas Federal"] and "£" not in banks["Libertas Federal"]


async def test_transactions_page_with_buttons_and_edit_in_place(system: System) -> None:
    await link_bank(system, ALICE)
    first = await system.say(ALICE, "/transactions", lambda t: "Transactions" in t)
    assert button(first, "tx:p:7d") and button(first, "tx:next")
    assert "On this page" in first["text"]
    older = await system.press(ALICE, first, "tx:next", lambda t: "Transactions" in t)
    assert older["message_id"] == first["message_id"] and older["edit_count"] == 1
    assert older["text"] != first["text"]
    assert button(older, "tx:prev")
    newer = await system.press(ALICE, older, "tx:prev", lambda t: "Transactions" in t)
    assert newer["text"] == first["text"]
    week = await system.press(ALICE, newer, "tx:p:7d", lambda t: "7 days" in t)
    assert week["message_id"] == first["message_id"]


async def test_free_text_asks_for_spending_at_a_merchant(system: System) -> None:
    await link_bank(system, ALICE)
    total = await system.say(
        ALICE, "what did I spend at Tesco last month", lambda t: "Spending" in t
    )
    assert "Tesco" in total["text"] and "You spent" in total["text"]
    assert "On this page" not in total["text"]  # one total for the month, not a page's
    listed = await system.press(ALICE, total, "sp:list", lambda t: "Transactions" in t)
    assert "Tesco" in listed["text"]
    assert button(listed, "tx:all")


async def test_free_text_in_arabic_and_polish_reaches_the_same_intents(system: System) -> None:
    await link_bank(system, OMAR, "nakheel")
    ar = await system.say(OMAR, "كم رصيدي", lambda t: "Nakheel" in t or "نخيل" in t)
    assert ar["text"].startswith("\u200f")
    await link_bank(system, ZOFIA, "wisla")
    pl = await system.say(ZOFIA, "jakie mam saldo", lambda t: "Wisła" in t)
    assert "zł" in pl["text"]


async def test_unknown_text_gets_suggestions(system: System) -> None:
    reply = await system.say(ALICE, "qwertyuiop zxcvb", lambda t: "didn't get" in t)
    assert button(reply, "cl:balance")


async def test_a_digression_inside_link_is_answered_and_the_flow_resumes(
    system: System,
) -> None:
    await link_bank(system, ALICE)
    picker = await system.say(ALICE, "/link", lambda t: "Which bank" in t)
    scopes = await system.press(ALICE, picker, "lk:bank:libertas", lambda t: "Libertas" in t)
    await system.say(ALICE, "what's my balance", lambda t: "Your balances" in t)
    resumed = await system.expect(
        ALICE, lambda t: "Libertas" in t and "what may I see" in t, {scopes["message_id"]}
    )
    durations = await system.press(ALICE, resumed, "lk:next", lambda t: "how long" in t.lower())
    assert button(durations, "lk:days:")


async def test_cancel_anywhere_ends_the_flow(system: System) -> None:
    picker = await system.say(ALICE, "/link", lambda t: "Which bank" in t)
    await system.press(ALICE, picker, "lk:bank:northwind", lambda t: "Northwind" in t)
    await system.say(ALICE, "/cancel", lambda t: "Cancelled" in t)
    stale = await system.press(ALICE, picker, "lk:next", lambda t: "out of date" in t)
    assert "/link" in stale["text"]


async def test_language_command_switches_and_remembers(system: System) -> None:
    menu = await system.say(ALICE, "/language", lambda t: "language" in t.lower())
    done = await system.press(ALICE, menu, "lang:pl", lambda t: "polsku" in t)
    assert done["message_id"] == menu["message_id"]
    help_pl = await system.say(ALICE, "/help", lambda t: "/link" in t)
    assert "bank" in help_pl["text"].lower() and "What I can do" not in help_pl["text"]


async def test_transactions_with_a_merchant_argument_filters_and_can_be_cleared(
    system: System,
) -> None:
    await link_bank(system, ALICE)
    filtered = await system.say(ALICE, "/transactions tesco", lambda t: "Transactions" in t)
    assert "at tesco" in filtered["text"]
    cleared = await system.press(ALICE, filtered, "tx:all", lambda t: "at tesco" not in t)
    assert cleared["message_id"] == filtered["message_id"]


async def test_the_command_menu_is_published(system: System) -> None:
    application = system.runtime.application
    assert application is not None
    commands = await application.bot.get_my_commands()
    assert [c.command for c in commands][:3] == ["link", "balance", "transactions"]


async def test_a_link_rejected_at_the_bank_is_reported(system: System) -> None:
    from yarl import URL

    picker = await system.say(ALICE, "/link", lambda t: "Which bank" in t)
    scopes = await system.press(ALICE, picker, "lk:bank:libertas", lambda t: "Libertas" in t)
    durations = await system.press(ALICE, scopes, "lk:next", lambda t: "how long" in t.lower())
    disclosure = await system.press(ALICE, durations, "lk:days:30", lambda t: "approve" in t)
    approve = await system.press(ALICE, disclosure, "lk:ok", lambda t: "Open" in t)
    url = URL(url_button(approve))
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    landing = await system.env.broker.get(
        "/callback/libertas", params={"state": url.query["state"], "error": "access_denied"}
    )
    assert landing.status == 200
    notice = await system.expect(ALICE, lambda t: "not approved" in t, before)
    assert "Libertas" in notice["text"] and "Nothing was shared" in notice["text"]
