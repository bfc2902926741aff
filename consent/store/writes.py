"""One write transaction at a time per process on SQLite.

SQLite has one writer at a time per database. Left to itself, a second writer waits in SQLite's
busy handler, which polls with sleeps growing to 100 ms: under a stream of writes (alerts
ingested while the relay records deliveries) waiters wake late and in no order, and the
latency of a write grows a tail of hundreds of milliseconds. Writers of one process queue on
this gate instead (first come, first served, woken the moment the previous one commits); the
busy handler is left for the rare writer of another process or connection. On PostgreSQL the
gate does nothing: row locks serialize only what conflicts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class WriteGate:
    def __init__(self, dialect: str) -> None:
        self._lock = asyncio.Lock() if dialect == "sqlite" else None

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        """Hold the gate for one write transaction (open and commit it inside)."""
        if self._lock is None:
            yield
            return
        async with self._lock:
            yield
