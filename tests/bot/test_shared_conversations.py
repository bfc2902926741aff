"""Two bot processes behind one webhook address serve one user's /link in turns: the state of
the conversation lives in the bot's database, so whichever process gets the next step carries
on (round-robin proxy in front of two bot runtimes on one PostgreSQL database; one process on
SQLite handles updates in turn and needs none of this)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer

from bot.runtime import BotRuntime
from chatbank.proxy import create_proxy
from tests.bot.system import ALICE, System, start_system, stop_system
from tests.bot.test_conversations import link_bank
from tests.consent.broker_env import free_port

SECRET = "telegram-secret-token-for-tests"


pytestmark = pytest.mark.postgres


@pytest.fixture
async def two_bots(
    tmp_path: Path, sqlite_url: str, postgres_url: str
) -> AsyncIterator[tuple[System, BotRuntime]]:
    system = await start_system(tmp_path, sqlite_url, postgres_url, webhook_secret=SECRET)
    first = system.runtime
    second_port = free_port()
    proxy = TestServer(
        create_proxy([first.base_url(), f"http://127.0.0.1:{second_port}"]), host="127.0.0.1"
    )
    await proxy.start_server()
    settings = first.settings.model_copy(
        update={"port": second_port, "public_url": str(proxy.make_url("")).rstrip("/")}
    )
    second = BotRuntime(settings, clock=first.clock)
    await second.start()  # points Telegram's webhook at the proxy: the steps alternate
    yield system, second
    await second.stop()
    await proxy.close()
    await stop_system(system)


async def test_a_link_started_on_one_bot_process_is_finished_on_the_other(
    two_bots: tuple[System, BotRuntime],
) -> None:
    system, second = two_bots
    await link_bank(system, ALICE)
    reply = await system.say(ALICE, "/balance", lambda t: "balances" in t.lower())
    assert "Northwind" in reply["text"]
    assert second.application is not None and system.runtime.application is not None
