"""Talk to a person at the bank, end to end in English, Arabic and Polish: the chat is handed
to an agent at the bank's console, messages go both ways through the broker, card numbers are
masked at the bank and deleted from the chat, commands still work, and a rating closes it."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import select

from bank_mock import dlp
from bank_mock.support import DESK, Conversation
from bot.handlers.support import has_card_number
from bot.i18n import tr
from bot.runtime import BotRuntime
from consent.api.keys import BROKER
from consent.store.tables import SupportConversation, SupportMessage
from tests.bot.system import ALICE, OMAR, ZOFIA, System, button
from tests.bot.test_conversations import BANK_NAMES, LANGUAGE, link_bank

PAN = "4539578763621486"  # Luhn-valid
SPACED = "4539 5787 6362 1486"
CASES = [
    (ALICE, "northwind", "talk to my bank", "Sarah", "My card was charged twice", "Thanks!"),
    (OMAR, "nakheel", "تحدث مع مصرفي", "ليلى", "خُصم المبلغ من بطاقتي مرتين", "شكرًا لكِ"),
    (ZOFIA, "wisla", "czat z bankiem", "Katarzyna", "Karta obciążona dwa razy", "Dziękuję!"),
]


def plain(text: str) -> str:
    """The text without its bidi isolates and marks (Arabic messages carry them)."""
    return re.sub("[\u2066-\u2069\u200f]", "", text)


class Agent:
    """A member of the bank's staff at the agent console (over HTTP, as the browser would)."""

    def __init__(self, bank: TestClient[Any, Any], bank_id: str) -> None:
        self.bank, self.bank_id, self.csrf = bank, bank_id, ""

    async def login(self) -> None:
        resp = await self.bank.post(
            f"/banks/{self.bank_id}/agent/login",
            data={"username": "agent1", "password": "agent-demo"},
        )
        found = re.search(r'name="csrf" value="([^"]+)"', await resp.text())
        assert resp.status == 200 and found, await resp.text()
        self.csrf = found.group(1)

    async def post(self, conv: Conversation, action: str, **form: str) -> None:
        url = f"/banks/{self.bank_id}/agent/conversations/{conv.conversation_id}/{action}"
        resp = await self.bank.post(url, data={"csrf": self.csrf, **form})
        assert resp.status == 200, await resp.text()


async def _conversation(system: System, bank_id: str) -> Conversation:
    desk = system.env.bank_app[DESK]
    async with asyncio.timeout(10):
        while True:
            found = [c for c in desk.of_bank(bank_id) if c.status != "closed"]
            if found:
                return found[-1]
            await asyncio.sleep(0.05)


async def _typing(system: System, user: int) -> bool:
    """Did the bot show "typing…" in the user's chat?"""
    actions = await system.chat.chat_actions()
    return any((a["chat_id"], a["action"]) == (user, "typing") for a in actions)


async def _at_bank(system: System, conv: Conversation, text: str) -> None:
    desk = system.env.bank_app[DESK]
    async with asyncio.timeout(10):
        while not any(m.text == text for m in desk.messages.get(conv.conversation_id, [])):  # noqa: ASYNC110 - the bank's state, in this process
            await asyncio.sleep(0.05)


@pytest.mark.parametrize(("user", "bank_id", "ask", "agent_name", "first", "reply"), CASES)
async def test_a_person_at_the_bank_answers_in_the_chat(
    system: System, user: int, bank_id: str, ask: str, agent_name: str, first: str, reply: str
) -> None:
    t = tr(LANGUAGE[user])
    bank = BANK_NAMES[bank_id]
    system.env.clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday, desks open
    await link_bank(system, user, bank_id)
    started = await system.say(user, ask, lambda x: bank in x and "/balance" in x)
    assert button(started, "hs:end")
    # nobody at the console yet: the message is kept and the bot says by when
    busy = t._(
        "Everyone at %(bank)s is busy. Your message is kept, and someone will answer here "
        "by %(when)s.",
        bank="\x00",
        when="",
    ).split("\x00")[0]
    queued = await system.say(user, first, lambda x: "🕘" in x)
    assert bank in queued["text"] and busy.strip() in queued["text"]
    conv = await _conversation(system, bank_id)
    await _at_bank(system, conv, first)
    agent = Agent(system.env.bank, bank_id)
    await agent.login()
    before = {m["message_id"] for m in await system.chat.messages(user)}
    await agent.post(conv, "assign")
    joined = await system.expect(user, lambda x: "👤" in x, before)
    assert agent_name in plain(joined["text"]) and bank in plain(joined["text"])
    # the agent types (Telegram's "typing…"), then answers with a card number: masked
    await agent.post(conv, "typing")
    await agent.post(conv, "messages", text=f"{PAN}?")
    label = t._("%(name)s · %(bank)s representative", name=agent_name, bank=bank)
    answer = await system.expect(user, lambda x: "•••• 1486" in x, before)
    assert label in plain(answer["text"]) and PAN not in answer["text"]
    # "typing…" is its own event: it may arrive after the answer, but it arrives
    async with asyncio.timeout(10):
        while not await _typing(system, user):  # noqa: ASYNC110 - polls HTTP
            await asyncio.sleep(0.05)
    # the customer replies: it reaches the console; the bot itself says nothing
    mine = len(await system.chat.messages(user))
    await system.chat.send(user, reply)
    await _at_bank(system, conv, reply)
    # a full card number typed in the chat is deleted at once and never forwarded
    before = {m["message_id"] for m in await system.chat.messages(user)}
    await system.chat.send(user, f"{t._('My card')} {SPACED}")
    await system.expect(user, lambda x: "🛑" in x, before)
    shown = await system.chat.messages(user)
    assert not any(SPACED in m["text"] or PAN in m["text"] for m in shown)
    assert len(shown) == mine + 2  # the reply and the warning; the card number has gone
    at_bank = system.env.bank_app[DESK].messages[conv.conversation_id]
    assert not any("1486" in m.text for m in at_bank if m.role == "customer")
    # commands still work while a person is on
    await system.say(user, "/balance", lambda x: bank in x and "🏦" not in x[:2])
    # the agent closes: the chat is the bot's again, and a rating is asked
    before = {m["message_id"] for m in await system.chat.messages(user)}
    await agent.post(conv, "close")
    left = await system.expect(user, lambda x: "👋" in x, before)
    assert agent_name in plain(left["text"])
    rated = await system.press(user, left, button(left, "hs:r:5:"), lambda x: "★★★★★" in x)
    assert "☆" not in rated["text"]
    async with asyncio.timeout(10):
        while conv.rating != 5:  # noqa: ASYNC110 - the bank's state, in this process
            await asyncio.sleep(0.05)
    # free text is the bot's again
    await system.say(user, "/help", lambda x: "/link" in x)


async def test_outside_business_hours_the_answer_arrives_later(system: System) -> None:
    # the test clock: Friday 19:00 UTC, after hours in London
    await link_bank(system, ALICE)
    await system.say(ALICE, "/support", lambda x: "Northwind Bank" in x and "/balance" in x)
    away = await system.say(ALICE, "Is anyone there?", lambda x: "🕘" in x)
    assert "away now" in away["text"] and "23" in away["text"]  # Monday the 23rd
    conv = await _conversation(system, "northwind")
    await _at_bank(system, conv, "Is anyone there?")
    system.env.clock.now = datetime(2026, 11, 23, 9, 5, tzinfo=UTC)  # Monday morning
    agent = Agent(system.env.bank, "northwind")
    await agent.login()
    before = {m["message_id"] for m in await system.chat.messages(ALICE)}
    await agent.post(conv, "messages", text="Good morning, yes: how can I help?")
    answer = await system.expect(ALICE, lambda x: "Good morning" in x, before)
    assert "Sarah · Northwind Bank representative" in answer["text"]
    await system.expect(ALICE, lambda x: "joined the chat" in x and "Sarah" in x, before)
    joined = [m for m in await system.chat.messages(ALICE) if "joined the chat" in m["text"]]
    assert len(joined) == 1  # answering took the conversation: the chat is told once
    # the conversation is in the user's export, and goes with deletion
    page = await system.say(ALICE, "/privacy", lambda x: "What I hold" in x)
    export = await system.press(ALICE, page, "pv:export", lambda x: "in this file" in x)
    assert "1 chat with your bank" in export["text"]
    exported = json.loads(await system.chat.file(export["document"]["file_id"]))
    (chat,) = exported["broker"]["support_conversations"]
    words = [(m["role"], m["kind"], m["text"]) for m in chat["messages"]]
    assert words == [
        ("customer", "message", "Is anyone there?"),
        ("bank_representative", "joined", None),
        ("bank_representative", "message", "Good morning, yes: how can I help?"),
    ]
    ask = await system.press(ALICE, page, "pv:del", lambda x: "Delete everything" in x)
    await system.press(ALICE, ask, "pv:delok", lambda x: "forgot you" in x)
    async with system.env.broker.app[BROKER].sessions() as session:
        assert not (await session.exec(select(SupportMessage))).all()
        assert not (await session.exec(select(SupportConversation))).all()


async def test_ending_the_chat_from_the_chat_tells_the_bank(system: System) -> None:
    await link_bank(system, ALICE)
    started = await system.say(ALICE, "I need a human", lambda x: "Northwind Bank" in x)
    await system.say(ALICE, "hello", lambda x: "🕘" in x)
    conv = await _conversation(system, "northwind")
    await system.press(ALICE, started, "hs:end", lambda x: "ended" in x)
    async with asyncio.timeout(10):
        while conv.status != "closed":  # noqa: ASYNC110 - the bank's state, in this process
            await asyncio.sleep(0.05)
    assert conv.closed_by == "customer"
    await system.say(ALICE, "hello again", lambda x: "Hello" in x or "didn't get" in x)


async def test_a_link_without_the_chat_scope_says_how_to_get_one(system: System) -> None:
    await link_bank(system, ALICE, drop=("support",))
    answer = await system.say(ALICE, "/support", lambda x: "🏦" in x)
    assert "/link" in answer["text"] and "Northwind Bank" in answer["text"]
    assert not system.env.bank_app[DESK].conversations


async def test_a_failing_bank_is_explained_and_the_chat_survives_a_bot_restart(
    system: System,
) -> None:
    await link_bank(system, ALICE)
    await system.say(ALICE, "/support", lambda x: "Northwind Bank" in x and "/balance" in x)
    await system.env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 1.0})
    failed = await system.say(ALICE, "are you there?", lambda x: "🕘" not in x)
    assert "Northwind" in failed["text"] or "bank" in failed["text"].lower()
    assert not system.env.bank_app[DESK].conversations  # nothing half-sent
    await system.env.bank.put("/sandbox/banks/northwind/faults", json={"error_rate": 0.0})
    # the bot restarts: the chat with the bank is in its database, so it carries on
    settings, clock = system.runtime.settings, system.runtime.clock
    await system.runtime.stop()
    system.runtime = BotRuntime(settings, clock=clock)
    await system.runtime.start()
    await system.say(ALICE, "are you there now?", lambda x: "🕘" in x)
    conv = await _conversation(system, "northwind")
    await _at_bank(system, conv, "are you there now?")
    # the bot's database holds handles, never the words
    raw = system.bot_db.read_bytes()
    for path in system.bot_db.parent.glob("bot.db-wal"):
        raw += path.read_bytes()
    assert b"are you there" not in raw and conv.conversation_id.encode() not in raw


@given(st.text(alphabet="0123456789 -abc", max_size=40))
@settings(max_examples=300, deadline=None)
def test_the_chat_and_the_bank_agree_on_what_a_card_number_is(text: str) -> None:
    assert has_card_number(text) == dlp.has_card_number(text)
