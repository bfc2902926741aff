"""Fixtures: a real mock-bank app served on 127.0.0.1 with a test client."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from bank_mock.app import create_app
from bank_mock.clock import FrozenClock
from bank_mock.settings import BankSettings

AiohttpClient = Callable[[web.Application], Awaitable[TestClient[Any, Any]]]
TODAY = date(2026, 11, 20)


@pytest.fixture
def bank_settings() -> BankSettings:
    return BankSettings(
        customers_per_bank=3, anchor_date=TODAY, sandbox=True, event_retry_base_s=0.01
    )


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 11, 20, 19, 0, tzinfo=UTC))


@pytest.fixture
def bank_app(bank_settings: BankSettings, clock: FrozenClock) -> web.Application:
    return create_app(bank_settings, clock=clock)


@pytest.fixture
async def bank_client(
    aiohttp_client: AiohttpClient, bank_app: web.Application
) -> TestClient[Any, Any]:
    return await aiohttp_client(bank_app)
