"""The bot's write gate: deliveries' SQLite writes take turns in one process."""

from __future__ import annotations

import asyncio

import pytest

from bot.store.writes import WriteGate


@pytest.mark.parametrize(
    ("url", "overlap"),
    [("sqlite+aiosqlite:///bot.db", False), ("postgresql://db/bot", True)],
)
async def test_sqlite_writes_take_turns(url: str, overlap: bool) -> None:
    gate, inside, most = WriteGate(url), 0, 0

    async def write() -> None:
        nonlocal inside, most
        async with gate():
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.01)
            inside -= 1

    await asyncio.gather(*(write() for _ in range(5)))
    assert (most > 1) is overlap
