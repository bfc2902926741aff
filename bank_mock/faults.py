"""Fault injection per bank: added latency, error rate and hangs on the API paths only."""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable

from aiohttp import web

from bank_mock.errors import BankError
from bank_mock.keys import SETTINGS, bank_of
from bank_mock.sandbox import parse_body
from bank_mock.settings import FaultSettings

FAULTS = web.AppKey("faults", dict[str, FaultSettings])


class StrictFaults(FaultSettings, strict=True):
    """The faults as a request body: JSON types as the spec states them (``true`` is not 1)."""


FAULT_RNG = web.AppKey("fault_rng", random.Random)
_API_PATH = re.compile(r"^/banks/([^/]+)/(token|open-banking/|card-controls/|support/)")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
routes = web.RouteTableDef()


@web.middleware
async def fault_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Apply the bank's faults before its API handlers run; pages and sandbox are spared."""
    match = _API_PATH.match(request.path)
    faults = request.app[FAULTS].get(match.group(1)) if match else None
    if faults is not None:
        rng = request.app[FAULT_RNG]
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.timeout_rate and rng.random() < faults.timeout_rate:
            await asyncio.sleep(faults.timeout_s)
            raise BankError(504, "Injected timeout", code="UK.OBIE.UnexpectedError")
        if faults.error_rate and rng.random() < faults.error_rate:
            raise BankError(500, "Injected failure", code="UK.OBIE.UnexpectedError")
    return await handler(request)


@routes.put("/sandbox/banks/{bank_id}/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Set a bank's faults at run time (tests and demos)."""
    bank = bank_of(request)
    faults: FaultSettings = parse_body(StrictFaults, await request.read())
    request.app[FAULTS][bank.profile.bank_id] = faults
    return web.json_response({"bank_id": bank.profile.bank_id, **faults.model_dump()})


def setup(app: web.Application, rng: random.Random | None = None) -> None:
    app[FAULTS] = dict(app[SETTINGS].faults)
    app[FAULT_RNG] = rng or random.Random()
    app.middlewares.append(fault_middleware)
    app.router.add_routes(routes)
