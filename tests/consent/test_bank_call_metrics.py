"""Every call to a bank is counted once, by outcome, by the bank's own client (the broker's HTTP
session carries no aiohttp TraceConfig any more: it cost a tenth of the balances read's CPU)."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc.jwk import ECKey
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

from consent.api.keys import BROKER
from consent.banks.client import (
    BankClient,
    BankInfo,
    BankRefusedError,
    BankUnavailableError,
    outcome_of,
)
from consent.events.verify import JwksCache
from consent.metrics import BANK_LATENCY_BUCKETS, bank_call_observer, url_call_observer
from consent.service.errors import BrokerError
from tests.consent.broker_env import start, stop

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def _bank_app() -> web.Application:
    async def ok(_: web.Request) -> web.Response:
        return web.json_response({"Data": {}})

    async def refused(_: web.Request) -> web.Response:
        return web.json_response({"Message": "no"}, status=403)

    async def failing(_: web.Request) -> web.Response:
        return web.Response(status=500)

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({})

    async def garbled(_: web.Request) -> web.Response:
        return web.Response(text="<html>", status=200)

    app = web.Application()
    for path, handler in (
        ("/ok", ok),
        ("/refused", refused),
        ("/failing", failing),
        ("/slow", slow),
        ("/garbled", garbled),
    ):
        app.router.add_get(path, handler)
    return app


def _client(base: str, seen: list[tuple[str, float]]) -> BankClient:
    info = BankInfo(
        bank_id="testbank",
        name="Test Bank",
        issuer=base,
        registration_endpoint=f"{base}/register",
        token_endpoint=f"{base}/token",
        authorization_endpoint=f"{base}/authorize",
        jwks_uri=f"{base}/jwks",
        aisp_base=base,
        card_controls_base=base,
    )
    return BankClient(
        aiohttp.ClientSession(),
        info,
        timeout_s=5,
        clock=lambda: datetime.now(UTC),
        observe=lambda outcome, seconds: seen.append((outcome, seconds)),
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.mark.parametrize("status", [200, 204, 302, 400, 401, 404, 429, 500, 502, 503])
def test_an_answer_is_ok_refused_or_an_error_by_its_status(status: int) -> None:
    expected = "ok" if status < 400 else "refused" if status < 500 else "error"
    assert outcome_of(status) == expected


async def test_each_call_is_observed_once_with_its_outcome(aiohttp_server: ServerFactory) -> None:
    server = await aiohttp_server(_bank_app())
    seen: list[tuple[str, float]] = []
    client = _client(str(server.make_url("")).rstrip("/"), seen)
    try:
        assert await client.read("token", "/ok") == {"Data": {}}
        with pytest.raises(BankRefusedError):
            await client.read("token", "/refused")
        with pytest.raises(BankUnavailableError):
            await client.read("token", "/failing")
        with pytest.raises(BankUnavailableError):  # an answer that is not JSON
            await client.read("token", "/garbled")
        with pytest.raises(BankUnavailableError):
            await client.read("token", "/slow", timeout_s=0.05)
        task = asyncio.ensure_future(client.read("token", "/slow"))
        await asyncio.sleep(0.1)
        task.cancel()  # the request's deadline gave up on the bank
        with pytest.raises(asyncio.CancelledError):
            await task
        assert [o for o, _ in seen] == ["ok", "refused", "error", "ok", "timeout", "timeout"]
        assert all(0 <= s < 5 for _, s in seen)
    finally:
        await client.session.close()


async def test_an_unreachable_bank_is_observed_as_unreachable() -> None:
    seen: list[tuple[str, float]] = []
    client = _client(f"http://127.0.0.1:{_closed_port()}", seen)
    try:
        with pytest.raises(BankUnavailableError):
            await client.read("token", "/ok")
        assert [o for o, _ in seen] == ["unreachable"]
    finally:
        await client.session.close()


def _count(bank: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "chatbank_bank_calls_total", {"bank": bank, "outcome": outcome}
    )
    return value or 0.0


def test_the_observer_counts_by_bank_and_outcome_and_times_answers_only() -> None:
    observe = bank_call_observer("observerbank")
    before_ok, before_timeout = _count("observerbank", "ok"), _count("observerbank", "timeout")
    observe("ok", 0.01)
    observe("ok", 0.02)
    observe("timeout", 4.0)
    assert _count("observerbank", "ok") == before_ok + 2
    assert _count("observerbank", "timeout") == before_timeout + 1
    timed = REGISTRY.get_sample_value(
        "chatbank_bank_call_duration_seconds_count", {"bank": "observerbank"}
    )
    assert timed == 2  # a call the bank never answered has no answer time


async def test_a_key_set_fetch_is_counted_for_the_bank_it_belongs_to(
    aiohttp_server: ServerFactory,
) -> None:
    key = ECKey.generate_key("P-256", {"kid": "k1"})

    async def jwks(_: web.Request) -> web.Response:
        return web.json_response({"keys": [key.as_dict(private=False)]})

    app = web.Application()
    app.router.add_get("/jwks.json", jwks)
    server = await aiohttp_server(app)
    url = str(server.make_url("/jwks.json"))
    seen: list[tuple[str, str]] = []
    record = url_call_observer(lambda u: "jwksbank" if u == url else None)

    async with aiohttp.ClientSession() as http:

        def observe(url: str, outcome: str, seconds: float) -> None:
            seen.append((url, outcome))
            record(url, outcome, seconds)

        cache = JwksCache(http, observe=observe)
        before = _count("jwksbank", "ok")
        await cache.fetch(url)
        assert seen == [(url, "ok")]
        assert _count("jwksbank", "ok") == before + 1
        with pytest.raises(BrokerError):  # nothing listens there: unreachable, not a bank's
            await cache.fetch(f"http://127.0.0.1:{_closed_port()}/jwks.json")
        assert seen[-1][1] == "unreachable"


async def test_the_brokers_session_carries_no_trace_config(tmp_path: Path) -> None:
    env = await start(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'consent.db'}")
    try:
        broker = env.broker.app[BROKER]
        assert getattr(broker.http, "_trace_configs", None) == []
        subject = await env.subject()
        await env.link(subject)
        before = _count("northwind", "ok")
        resp = await env.broker.get(f"/v1/subjects/{subject}/balances", headers=env.auth())
        assert resp.status == 200
        assert _count("northwind", "ok") > before  # the read's bank calls, counted by the client
    finally:
        await stop(env)


_bank_numbers = itertools.count()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ok", "refused", "error", "timeout", "unreachable"]),
            st.one_of(
                st.sampled_from([0.0, 0.005, 0.01, 1.0, 10.0]),
                st.floats(min_value=0, max_value=30, allow_nan=False),
            ),
        ),
        max_size=40,
    )
)
def test_the_plain_counts_scrape_as_prometheus_own_counter_and_histogram_would(
    calls: list[tuple[str, float]],
) -> None:
    """The bank-call numbers kept as plain counts give Prometheus exactly what its ``Counter``
    and ``Histogram`` (same buckets) give for the same calls."""
    bank = f"scrapebank{next(_bank_numbers)}"
    observe = bank_call_observer(bank)
    registry = CollectorRegistry()
    counter = Counter("ref_calls", "reference", ["outcome"], registry=registry)
    histogram = Histogram(
        "ref_seconds", "reference", buckets=BANK_LATENCY_BUCKETS, registry=registry
    )
    for outcome, seconds in calls:
        observe(outcome, seconds)
        counter.labels(outcome).inc()
        if outcome in ("ok", "refused", "error"):
            histogram.observe(seconds)
    # one scrape of the broker's registry (each get_sample_value would scrape it all again)
    mine = {
        (sample.name, sample.labels.get("outcome", ""), sample.labels.get("le", "")): sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("bank") == bank
    }
    for outcome in ("ok", "refused", "error", "timeout", "unreachable"):
        assert mine.get(("chatbank_bank_calls_total", outcome, "")) == registry.get_sample_value(
            "ref_calls_total", {"outcome": outcome}
        )
    for le in (*(str(b) for b in BANK_LATENCY_BUCKETS), "+Inf"):
        assert mine.get(
            ("chatbank_bank_call_duration_seconds_bucket", "", le)
        ) == registry.get_sample_value("ref_seconds_bucket", {"le": le})
    for suffix in ("count", "sum"):
        theirs = registry.get_sample_value(f"ref_seconds_{suffix}")
        assert mine.get((f"chatbank_bank_call_duration_seconds_{suffix}", "", "")) == (
            pytest.approx(theirs)
        )
