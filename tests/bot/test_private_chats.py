"""The bot serves private chats only, and a button acts only for the user whose chat it is in.

Group chats and several users in one chat come from localchat's test API."""

from __future__ import annotations

import asyncio

from tests.bot.system import ALICE, OMAR, ZOFIA, System, button, buttons
from tests.bot.test_alerts_and_privacy import alice_account
from tests.bot.test_conversations import link_bank

GROUP = -100123


async def bot_replies(system: System, chat: int, count: int) -> list[str]:
    messages = await system.chat.wait_for(
        chat, lambda ms: len([m for m in ms if m["from_bot"]]) >= count
    )
    return [m["text"] for m in messages if m["from_bot"]]


async def test_in_a_group_every_command_and_text_gets_the_private_only_answer(
    system: System,
) -> None:
    await link_bank(system, ALICE)
    await system.chat.add_group(GROUP, "family")
    sent = ["/balance", "/transactions", "/privacy", "/link", "what's my balance?", "/start"]
    for text in sent:
        await system.chat.send(ALICE, text, chat_id=GROUP)
    await system.chat.send(OMAR, "/consents", chat_id=GROUP)
    await system.chat.send(ZOFIA, "/help", chat_id=GROUP)
    replies = await bot_replies(system, GROUP, len(sent) + 2)
    messages = await system.chat.messages(GROUP)
    assert all(m["reply_markup"] is None for m in messages if m["from_bot"])  # no buttons
    assert replies.count("I only work in private chats. Write to me directly.") == len(sent)
    assert sum("\u200f" in r for r in replies) == 1  # Omar's answer is in Arabic
    assert not any("£" in r or "Northwind" in r or "ending" in r for r in replies)
    # nothing was said in Alice's private chat because of the group
    assert not any("£" in m["text"] for m in await system.chat.messages(ALICE) if m["from_bot"])


async def test_a_button_pressed_by_another_user_does_nothing_to_either(system: System) -> None:
    await link_bank(system, ALICE)
    await link_bank(system, OMAR)
    listing = await system.say(ALICE, "/privacy", lambda t: "What I hold" in t)
    before_alice = await system.chat.messages(ALICE)
    before_omar = await system.chat.messages(OMAR)
    answers = len(await system.chat.callback_answers())
    await system.chat.press(
        OMAR, listing["message_id"], button(listing, "pv:export"), chat_id=ALICE
    )
    async with asyncio.timeout(10):
        while len(await system.chat.callback_answers()) <= answers:  # noqa: ASYNC110 - HTTP
            await asyncio.sleep(0.05)
    answer = (await system.chat.callback_answers())[-1]
    assert "someone else" in str(answer["text"]) or "\u200f" in str(answer["text"])
    await asyncio.sleep(0.3)  # nothing else arrives in either chat
    assert await system.chat.messages(ALICE) == before_alice
    assert await system.chat.messages(OMAR) == before_omar


async def test_a_button_in_a_group_is_refused_with_an_answer(system: System) -> None:
    await system.chat.add_group(GROUP, "friends")
    # a keyboard in the group can only come from before the rule; forge one through the Bot API
    bot = system.runtime.application
    assert bot is not None
    from telegram import InlineKeyboardButton, InlineKeyboardMarkup

    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("x", callback_data="pv:export")]])
    sent = await bot.bot.send_message(GROUP, "old", reply_markup=keyboard)
    await system.chat.press(ALICE, sent.message_id, "pv:export", chat_id=GROUP)
    async with asyncio.timeout(10):
        while not await system.chat.callback_answers():  # noqa: ASYNC110 - polls HTTP
            await asyncio.sleep(0.05)
    answer = (await system.chat.callback_answers())[-1]
    assert answer["text"] == "I only work in private chats. Write to me directly."
    await asyncio.sleep(0.3)
    assert len(await system.chat.messages(GROUP)) == 1
    assert buttons((await system.chat.messages(GROUP))[0])
    assert alice_account(system)  # the bank is untouched by all this
