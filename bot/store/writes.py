"""One write transaction at a time per process on SQLite (the broker has the same gate).

A second SQLite writer waits in SQLite's busy handler, which polls with sleeps growing to
100 ms; when the broker delivers several alerts at once, the bot's writes (nonce, claim, sent)
would wake late and in no order. They queue on this gate instead, first come first served. On
PostgreSQL the gate does nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class WriteGate:
    def __init__(self, database_url: str) -> None:
        self._lock = asyncio.Lock() if database_url.startswith("sqlite") else None

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        if self._lock is None:
            yield
            return
        async with self._lock:
            yield
