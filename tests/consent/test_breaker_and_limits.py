"""The circuit breaker and the per-subject rate limit, as plain objects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from consent.banks.breaker import CircuitBreaker
from consent.service.ratelimit import RateLimiter, TokenBuckets

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
    limiter = TokenBuckets(per_minute=3)
    for _ in range(3):
        assert limiter.take_now("s1", T0) is None
    wait = limiter.take_now("s1", T0)
    assert wait is not None and wait >= 1
    assert limiter.take_now("s2", T0) is None  # other subjects are unaffected
    assert limiter.take_now("s1", T0 + timedelta(seconds=21)) is None  # a token has come back


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=200))
def test_no_more_than_the_limit_passes_in_any_one_instant(per_minute: int, attempts: int) -> None:
    limiter = TokenBuckets(per_minute=per_minute)
    passed = sum(limiter.take_now("s", T0) is None for _ in range(attempts))
    assert passed == min(per_minute, attempts)


def test_the_buckets_forget_idle_keys_beyond_their_bound() -> None:
    limiter = TokenBuckets(per_minute=2, max_keys=10)
    for i in range(50):
        limiter.take_now(f"k{i}", T0 + timedelta(minutes=i))
    assert len(limiter._buckets) <= 11
    assert limiter.take_now("k49", T0 + timedelta(minutes=49)) is None  # a busy key is kept
    assert limiter.take_now("k49", T0 + timedelta(minutes=49)) is not None


async def test_the_limiter_interface_is_async_so_a_shared_backend_can_plug_in() -> None:
    limiter: RateLimiter = TokenBuckets(per_minute=1)
    assert await limiter.take("c", T0) is None
    assert await limiter.take("c", T0) == 60
