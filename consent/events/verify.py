"""Verify a bank's Security Event Token: ES256 against the bank's JWKS (fetched and cached,
refetched for an unknown key id at most once a minute per bank), issuer and audience, an ``iat``
window and a ``jti``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from consent.banks.client import outcome_of
from consent.service.errors import BrokerError

IAT_WINDOW = timedelta(minutes=5)
# However many tokens name an unknown key id, a bank's JWKS is fetched at most this often:
# forged tokens cannot turn the broker into a load generator against the bank.
REFETCH_INTERVAL = 60.0


def refused(detail: str) -> BrokerError:
    return BrokerError(401, "invalid_event", detail)


@dataclass
class JwksCache:
    """Each bank's key set, fetched on first use and refetched for an unknown ``kid`` only when
    the last fetch (successful or not) is at least :data:`REFETCH_INTERVAL` seconds old."""

    http: aiohttp.ClientSession
    clock: Callable[[], float] = time.monotonic
    interval: float = REFETCH_INTERVAL
    # told of each fetch: the URL, its outcome (ok, refused, error, timeout, unreachable), seconds
    observe: Callable[[str, str, float], None] | None = None
    _sets: dict[str, KeySet] = field(default_factory=dict)
    _fetched_at: dict[str, float] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def fetch(self, url: str) -> KeySet:
        self._fetched_at[url] = self.clock()
        started, outcome = time.perf_counter(), "unreachable"
        try:
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=5)) as resp:
                outcome = outcome_of(resp.status)
                resp.raise_for_status()
                keys = KeySet.import_key_set(await resp.json())
        except (aiohttp.ClientError, TimeoutError, ValueError, JoseError) as e:
            if isinstance(e, TimeoutError):
                outcome = "timeout"
            raise _unavailable() from e
        except asyncio.CancelledError:
            outcome = "timeout"
            raise
        finally:
            if self.observe is not None:
                self.observe(url, outcome, time.perf_counter() - started)
        self._sets[url] = keys
        return keys

    def _known(self, url: str, kid: str | None) -> KeySet | None:
        cached = self._sets.get(url)
        if cached is not None and kid and any(k.kid == kid for k in cached.keys):
            return cached
        return None

    async def keys(self, url: str, kid: str | None) -> KeySet:
        if (known := self._known(url, kid)) is not None:
            return known
        async with self._locks.setdefault(url, asyncio.Lock()):
            # Another request may have fetched while this one waited for the lock.
            if (known := self._known(url, kid)) is not None:
                return known
            last = self._fetched_at.get(url)
            if last is None or self.clock() - last >= self.interval:
                return await self.fetch(url)
        cached = self._sets.get(url)
        if cached is None:
            raise _unavailable()
        return cached  # the kid is unknown: the signature check refuses the token


def _unavailable() -> BrokerError:
    return BrokerError(503, "jwks_unavailable", "the bank's keys could not be fetched")


def _header(token: str) -> dict[str, Any]:
    try:
        return dict(extract_compact(token.encode()).protected)
    except (JoseError, ValueError) as e:
        raise refused("not a compact JWS") from e


async def verify_set(
    token: str, *, jwks: JwksCache, jwks_uri: str, issuer: str, audience: str, now: datetime
) -> dict[str, Any]:
    """The claims of a valid SET; ``BrokerError`` 401 ``invalid_event`` for anything else."""
    header = _header(token)
    if header.get("alg") != "ES256" or header.get("typ") != "secevent+jwt":
        raise refused("only ES256 secevent+jwt tokens are accepted")
    keys = await jwks.keys(jwks_uri, header.get("kid"))
    try:
        claims: dict[str, Any] = dict(jwt.decode(token, keys, algorithms=["ES256"]).claims)
    except (JoseError, ValueError) as e:
        raise refused("the signature does not verify") from e
    if claims.get("iss") != issuer or claims.get("aud") != audience:
        raise refused("wrong issuer or audience")
    iat = claims.get("iat")
    if not isinstance(iat, int) or abs(now.timestamp() - iat) > IAT_WINDOW.total_seconds():
        raise refused("iat is outside the accepted window")
    if not isinstance(claims.get("jti"), str) or not isinstance(claims.get("events"), dict):
        raise refused("jti and events are required")
    return claims
