"""The per-subject token buckets in PostgreSQL, shared by every broker process.

One statement refills each subject's bucket for the time passed, spends a token if there is one,
and says whether it did; the row lock PostgreSQL takes for the upsert serializes two processes
spending for the same subject, so the limit is exact across processes.

Reads that arrive together share a round trip: spends queue up while one statement is in
flight, and the next statement takes them all at once (one per subject; a second read of the
same subject waits for the following statement). Rows are locked in subject order, so two
processes' statements never deadlock.
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

from consent.store.pgpool import PgConnections

# ``tokens`` below zero records a refused spend: the bucket then really holds tokens + 1 (in
# [0, 1)), so one statement both decides and tells the caller what it decided
SPEND_SQL = """
INSERT INTO rate_bucket AS b (subject_id, tokens, updated_s)
SELECT s, $2 - 1.0, t FROM unnest($1::text[], $3::float8[]) AS u(s, t) ORDER BY s
ON CONFLICT (subject_id) DO UPDATE SET
    tokens = LEAST(
        $2,
        CASE WHEN b.tokens < 0 THEN b.tokens + 1.0 ELSE b.tokens END
        + GREATEST(0.0, EXCLUDED.updated_s - b.updated_s) * $2 / 60.0
    ) - 1.0,
    updated_s = GREATEST(b.updated_s, EXCLUDED.updated_s)
RETURNING subject_id, tokens
"""

_Spend = tuple[str, float, "asyncio.Future[float]"]


class PostgresRateLimiter:
    def __init__(self, dsn: str, per_minute: int) -> None:
        self.per_minute = per_minute
        self.connections = PgConnections(dsn, 1)
        self._queue: list[_Spend] = []
        self._flusher: asyncio.Task[None] | None = None

    async def open(self) -> None:
        await self.connections.open()

    async def close(self) -> None:
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        await self.connections.close()

    async def take(self, key: str, now: datetime) -> int | None:
        """Spend one read for ``key`` (a subject): None if it may go ahead, otherwise the
        seconds to wait (the refused read spends nothing): the
        :class:`consent.service.ratelimit.RateLimiter` interface."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.append((key, now.timestamp(), done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        left = await asyncio.shield(done)  # a cancelled caller must not lose its neighbours' spend
        if left >= 0.0:
            return None
        tokens = left + 1.0  # what the bucket holds, in [0, 1)
        return max(1, math.ceil((1.0 - tokens) * 60.0 / self.per_minute))

    async def _flush(self) -> None:
        while self._queue:
            batch: dict[str, _Spend] = {}
            later: list[_Spend] = []
            for spend in self._queue:
                if spend[0] in batch:
                    later.append(spend)  # the same subject again: the next statement
                else:
                    batch[spend[0]] = spend
            self._queue = later  # spends arriving meanwhile join it
            await self._spend(list(batch.values()))

    async def _spend(self, batch: list[_Spend]) -> None:
        conns = self.connections
        try:
            conn = await conns.take()
            try:
                rows = await conn.fetch(
                    SPEND_SQL,
                    [s for s, _, _ in batch],
                    float(self.per_minute),
                    [t for _, t, _ in batch],
                )
            except BaseException:
                conns.discard(conn)
                raise
            conns.give(conn)
        except BaseException as e:
            failure = e if isinstance(e, Exception) else ConnectionError("rate limiter stopped")
            for _, _, done in batch:
                if not done.done():
                    done.set_exception(failure)
            if not isinstance(e, Exception):
                raise
            return
        left = {row["subject_id"]: float(row["tokens"]) for row in rows}
        for subject_id, _, done in batch:
            if not done.done():
                done.set_result(left[subject_id])
