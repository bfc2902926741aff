"""The per-subject token buckets in PostgreSQL, shared by every broker process.

One statement refills the subject's bucket for the time passed, spends a token if there is one,
and says whether it spent; the row lock PostgreSQL takes for the upsert
serializes two processes spending for the same subject, so the limit is exact across processes.
It runs on connections of its own (:class:`PgConnections`, four: with two, 64 concurrent
readers queued for them), one round trip per read.
"""

from __future__ import annotations

from datetime import datetime

from consent.service.ratelimit import rate_limited
from consent.store.pgpool import PgConnections

# ``tokens`` below zero records a refused spend: the bucket then really holds tokens + 1 (in
# [0, 1)), so one statement both decides and tells the caller what it decided
SPEND_SQL = """
INSERT INTO rate_bucket AS b (subject_id, tokens, updated_s)
VALUES ($1, $2 - 1.0, $3)
ON CONFLICT (subject_id) DO UPDATE SET
    tokens = LEAST(
        $2,
        CASE WHEN b.tokens < 0 THEN b.tokens + 1.0 ELSE b.tokens END
        + GREATEST(0.0, $3 - b.updated_s) * $2 / 60.0
    ) - 1.0,
    updated_s = GREATEST(b.updated_s, $3)
RETURNING tokens
"""


class PostgresRateLimiter:
    def __init__(self, dsn: str, per_minute: int, size: int = 4) -> None:
        self.per_minute = per_minute
        self.connections = PgConnections(dsn, size)

    async def open(self) -> None:
        await self.connections.open()

    async def close(self) -> None:
        await self.connections.close()

    async def acquire(self, subject_id: str, now: datetime) -> None:
        """Spend one read for ``subject_id`` or raise 429 with the seconds to wait."""
        capacity = float(self.per_minute)
        conns = self.connections
        conn = await conns.take()
        try:
            row = await conn.fetchrow(SPEND_SQL, subject_id, capacity, now.timestamp())
        except BaseException:
            conns.discard(conn)
            raise
        conns.give(conn)
        left = float(row["tokens"])
        if left < 0.0:
            raise rate_limited(left + 1.0, capacity)
