"""Per-subject rate limit at human pace: a token bucket per subject (in this process)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from consent.service.errors import BrokerError


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
            wait = int((1.0 - tokens) * 60.0 / capacity) + 1
            self._buckets[subject_id] = (tokens, now)
            raise BrokerError(
                429,
                "rate_limited",
                f"too many requests; try again in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[subject_id] = (tokens - 1.0, now)
