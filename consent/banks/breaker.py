"""A circuit breaker per bank: after repeated failures, stop calling for a while."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class CircuitBreaker:
    """closed → (``threshold`` failures in a row) → open for ``cooldown`` → half-open (one trial
    call: success closes, failure re-opens)."""

    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    failures: int = 0
    opened_at: datetime | None = None

    def state(self, now: datetime) -> str:
        if self.opened_at is None:
            return "closed"
        return "open" if now - self.opened_at < self.cooldown else "half-open"

    def allow(self, now: datetime) -> bool:
        return self.state(now) != "open"

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until a trial call is allowed (0 when calls are allowed)."""
        if self.opened_at is None or self.state(now) != "open":
            return 0
        return max(1, int((self.opened_at + self.cooldown - now).total_seconds()) + 1)

    def record_success(self) -> None:
        self.failures = 0
        self.opened_at = None

    def record_failure(self, now: datetime) -> None:
        self.failures += 1
        if self.state(now) == "half-open" or self.failures >= self.threshold:
            self.opened_at = now
