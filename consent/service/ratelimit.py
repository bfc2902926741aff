"""Rate limits: a human's pace per subject, and a ceiling per platform client.

:class:`RateLimiter` is the interface the authorization step uses; :class:`TokenBuckets` keeps
its buckets in this process (SQLite: one broker process). With several broker processes on
PostgreSQL, :class:`consent.store.ratelimit_pg.PostgresRateLimiter` implements the same one
async method over a table, so a subject's limit holds whichever process serves the request; the
app factory (consent.app) chooses the backend once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


class RateLimiter(Protocol):
    async def take(self, key: str, now: datetime) -> int | None:
        """Spend one request for ``key``: None if it may go ahead, otherwise the seconds to wait
        (the refused request spends nothing)."""
        ...


@dataclass
class TokenBuckets:
    """A token bucket per key (``per_minute`` capacity, refilled continuously), in memory.

    Keys whose bucket has refilled completely are forgotten once more than ``max_keys`` are
    held, so the memory stays bounded by the number of recently active keys."""

    per_minute: int
    max_keys: int = 100_000
    _buckets: dict[str, tuple[float, datetime]] = field(default_factory=dict)

    async def take(self, key: str, now: datetime) -> int | None:
        return self.take_now(key, now)

    def take_now(self, key: str, now: datetime) -> int | None:
        capacity = float(self.per_minute)
        tokens = self._tokens(key, now)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) * 60.0 / capacity))
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)
        return None

    def _tokens(self, key: str, now: datetime) -> float:
        capacity = float(self.per_minute)
        tokens, last = self._buckets.get(key, (capacity, now))
        return min(capacity, tokens + max(0.0, (now - last).total_seconds()) * capacity / 60.0)

    def _forget_full(self, now: datetime) -> None:
        full = [k for k in self._buckets if self._tokens(k, now) >= self.per_minute]
        for k in full:
            del self._buckets[k]


@dataclass
class Limits:
    """The broker's two limits: reads per subject, requests per platform client."""

    subjects: RateLimiter
    clients: RateLimiter
