"""Forged tokens naming unknown key ids cannot make the broker hammer a bank's JWKS endpoint:
a counting fake JWKS server sees at most one fetch per bank per minute."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from joserfc import jwt
from joserfc.jwk import ECKey

from consent.events.verify import REFETCH_INTERVAL, JwksCache, verify_set
from consent.service.errors import BrokerError

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@dataclass
class FakeBankKeys:
    """A bank's JWKS endpoint that counts how often it is asked."""

    keys: list[ECKey] = field(default_factory=lambda: [ECKey.generate_key("P-256", {"kid": "k1"})])
    hits: int = 0
    failing: bool = False

    async def handle(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.failing:
            return web.Response(status=503)
        return web.json_response({"keys": [k.as_dict(private=False) for k in self.keys]})


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def token(key: ECKey, kid: str, *, jti: str = "j1") -> str:
    header = {"alg": "ES256", "typ": "secevent+jwt", "kid": kid}
    claims: dict[str, object] = {
        "iss": "bank",
        "aud": "broker",
        "jti": jti,
        "events": {"urn:x": {}},
    }
    claims["iat"] = int(NOW.timestamp())
    return jwt.encode(header, claims, key)


@pytest.fixture
async def bank(aiohttp_server: ServerFactory) -> tuple[FakeBankKeys, str]:
    fake = FakeBankKeys()
    app = web.Application()
    app.router.add_get("/jwks.json", fake.handle)
    server = await aiohttp_server(app)
    return fake, str(server.make_url("/jwks.json"))


async def verify(cache: JwksCache, url: str, tok: str) -> dict[str, object]:
    return await verify_set(
        tok, jwks=cache, jwks_uri=url, issuer="bank", audience="broker", now=NOW
    )


async def test_thirty_forged_kids_cause_one_jwks_fetch_per_minute(
    bank: tuple[FakeBankKeys, str],
) -> None:
    fake, url = bank
    clock = Clock()
    forger = ECKey.generate_key("P-256")
    async with aiohttp.ClientSession() as http:
        cache = JwksCache(http, clock=clock)
        assert (await verify(cache, url, token(fake.keys[0], "k1")))["jti"] == "j1"
        assert fake.hits == 1
        results = await asyncio.gather(
            *(verify(cache, url, token(forger, f"forged-{i}")) for i in range(30)),
            return_exceptions=True,
        )
        assert all(isinstance(r, BrokerError) and r.status == 401 for r in results)
        assert fake.hits == 1  # the first fetch is less than a minute old
        clock.now += REFETCH_INTERVAL
        for i in range(30):
            with pytest.raises(BrokerError) as e:
                await verify(cache, url, token(forger, f"again-{i}"))
            assert e.value.code == "invalid_event"
        assert fake.hits == 2
        # Known keys keep verifying without any fetch, whatever the forgers do.
        assert (await verify(cache, url, token(fake.keys[0], "k1", jti="j2")))["jti"] == "j2"
        assert fake.hits == 2


async def test_concurrent_forgeries_on_a_cold_cache_share_one_fetch(
    bank: tuple[FakeBankKeys, str],
) -> None:
    fake, url = bank
    forger = ECKey.generate_key("P-256")
    async with aiohttp.ClientSession() as http:
        cache = JwksCache(http, clock=Clock())
        results = await asyncio.gather(
            *(verify(cache, url, token(forger, f"f{i}")) for i in range(30)),
            return_exceptions=True,
        )
    assert all(isinstance(r, BrokerError) and r.status == 401 for r in results)
    assert fake.hits == 1


async def test_a_rotated_bank_key_is_picked_up_once_the_minute_has_passed(
    bank: tuple[FakeBankKeys, str],
) -> None:
    fake, url = bank
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        cache = JwksCache(http, clock=clock)
        await verify(cache, url, token(fake.keys[0], "k1"))
        new = ECKey.generate_key("P-256", {"kid": "k2"})
        fake.keys.append(new)
        clock.now += REFETCH_INTERVAL / 2
        with pytest.raises(BrokerError):
            await verify(cache, url, token(new, "k2"))
        clock.now += REFETCH_INTERVAL / 2
        assert (await verify(cache, url, token(new, "k2", jti="j3")))["jti"] == "j3"
    assert fake.hits == 2


async def test_a_failing_jwks_endpoint_is_not_retried_within_the_minute(
    bank: tuple[FakeBankKeys, str],
) -> None:
    fake, url = bank
    fake.failing = True
    clock = Clock()
    async with aiohttp.ClientSession() as http:
        cache = JwksCache(http, clock=clock)
        for _ in range(10):
            with pytest.raises(BrokerError) as e:
                await verify(cache, url, token(fake.keys[0], "k1"))
            assert e.value.status == 503
        assert fake.hits == 1
        fake.failing = False
        clock.now += REFETCH_INTERVAL
        assert (await verify(cache, url, token(fake.keys[0], "k1")))["jti"] == "j1"
    assert fake.hits == 2
