"""The request's deadline: how long the platform will wait for an answer.

The platform sends the milliseconds it is still willing to wait in ``X-Request-Deadline-Ms``
(documented in ``consent/openapi.json``); the broker plans its bank calls to finish inside that,
keeping a small reserve to write the access log and answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from consent.service.errors import BrokerError, bad_request

T = TypeVar("T")

HEADER = "X-Request-Deadline-Ms"
DEFAULT_MS = 4000  # a client that sends no deadline still gets an answer in about 4 s
MAX_MS = 30_000
RESERVE_S = 0.4  # kept back from the bank calls for the last known balances, the log, the answer


@dataclass(frozen=True, slots=True)
class Deadline:
    """A point on a monotonic clock by which the answer must be sent."""

    at: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def within(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left before the answer must be sent (negative once it has passed)."""
        return self.at - self.clock()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def for_banks(self) -> Deadline:
        """The deadline the bank calls must meet: this one less the reserve (at most a fifth of
        the whole, so a short deadline still leaves time for the banks)."""
        reserve = min(RESERVE_S, max(0.0, self.remaining()) / 5)
        return Deadline(self.at - reserve, self.clock)


def parse_deadline_ms(raw: str | None) -> int:
    """The header's value in milliseconds (1..30000); absent means the default."""
    if raw is None or not raw.strip():
        return DEFAULT_MS
    try:
        value = int(raw.strip())
    except ValueError as e:
        raise bad_request(f"{HEADER} must be a whole number of milliseconds") from e
    if not 1 <= value <= MAX_MS:
        raise bad_request(f"{HEADER} must be between 1 and {MAX_MS}")
    return value


async def in_time(deadline: Deadline, call: Awaitable[T]) -> T:
    """``call``'s result if it completes before ``deadline``, else a 504 ``bank_timeout`` (the
    call is cancelled: nothing of it is answered or logged as served)."""
    try:
        async with asyncio.timeout(max(0.0, deadline.remaining())):
            return await call
    except TimeoutError as e:
        raise BrokerError(
            504, "bank_timeout", "the bank did not answer in time", headers={"Retry-After": "5"}
        ) from e
