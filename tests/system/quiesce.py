"""Kill the bot with ``kill -9`` while alert sends are in flight inside localchat, but never in
the window the Bot API cannot close (a message accepted by the chat, not yet recorded as sent by
the bot: a kill there shows it again after the restart, at least once by design, see
``bot/store/deliveries.py``).

"Quiesce, then kill": localchat holds every new ``sendMessage`` (``POST /api/hold-sends``, nothing
recorded); the test waits until at least one alert send is held and the bot's database records
every alert the chat has shown (its ``alert:`` rows, written with ``sent:`` by ``mark_sent``,
match the alert messages in the chat: the chat accepts nothing new meanwhile, so the count it
shows is fixed and the bot's can only catch up); then it kills the bot and releases the held
sends with an error, unrecorded. The held sends' claims belong to the dead bot: the broker's
retries must take them over after the lease and show those alerts, not take them for duplicates.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import make_engine

# PTB gives up on a Bot API call after 5 s (its read timeout) and the bot then drops its claim:
# a hold that lasts longer is released and tried again, so the held sends are live when the bot dies
HOLD_BUDGET_S = 4.0


@dataclass
class Quiesced:
    held: int  # alert sends inside localchat when the bot was killed
    pending: int  # the bot's pending claims right after the kill
    shown: int  # alert messages in the chat, all recorded by the bot, when it was killed
    attempts: int


async def _count(engine: AsyncEngine, prefix: str) -> int:
    async with engine.connect() as conn:
        found = await conn.scalar(
            text("SELECT count(*) FROM seen_deliveries WHERE id LIKE :p"), {"p": f"{prefix}:%"}
        )
    return int(found or 0)


async def kill_bot_quiesced(
    chat_url: str,
    bot_database_url: str,
    shown: Callable[[], Awaitable[int]],
    kill: Callable[[], None],
    timeout_s: float = 60.0,
) -> Quiesced:
    """Hold the sends, wait for the bot to record every shown alert with one alert send held,
    ``kill()`` the bot, release the held sends; ``shown()`` counts the alert messages in the chat.
    """
    engine = make_engine(bot_database_url)
    deadline = time.monotonic() + timeout_s
    attempts = 0
    try:
        async with aiohttp.ClientSession() as http:

            async def hold(on: bool) -> int:
                async with http.post(f"{chat_url}/api/hold-sends", json={"on": on}) as resp:
                    assert resp.status == 200, await resp.text()
                    return int((await resp.json())["held"])

            async def held() -> int:
                async with http.get(f"{chat_url}/api/held") as resp:
                    return int((await resp.json())["held"])

            while True:
                attempts += 1
                await hold(True)
                began = time.monotonic()
                while time.monotonic() - began < HOLD_BUDGET_S:
                    in_chat = await shown()  # fixed while holding
                    recorded = await _count(engine, "alert")
                    assert recorded <= in_chat, (recorded, in_chat)
                    waiting = await held()
                    if waiting >= 1 and recorded == in_chat:
                        kill()
                        pending = await _count(engine, "pending")
                        await hold(False)
                        return Quiesced(waiting, pending, in_chat, attempts)
                    await asyncio.sleep(0.02)
                # too long (a loaded machine): let the bot's sends go and try again
                await hold(False)
                assert time.monotonic() < deadline, (
                    f"the bot never recorded every alert the chat showed ({in_chat} shown, "
                    f"{recorded} recorded): one was shown twice or its sends stalled"
                )
                await asyncio.sleep(0.2)
    finally:
        await engine.dispose()
