"""A fraud alert's whole life in the chat: answers in every order converge on the bank's state,
the edited message keeps the payment's story, unfreeze from the alert and with /unfreeze, and
"It was me" without card controls. In English, Arabic and Polish."""

from __future__ import annotations

import asyncio

import pytest

from bank_mock.keys import BANKS
from localchat.testing import Message
from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, buttons
from tests.bot.test_alerts_and_privacy import alice_account, inject_fraud
from tests.bot.test_conversations import link_bank

FROZEN = {"en": "frozen", "ar": "مجمّدة", "pl": "zamrożona"}
STORY = ("Luxe Watches", "7")  # the merchant and (part of) the card ending stay after answers


def card_status(system: System) -> str:
    bank = system.env.bank_app[BANKS]["northwind"]
    card = bank.cards[bank.accounts[alice_account(system)].card_ids[0]]
    return str(card.status.value)


def actions(message: Message) -> list[str]:
    return sorted(str(b["callback_data"])[:5] for b in buttons(message))


async def alert_for(system: System, user: int) -> Message:
    before = {m["message_id"] for m in await system.chat.messages(user)}
    await inject_fraud(system)
    return await system.expect(user, lambda t: "Luxe Watches" in t, before)


async def tap(system: System, user: int, message: Message, prefix: str) -> Message:
    """Press the button starting ``prefix`` and wait for the message to change."""
    return await system.press(user, message, button(message, prefix), lambda t: True)


async def test_it_was_me_then_freeze_ends_frozen_then_unfreeze_then_freeze_again(
    system: System,
) -> None:
    await link_bank(system, ALICE)
    alert = await alert_for(system, ALICE)
    assert actions(alert) == ["al:fz", "al:me"]
    mine = await tap(system, ALICE, alert, "al:me:")
    assert "marked as yours" in mine["text"] and all(s in mine["text"] for s in STORY)
    assert actions(mine) == ["al:fz"] and "after all" in str(buttons(mine))
    assert card_status(system) == "Active"
    frozen = await tap(system, ALICE, mine, "al:fz:")
    assert mine["message_id"] == frozen["message_id"]
    assert "frozen" in frozen["text"] and "already answered" not in frozen["text"]
    assert all(s in frozen["text"] for s in STORY) and "£" in frozen["text"]
    assert actions(frozen) == ["al:uf"] and card_status(system) == "Frozen"
    thawed = await tap(system, ALICE, frozen, "al:uf:")
    assert "active again" in thawed["text"] and all(s in thawed["text"] for s in STORY)
    assert actions(thawed) == ["al:fz"] and card_status(system) == "Active"
    again = await tap(system, ALICE, thawed, "al:fz:")
    assert actions(again) == ["al:uf"] and card_status(system) == "Frozen"


@pytest.mark.parametrize("first", ["al:me:", "al:fz:"])
async def test_both_answers_tapped_at_once_converge_on_frozen_whatever_comes_first(
    system: System, first: str
) -> None:
    await link_bank(system, ALICE)
    alert = await alert_for(system, ALICE)
    second = "al:fz:" if first == "al:me:" else "al:me:"
    await system.chat.press(ALICE, alert["message_id"], button(alert, first))
    await system.chat.press(ALICE, alert["message_id"], button(alert, second))

    def settled(ms: list[Message]) -> bool:
        edited = next(m for m in ms if m["message_id"] == alert["message_id"])
        return "frozen" in edited["text"]

    messages = await system.chat.wait_for(ALICE, settled, timeout=10)
    async with asyncio.timeout(10):  # both presses answered, then the message stays frozen
        while len(await system.chat.callback_answers()) < 2:  # noqa: ASYNC110 - polls HTTP
            await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    messages = await system.chat.messages(ALICE)
    final = next(m for m in messages if m["message_id"] == alert["message_id"])
    assert "frozen" in final["text"] and actions(final) == ["al:uf"]
    assert card_status(system) == "Frozen"
    assert not any("already answered" in m["text"] for m in messages)


async def test_it_was_me_needs_no_card_controls_and_no_freeze_is_offered(system: System) -> None:
    await link_bank(system, ALICE, drop=("card_controls",))
    alert = await alert_for(system, ALICE)
    assert actions(alert) == ["al:me"]
    mine = await tap(system, ALICE, alert, "al:me:")
    assert "marked as yours" in mine["text"] and "not answering" not in mine["text"]
    assert all(s in mine["text"] for s in STORY) and buttons(mine) == []


async def test_unfreeze_command_lists_frozen_cards_and_unfreezes_one(system: System) -> None:
    await link_bank(system, ALICE)
    none = await system.say(ALICE, "/unfreeze", lambda t: "frozen" in t)
    assert "None of your cards" in none["text"]
    offer = await system.say(ALICE, "/freeze", lambda t: "Which card" in t)
    done = await tap(system, ALICE, offer, "cd:fz:")
    assert "is frozen" in done["text"] and buttons(done) == [] and card_status(system) == "Frozen"
    offer = await system.say(ALICE, "/unfreeze", lambda t: "Which card" in t)
    assert "Northwind" in str(buttons(offer))
    done = await tap(system, ALICE, offer, "cd:uf:")
    assert "active again" in done["text"] and card_status(system) == "Active"


async def test_cards_without_card_controls_are_explained(system: System) -> None:
    await link_bank(system, ALICE, drop=("card_controls",))
    reply = await system.say(ALICE, "/freeze", lambda t: "card controls" in t)
    assert "/link" in reply["text"]


@pytest.mark.parametrize(("user", "language"), [(OMAR, "ar"), (ZOFIA, "pl")])
async def test_the_alert_lifecycle_speaks_arabic_and_polish(
    system: System, user: int, language: str
) -> None:
    await link_bank(system, user)
    alert = await alert_for(system, user)
    frozen = await tap(system, user, alert, "al:fz:")
    assert FROZEN[language] in frozen["text"] and "Luxe Watches" in frozen["text"]
    assert "Unfreeze" not in str(buttons(frozen)) and actions(frozen) == ["al:uf"]
    thawed = await tap(system, user, frozen, "al:uf:")
    assert actions(thawed) == ["al:fz"] and card_status(system) == "Active"
