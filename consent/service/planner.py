"""Bank calls planned inside a deadline: each idempotent read is retried with jittered
exponential backoff while the budget lasts; an open circuit breaker is not retried.

Pure scheduling: the call itself, the clock (via :class:`Deadline`), the sleep and the random
source are passed in, so the tests drive it without a bank.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from consent.banks.client import BankCircuitOpenError, BankUnavailableError
from consent.banks.client import DeadlinePassedError as DeadlinePassedError
from consent.service.deadline import Deadline

T = TypeVar("T")
MIN_CALL_S = 0.05  # a call with less time than this left is not started


@dataclass
class RetryPlan:
    """Full-jitter backoff: before retry ``n`` wait ``uniform(0, min(cap, base * 2**n))``."""

    base_s: float = 0.05
    cap_s: float = 0.4
    max_attempts: int = 6
    rng: random.Random = field(default_factory=random.Random)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def backoff(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap_s, self.base_s * 2**attempt))


DEFAULT_PLAN = RetryPlan()  # one random source for every read (seeding one costs ~40 µs)


async def within(
    deadline: Deadline,
    call: Callable[[float], Awaitable[T]],
    plan: RetryPlan | None = None,
    *,
    bounded: bool = False,
) -> T:
    """``call(seconds_left)`` until it succeeds; a :class:`BankUnavailableError` is retried
    while time remains (never one from an open breaker), anything else is raised at once.
    Raises :class:`DeadlinePassedError` (or the last bank error) when the budget runs out.

    ``bounded``: ``call`` itself ends within the seconds it is given, raising
    :class:`DeadlinePassedError` when they run out (a bank client's call with
    ``timeout_s=left``: its HTTP timeout is that deadline), so no timer of ours is set around
    it: one timer per bank call instead of two."""
    plan = plan or DEFAULT_PLAN
    last: BankUnavailableError | None = None
    for attempt in range(plan.max_attempts):
        left = deadline.remaining()
        if left < MIN_CALL_S:
            break
        try:
            if bounded:
                return await call(left)
            async with asyncio.timeout(left):
                return await call(left)
        except TimeoutError as e:
            raise DeadlinePassedError() from e
        except (BankCircuitOpenError, DeadlinePassedError):
            raise
        except BankUnavailableError as e:
            last = e
        pause = plan.backoff(attempt)
        if deadline.remaining() - pause < MIN_CALL_S:
            break
        await plan.sleep(pause)
    if last is not None:
        raise last
    raise DeadlinePassedError()
