"""The circuit breaker and the per-subject rate limit, as plain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.banks.breaker import CircuitBreaker
from consent.service.errors import BrokerError
from consent.service.ratelimit import RateLimiter

T0 = datetime(2026, 11, 20, tzinfo=UTC)


def test_the_breaker_opens_after_repeated_failures_and_half_opens_after_the_cooldown() -> None:
    b = CircuitBreaker(threshold=3, cooldown=timedelta(seconds=30))
    for _ in range(2):
        b.record_failure(T0)
    assert b.allow(T0)
    b.record_failure(T0)
    assert not b.allow(T0 + timedelta(seconds=10))
    assert b.retry_after(T0 + timedelta(seconds=10)) == 21
    assert b.state(T0 + timedelta(seconds=31)) == "half-open"
    b.record_failure(T0 + timedelta(seconds=31))  # the trial call failed: open again
    assert not b.allow(T0 + timedelta(seconds=40))
    b.record_success()
    assert b.state(T0 + timedelta(seconds=40)) == "closed"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.booleans(), max_size=40))
def test_a_success_always_closes_the_breaker(outcomes: list[bool]) -> None:
    b = CircuitBreaker(threshold=3)
    for i, ok in enumerate(outcomes):
        now = T0 + timedelta(seconds=i)
        if ok:
            b.record_success()
            assert b.state(now) == "closed"
        else:
            b.record_failure(now)
        assert b.failures >= 0


def test_the_rate_limit_allows_a_human_pace_and_says_when_to_retry() -> None:
    limiter = RateLimiter(per_minute=3)
    for _ in range(3):
        limiter.take("s1", T0)
    with pytest.raises(BrokerError) as refused:
        limiter.take("s1", T0)
    assert refused.value.status == 429
    assert int(refused.value.headers["Retry-After"]) >= 1
    limiter.take("s2", T0)  # other subjects are unaffected
    limiter.take("s1", T0 + timedelta(seconds=21))  # a token has come back


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=200))
def test_no_more_than_the_limit_passes_in_any_one_instant(per_minute: int, attempts: int) -> None:
    limiter = RateLimiter(per_minute=per_minute)
    passed = 0
    for _ in range(attempts):
        try:
            limiter.take("s", T0)
            passed += 1
        except BrokerError:
            pass
    assert passed == min(per_minute, attempts)
