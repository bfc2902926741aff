"""Every chat answer within 5 s while a bank misbehaves, through localchat as the user sees it:
transactions, spending and cards name the bank that did not answer and show the others (in
English, Arabic and Polish); the first balance right after linking a slow bank is fresh; and
two chat users linked to the same bank customer each get a fraud alert once and answer it on
their own (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bank_mock.fraud.publisher import PUBLISHER
from bot.i18n import tr
from localchat.testing import Message
from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, buttons, start_system, stop_system
from tests.bot.test_alerts_and_privacy import inject_fraud
from tests.bot.test_conversations import LANGUAGE, link_bank
from tests.consent.conftest import database_url

__all__ = ["database_url"]

WITHIN_S = 5.0
STALL = {"latency_ms": 6000}


@pytest.fixture
async def system_on(tmp_path: Path, database_url: str) -> AsyncIterator[System]:
    """The whole system with the broker on SQLite, then on PostgreSQL."""
    s = await start_system(tmp_path, database_url)
    yield s
    await stop_system(s)


def said(user: int, msgid: str) -> str:
    """The fixed part of a message with one %(bank)s, in ``user``'s language."""
    return tr(LANGUAGE[user])._(msgid, bank="\x00").split("\x00")[-1].strip()


async def timed(system: System, user: int, text: str, expect: str) -> tuple[str, float]:
    started = time.monotonic()
    reply = await system.say(user, text, lambda t: expect in t or "⚠️" in t, wait_s=WITHIN_S + 3)
    return reply["text"], time.monotonic() - started


async def test_transactions_with_one_bank_stalled_show_the_other_and_say_so(
    system: System,
) -> None:
    await link_bank(system, ALICE, "northwind")
    await link_bank(system, ALICE, "libertas")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json=STALL)
    text, took = await timed(system, ALICE, "/transactions", "Transactions")
    assert took < WITHIN_S, took
    assert "Transactions" in text and "Libertas Federal" in text, text
    assert "Northwind Bank did not answer; showing the others." in text


async def test_spending_in_arabic_leaves_out_the_stalled_bank_and_says_so(
    system: System,
) -> None:
    await link_bank(system, OMAR, "northwind")
    await link_bank(system, OMAR, "libertas")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json=STALL)
    note = said(OMAR, "%(bank)s did not answer, so this total leaves it out.")
    started = time.monotonic()
    reply = await system.say(OMAR, "كم صرفت هذا الشهر", lambda t: note in t, wait_s=WITHIN_S + 3)
    assert time.monotonic() - started < WITHIN_S
    assert "Northwind Bank" in reply["text"]


async def test_cards_in_polish_list_the_answering_bank_and_name_the_stalled_one(
    system: System,
) -> None:
    await link_bank(system, ZOFIA, "northwind")
    await link_bank(system, ZOFIA, "libertas")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json=STALL)
    note = said(ZOFIA, "%(bank)s did not answer; showing the others.")
    started = time.monotonic()
    reply = await system.say(ZOFIA, "/freeze", lambda t: note in t, wait_s=WITHIN_S + 3)
    assert time.monotonic() - started < WITHIN_S
    assert "Northwind Bank" in reply["text"]
    labels = [b["text"] for b in buttons(reply)]
    assert labels and all("Libertas Federal" in label for label in labels)


async def test_with_every_bank_stalled_the_chat_still_answers_in_time(system: System) -> None:
    await link_bank(system, ALICE, "northwind")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json=STALL)
    for command in ("/transactions", "/freeze", "how much did I spend this month"):
        text, took = await timed(system, ALICE, command, "Northwind Bank")
        assert took < WITHIN_S, (command, took)
        assert "Northwind Bank is not answering right now" in text, (command, text)


async def test_the_first_balance_right_after_linking_a_two_second_bank_is_fresh(
    system: System,
) -> None:
    await link_bank(system, ALICE, "northwind")
    await system.env.bank.put("/sandbox/banks/northwind/faults", json={"latency_ms": 2000})
    started = time.monotonic()
    reply = await system.say(
        ALICE, "/balance", lambda t: "Your balances" in t or "⚠️" in t, wait_s=WITHIN_S + 3
    )
    took = time.monotonic() - started
    print(f"first /balance after linking, bank latency 2 s: {took:.2f} s")
    assert "Available:" in reply["text"], reply["text"]
    assert "as of" not in reply["text"] and "⚠️" not in reply["text"]
    assert took < WITHIN_S


async def test_two_chat_users_of_one_bank_customer_each_get_the_alert_once(
    system_on: System,
) -> None:
    system = system_on
    for user in (ALICE, OMAR):  # both approve as the bank's customer demo1
        await link_bank(system, user, "northwind")
    before = {u: {m["message_id"] for m in await system.chat.messages(u)} for u in (ALICE, OMAR)}
    await inject_fraud(system)
    asked = {u: tr(LANGUAGE[u])._("<b>Was this you?</b>")[3:-4] for u in (ALICE, OMAR)}
    alert: dict[int, Message] = {}
    for user, question in asked.items():

        def is_alert(text: str, question: str = question) -> bool:
            return question in text

        alert[user] = await system.expect(user, is_alert, before[user])
    async with asyncio.timeout(15):
        await system.env.bank_app[PUBLISHER].drain()
    await asyncio.sleep(1)  # a second delivery, were there one, would have arrived by now
    for user in (ALICE, OMAR):
        shown = [m for m in await system.chat.messages(user) if asked[user] in m["text"]]
        assert len(shown) == 1, user
    # each chat's buttons name its own alert
    assert button(alert[ALICE], "al:me:")[6:] != button(alert[OMAR], "al:me:")[6:]
    thanks = tr("en")._("Thanks, marked as yours. Nothing else to do.")
    await system.press(ALICE, alert[ALICE], button(alert[ALICE], "al:me:"), lambda t: thanks in t)
    frozen = tr("ar")._("Your card is frozen. Unfreeze it here or with /unfreeze.")[:12]
    done = await system.press(
        OMAR, alert[OMAR], button(alert[OMAR], "al:fz:"), lambda t: frozen in t
    )
    assert [b["callback_data"][:6] for b in buttons(done)] == ["al:uf:"]
    # Alice's message still says what she answered; nothing of Omar's reached her chat
    mine = next(
        m
        for m in await system.chat.messages(ALICE)
        if m["message_id"] == alert[ALICE]["message_id"]
    )
    assert thanks in mine["text"]
    assert not any(frozen in m["text"] for m in await system.chat.messages(ALICE))
