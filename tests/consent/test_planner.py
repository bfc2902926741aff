"""The bank-call planner: inside the deadline, concurrent, retried only while time remains,
never past an open breaker."""

from __future__ import annotations

import asyncio
import contextlib
import random
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from consent.banks.client import (
    BankCircuitOpenError,
    BankClient,
    BankInfo,
    BankRefusedError,
    BankUnavailableError,
)
from consent.service.balance_answer import ConsentBalances
from consent.service.balance_plan import fetch_balances, reason
from consent.service.deadline import Deadline, parse_deadline_ms
from consent.service.errors import BrokerError
from consent.service.planner import MIN_CALL_S, DeadlinePassedError, RetryPlan, within
from tests.consent.broker_env import Clock


class FakeTime:
    """A monotonic clock the fake sleeps and calls move forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.started: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def plan_on(t: FakeTime, seed: int = 1, attempts: int = 50) -> RetryPlan:
    return RetryPlan(rng=random.Random(seed), sleep=t.sleep, max_attempts=attempts)


async def test_a_flaky_read_is_retried_until_it_succeeds() -> None:
    t = FakeTime()
    outcomes = iter([False, False, True])

    async def call(left: float) -> str:
        t.started.append(left)
        if not next(outcomes):
            raise BankUnavailableError("boom", status=502)
        return "ok"

    assert await within(Deadline(4.0, t), call, plan_on(t)) == "ok"
    assert len(t.started) == 3
    assert t.now > 0  # it backed off between tries


@settings(max_examples=100, deadline=None)
@given(
    budget=st.floats(min_value=0.0, max_value=3.0),
    call_s=st.floats(min_value=0.0, max_value=0.5),
    seed=st.integers(min_value=0, max_value=1000),
)
def test_retries_stop_when_the_budget_runs_out(budget: float, call_s: float, seed: int) -> None:
    t = FakeTime()

    async def failing(left: float) -> None:
        t.started.append(left)
        t.now += min(call_s, left)  # a call never outlives the time it was given
        raise BankUnavailableError("boom", status=502)

    async def run() -> None:
        with pytest.raises(BankUnavailableError):
            await within(Deadline(budget, t), failing, plan_on(t, seed))

    asyncio.run(run())
    assert all(left >= MIN_CALL_S for left in t.started)  # no call without time to finish
    assert t.now <= max(budget, 0.0) + 1e-9  # never past the deadline
    if budget >= MIN_CALL_S:
        assert t.started  # the first call is always tried when there is time for it


async def test_an_open_breaker_is_not_retried() -> None:
    t = FakeTime()

    async def call(left: float) -> None:
        t.started.append(left)
        raise BankCircuitOpenError("open", status=503, retry_after=20)

    with pytest.raises(BankCircuitOpenError):
        await within(Deadline(4.0, t), call, plan_on(t))
    assert len(t.started) == 1


async def test_a_refusal_is_not_retried() -> None:
    t = FakeTime()

    async def call(left: float) -> None:
        t.started.append(left)
        raise BankRefusedError("no", status=403)

    with pytest.raises(BankRefusedError):
        await within(Deadline(4.0, t), call, plan_on(t))
    assert len(t.started) == 1


async def test_a_hanging_bank_is_abandoned_at_the_deadline() -> None:
    async def hang(left: float) -> None:
        await asyncio.sleep(30)

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(DeadlinePassedError):
        await within(Deadline.within(0.2), hang)
    assert loop.time() - started < 5  # not the bank's 30 s


async def test_an_open_breaker_short_cuts_the_bank_without_a_call() -> None:
    info = BankInfo(
        bank_id="b",
        name="B",
        issuer="http://127.0.0.1:9",
        registration_endpoint="http://127.0.0.1:9/r",
        token_endpoint="http://127.0.0.1:9/t",
        authorization_endpoint="http://127.0.0.1:9/a",
        jwks_uri="http://127.0.0.1:9/j",
        aisp_base="http://127.0.0.1:9/aisp",
        card_controls_base="http://127.0.0.1:9/cc",
    )
    clock = Clock()
    async with aiohttp.ClientSession() as session:
        bank = BankClient(session, info, timeout_s=1, clock=clock)
        for _ in range(bank.breaker.threshold):
            with pytest.raises(BankUnavailableError) as failed:
                await bank.read("t", "/accounts")  # nothing listens on port 9
            assert not isinstance(failed.value, BankCircuitOpenError)
        with pytest.raises(BankCircuitOpenError):
            await bank.read("t", "/accounts")


async def test_a_bank_call_bounded_by_the_deadline_ends_with_it_and_spares_the_breaker() -> None:
    """``within(bounded=True)`` sets no timer of its own: the bank client's HTTP timeout is what
    is left of the deadline; when it runs out that is the deadline's doing (not retried, and
    the bank's breaker is not charged), as when a timer around the call fired."""
    calls = 0
    release = asyncio.Event()  # set at the end, so the server's clean-up does not wait 30 s

    async def hang(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), 30)
        return web.json_response({})

    app = web.Application()
    app.router.add_get("/aisp/accounts", hang)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    info = BankInfo(
        bank_id="b",
        name="B",
        issuer=base,
        registration_endpoint=f"{base}/r",
        token_endpoint=f"{base}/t",
        authorization_endpoint=f"{base}/a",
        jwks_uri=f"{base}/j",
        aisp_base=f"{base}/aisp",
        card_controls_base=f"{base}/cc",
    )
    try:
        async with aiohttp.ClientSession() as session:
            bank = BankClient(session, info, timeout_s=5, clock=Clock())
            loop = asyncio.get_running_loop()
            for _ in range(bank.breaker.threshold + 1):
                started = loop.time()
                with pytest.raises(DeadlinePassedError):
                    await within(
                        Deadline.within(0.2),
                        lambda left: bank.read("t", "/accounts", timeout_s=left),
                        bounded=True,
                    )
                assert loop.time() - started < 1  # the deadline's 0.2 s, not the bank's 5 s
            assert calls == bank.breaker.threshold + 1  # each one call, none retried
            assert bank.breaker.allow(Clock()())  # a slow answer past a deadline: still closed
    finally:
        release.set()
        await runner.cleanup()


class FakeBank:
    """Accounts and balances in memory; counts calls in flight and can fail some paths."""

    def __init__(self, accounts: list[str], failing: frozenset[str] = frozenset()) -> None:
        self.accounts = accounts
        self.failing = failing
        self.in_flight = 0
        self.most = 0
        self.paths: list[str] = []

    async def read(
        self,
        access_token: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        self.paths.append(path)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if path in self.failing:
                raise BankUnavailableError("down", status=502)
            if path == "/accounts":
                return {"Data": {"Account": [{"AccountId": a} for a in self.accounts]}}
            return {"Data": {"Balance": [{"Type": "InterimAvailable", "path": path}]}}
        finally:
            self.in_flight -= 1


async def test_known_accounts_are_read_at_the_same_time_as_the_list() -> None:
    bank = FakeBank(["a1", "a2", "a3"])
    fetched = await fetch_balances(bank, "tok", ["a1", "a2", "a3"], Deadline.within(2))
    assert fetched.complete and fetched.failure is None
    assert bank.most == 4  # the list and three balances at once
    assert len(bank.paths) == 4


async def test_accounts_seen_for_the_first_time_are_read_after_the_list() -> None:
    bank = FakeBank(["a1", "new"])
    fetched = await fetch_balances(bank, "tok", ["a1", "gone"], Deadline.within(2))
    assert fetched.complete
    assert set(fetched.balances) == {"a1", "new"}  # an account no longer listed is dropped
    assert bank.paths.count("/accounts/new/balances") == 1


async def test_one_failing_account_leaves_the_others_fresh() -> None:
    bank = FakeBank(["a1", "a2"], failing=frozenset({"/accounts/a2/balances"}))
    plan = RetryPlan(max_attempts=2, base_s=0.001)
    fetched = await fetch_balances(bank, "tok", ["a1", "a2"], Deadline.within(2), plan)
    assert not fetched.complete
    assert set(fetched.balances) == {"a1"}
    assert reason(fetched.failure) == "bank_unavailable"


class BulkBank(FakeBank):
    """A bank with the bulk ``GET /balances`` (``bulk``), or one answering it 404."""

    def __init__(self, accounts: list[str], *, bulk: bool) -> None:
        super().__init__(accounts)
        self.bulk = bulk

    async def read(
        self,
        access_token: str,
        path: str,
        params: dict[str, str] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        if path != "/balances":
            return await super().read(access_token, path, params, timeout_s=timeout_s)
        self.paths.append(path)
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            if not self.bulk:
                raise BankRefusedError("no such resource", status=404)
            return {
                "Data": {
                    "Balance": [
                        {"AccountId": a, "Type": t}
                        for a in self.accounts
                        for t in ("InterimBooked", "InterimAvailable")
                    ]
                }
            }
        finally:
            self.in_flight -= 1


async def test_the_first_read_asks_the_list_and_every_balance_at_once() -> None:
    bank = BulkBank(["a1", "a2"], bulk=True)
    fetched = await fetch_balances(bank, "tok", [], Deadline.within(2))
    assert fetched.complete and fetched.failure is None
    assert sorted(bank.paths) == ["/accounts", "/balances"] and bank.most == 2  # one round trip
    assert [len(fetched.balances[a]) for a in ("a1", "a2")] == [2, 2]


async def test_a_bank_without_bulk_balances_is_read_account_by_account() -> None:
    bank = BulkBank(["a1", "a2"], bulk=False)
    fetched = await fetch_balances(bank, "tok", [], Deadline.within(2))
    assert fetched.complete and fetched.failure is None  # a 404 on /balances is no failure
    assert bank.paths.count("/accounts/a1/balances") == 1
    assert bank.paths.count("/accounts/a2/balances") == 1


async def test_a_failed_account_list_is_a_result_not_an_exception() -> None:
    bank = FakeBank(["a1"], failing=frozenset({"/accounts"}))
    plan = RetryPlan(max_attempts=2, base_s=0.001)
    fetched = await fetch_balances(bank, "tok", [], Deadline.within(2), plan)
    assert fetched.accounts is None and not fetched.complete
    assert reason(fetched.failure) == "bank_unavailable"


def test_failures_become_typed_reasons() -> None:
    assert reason(DeadlinePassedError()) == "bank_timeout"
    assert reason(BankUnavailableError("x", status=504)) == "bank_timeout"
    assert reason(BankCircuitOpenError("x", status=503)) == "bank_unavailable"
    assert reason(BankRefusedError("x", status=401)) == "reauthorization_needed"
    assert reason(BankRefusedError("x", status=400)) == "bank_refused"
    assert reason(BrokerError(409, "consent_not_authorized", "")) == "reauthorization_needed"
    assert reason(TimeoutError()) == "bank_timeout"


def test_the_deadline_header_is_checked() -> None:
    assert parse_deadline_ms(None) == 4000
    assert parse_deadline_ms(" 1500 ") == 1500
    for bad in ("soon", "0", "-5", "30001", "1.5"):
        with pytest.raises(BrokerError) as refused:
            parse_deadline_ms(bad)
        assert refused.value.status == 400


def test_the_bank_calls_keep_a_reserve_for_the_answer() -> None:
    t = FakeTime()
    whole = Deadline(4.0, t)
    assert 3.5 <= whole.for_banks().remaining() < 4.0
    short = Deadline(0.5, t)
    assert 0.39 <= short.for_banks().remaining() < 0.5


def test_a_consent_with_no_accounts_is_served_but_one_whose_bank_failed_is_not() -> None:
    assert ConsentBalances([], frozenset(), None, "ok").served
    assert not ConsentBalances([], frozenset(), "bank_timeout", "bank_timeout").served
    assert ConsentBalances([{"status": "last_known"}], frozenset(), "x", "partial").served
