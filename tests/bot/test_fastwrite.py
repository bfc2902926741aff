"""The webhook's writes on SQLite (bot.store.fastwrite): the same rows and outcomes as the
async store, the nonce and the claim in one transaction, a locked database waited for."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from bot.store import deliveries
from bot.store.db import make_engine, session_factory, upgrade_async
from bot.store.deliveries import Claim
from bot.store.fastwrite import SqliteDeliveries, sqlite_file


async def _store(tmp_path: Path) -> tuple[str, SqliteDeliveries]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    await upgrade_async(url)
    path = sqlite_file(url)
    assert path is not None
    return url, SqliteDeliveries(path)


async def test_nonce_and_claim_commit_together_and_a_replay_writes_nothing(tmp_path: Path) -> None:
    url, fast = await _store(tmp_path)
    assert await fast.first_time_and_claim("nonce:a", "pc:msg_1", 100, 30) is Claim.CLAIMED
    # a replayed nonce claims nothing, whatever delivery it names
    assert await fast.first_time_and_claim("nonce:a", "pc:msg_2", 100, 30) is None
    engine = make_engine(url)
    sessions = session_factory(engine)
    try:
        # the async store sees the same rows: msg_2 is free, msg_1 is held
        assert await deliveries.claim(sessions, "pc:msg_2", 100, 30) is Claim.CLAIMED
        assert await deliveries.claim(sessions, "pc:msg_1", 101, 30) is Claim.BUSY
        await fast.mark_sent("pc:msg_1", 102, "pc:fa-1")
        assert await deliveries.alert_shown(sessions, "pc:fa-1")
        assert await deliveries.claim(sessions, "pc:msg_1", 103, 30) is Claim.SENT
        assert await fast.first_time_and_claim("nonce:b", "pc:msg_1", 104, 30) is Claim.SENT
        # a claim older than the lease (its process died) is taken over
        assert await fast.first_time_and_claim("nonce:c", "pc:msg_2", 200, 30) is Claim.CLAIMED
        assert await fast.first_time("nonce:c", 200) is False
        assert await fast.first_time("nonce:d", 200) is True
    finally:
        fast.close()
        await engine.dispose()


async def test_a_write_lock_held_elsewhere_is_waited_for_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    _, fast = await _store(tmp_path)
    other = sqlite3.connect(tmp_path / "bot.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    claim = asyncio.create_task(fast.first_time_and_claim("nonce:a", "pc:msg_1", 100, 30))
    await asyncio.sleep(0.1)
    assert not claim.done()
    other.execute("COMMIT")
    assert await claim is Claim.CLAIMED
    ticker.cancel()
    assert ticks >= 10  # the loop kept running while the claim waited
    assert fast.lock_retries > 0
    other.close()
    fast.close()
