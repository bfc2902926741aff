"""Real Telegram on a phone: every link a user receives uses the public URLs (BANK_PUBLIC_URL,
CONSENT_PUBLIC_URL), never an address only this machine can open; the bot runs in webhook mode
behind its own public URL (BOT_PUBLIC_URL). (Fraud alerts carry only callback buttons; the
bank posts them to the broker's public URL, which a test cannot reach.)"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from yarl import URL

from tests.bot.system import ALICE, System, buttons, start_system, stop_system, url_button
from tests.bot.test_conversations import approval_message, link_bank

BANK = "https://bank.chatbank.test"
BROKER = "https://consent.chatbank.test"
PUBLIC = (BANK, BROKER)
_LINK = re.compile(r"""(?:https?://|href=["']?)[^\s"'<>]+""")


@pytest.fixture
async def public(tmp_path: Path, sqlite_url: str) -> AsyncIterator[System]:
    system = await start_system(
        tmp_path,
        sqlite_url,
        webhook_secret="telegram-secret-token-for-tests",
        public_urls={"bank": BANK, "broker": BROKER, "bot": "http://localhost:{port}"},
    )
    yield system
    await stop_system(system)


def _links(message: dict[str, Any]) -> list[str]:
    found = [str(b["url"]) for b in buttons(message) if b.get("url")]
    found += [str(b["login_url"]["url"]) for b in buttons(message) if b.get("login_url")]
    return found + _LINK.findall(message["text"])


async def test_every_link_a_user_receives_uses_the_public_urls(public: System) -> None:
    assert public.runtime.settings.mode == "webhook"
    assert public.runtime.telegram_webhook_url().startswith("http://localhost:")
    await public.say(ALICE, "/start", lambda t: "Welcome" in t)
    approval = URL(url_button(await approval_message(public, ALICE)))
    assert str(approval).startswith(f"{BANK}/banks/northwind/authorize?")
    assert approval.query["redirect_uri"] == f"{BROKER}/callback/northwind"
    before = {m["message_id"] for m in await public.chat.messages(ALICE)}
    await public.approve_at_bank(str(approval))
    await public.expect(ALICE, lambda t: "/balance" in t, before)
    second = await link_bank(public, ALICE, "libertas")
    for command, says in (
        ("/balance", "Your balances"),
        ("/transactions", "Transactions"),
        ("/consents", "What you shared"),
        ("/privacy", "What I hold about you"),
        ("/help", "What I can do"),
    ):
        await public.say(ALICE, command, lambda t, says=says: says in t)  # type: ignore[misc]
    messages = [m for m in await public.chat.messages(ALICE) if m["from_bot"]]
    # the approval buttons go once each link is done: count them as they were given
    links = [link for m in messages for link in _links(m)] + [str(approval), second]
    assert len([link for link in links if "/authorize?" in link]) == 2  # both approvals
    local = [link for link in links if not link.startswith(PUBLIC)]
    assert local == []
    for m in messages:
        everything = m["text"] + repr(m.get("reply_markup"))
        assert "127.0.0.1" not in everything and "localhost" not in everything
