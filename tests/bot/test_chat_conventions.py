"""Chat conventions: /consents with nothing linked, an unfinished /link that times out (the
user is told and the old buttons go), in English, Arabic and Polish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from localchat.testing import Message
from tests.bot.system import (
    ALICE,
    OMAR,
    ZOFIA,
    System,
    buttons,
    start_system,
    stop_system,
    url_button,
)

NOTHING_LINKED = {
    ALICE: "You have no active links",
    OMAR: "ليس لديك",
    ZOFIA: "Nie masz",
}
TIMED_OUT = {ALICE: "waited too long", OMAR: "/link", ZOFIA: "/link"}


@pytest.fixture
async def impatient(tmp_path: Path, sqlite_url: str) -> AsyncIterator[System]:
    s = await start_system(tmp_path, sqlite_url, link_timeout_s=1.0)
    yield s
    await stop_system(s)


@pytest.mark.parametrize("user", [ALICE, OMAR, ZOFIA])
async def test_consents_with_nothing_linked_answers_without_an_error(
    system: System, user: int
) -> None:
    reply = await system.say(user, "/consents", lambda t: NOTHING_LINKED[user] in t)
    assert buttons(reply) == [] and reply.get("reply_markup") is None
    await system.say(user, "/help", lambda t: "/balance" in t)
    texts = [m["text"] for m in await system.chat.messages(user) if m["from_bot"]]
    assert not any("went wrong" in t or "خطأ" in t or "Coś poszło" in t for t in texts)


async def test_an_unfinished_link_times_out_tells_the_user_and_removes_the_buttons(
    impatient: System,
) -> None:
    picker = await impatient.say(ALICE, "/link", lambda t: "Which bank" in t)
    scopes = await impatient.press(ALICE, picker, "lk:bank:northwind", lambda t: "what may" in t)
    assert buttons(scopes)
    told = await impatient.expect(ALICE, lambda t: TIMED_OUT[ALICE] in t, wait_s=10)
    assert "/link" in told["text"]
    messages = await impatient.chat.messages(ALICE)
    flow = next(m for m in messages if m["message_id"] == scopes["message_id"])
    assert buttons(flow) == []  # the ended flow's buttons are gone, as Telegram shows an edit
    again = await impatient.say(ALICE, "/link", lambda t: "Which bank" in t)  # starts afresh
    assert buttons(again)


async def test_the_approve_button_goes_once_the_link_is_done(system: System) -> None:
    """An old "Approve at …" button of a finished link is no longer live, whatever the user
    did in between (here: /balance and /transactions, which keep their own flow state)."""
    picker = await system.say(ALICE, "/link", lambda t: "Which bank" in t)
    scopes = await system.press(ALICE, picker, "lk:bank:northwind", lambda t: "what may" in t)
    durations = await system.press(ALICE, scopes, "lk:next", lambda t: "how long" in t.lower())
    days = next(b for b in buttons(durations) if str(b.get("callback_data")).startswith("lk:d"))
    disclosure = await system.press(ALICE, durations, days["callback_data"], lambda t: "<b>" in t)
    approve = await system.press(ALICE, disclosure, "lk:ok", lambda t: "approve" in t)
    url = url_button(approve)
    await system.say(ALICE, "/balance", lambda t: "link" in t)
    await system.approve_at_bank(url)
    await system.expect(ALICE, lambda t: "is linked" in t)

    def gone(ms: list[Message]) -> bool:
        old = next(m for m in ms if m["message_id"] == approve["message_id"])
        return not buttons(old)

    messages = await system.chat.wait_for(ALICE, gone)
    old = next(m for m in messages if m["message_id"] == approve["message_id"])
    assert "approve" in old["text"]  # the text stays, only the button went
