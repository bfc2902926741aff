"""Per-subject rate limit at human pace: a token bucket per subject.

:class:`RateLimiter` keeps the buckets in this process (SQLite: one broker process). With
several broker processes on PostgreSQL, :class:`consent.store.ratelimit_pg.PostgresRateLimiter`
keeps them in a table, so a subject's limit holds whichever process serves the request."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from consent.service.errors import BrokerError


def rate_limited(tokens: float, capacity: float) -> BrokerError:
    """The 429 for a bucket holding ``tokens`` (< 1), with the whole seconds to wait."""
    wait = int((1.0 - tokens) * 60.0 / capacity) + 1
    return BrokerError(
        429,
        "rate_limited",
        f"too many requests; try again in {wait} s",
        headers={"Retry-After": str(wait)},
    )


class Limiter(Protocol):
    per_minute: int

    async def acquire(self, subject_id: str, now: datetime) -> None:
        """Spend one read for ``subject_id`` or raise 429."""


@dataclass
class RateLimiter:
    per_minute: int
    _buckets: dict[str, tuple[float, datetime]] = field(default_factory=dict)

    def take(self, subject_id: str, now: datetime) -> None:
        """Spend one read for ``subject_id`` or raise 429 with the seconds to wait."""
        capacity = float(self.per_minute)
        tokens, last = self._buckets.get(subject_id, (capacity, now))
        tokens = min(capacity, tokens + (now - last).total_seconds() * capacity / 60.0)
        if tokens < 1.0:
            self._buckets[subject_id] = (tokens, now)
            raise rate_limited(tokens, capacity)
        self._buckets[subject_id] = (tokens - 1.0, now)

    async def acquire(self, subject_id: str, now: datetime) -> None:
        self.take(subject_id, now)
