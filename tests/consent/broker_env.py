"""A real mock bank and a real broker on 127.0.0.1, wired together for integration tests."""

from __future__ import annotations

import base64
import socket
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from bank_mock.app import create_app as create_bank
from bank_mock.settings import BankSettings
from consent.app import create_app as create_broker
from consent.settings import BrokerSettings
from consent.vault.keyring import generate_kek

ADMIN = "test-admin-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 19, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Env:
    bank: TestClient[Any, Any]
    broker: TestClient[Any, Any]
    bank_app: web.Application
    broker_settings: BrokerSettings
    credential: str
    webhook_secret: str
    clock: Clock

    def auth(self, purpose: str = "chat-service", credential: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {credential or self.credential}", "X-Purpose": purpose}

    async def new_client(self, name: str = "bot") -> str:
        resp = await self.broker.post(
            "/admin/v1/platform-clients",
            json={"name": name},
            headers={"Authorization": f"Bearer {ADMIN}"},
        )
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["credential"])

    async def subject(self, credential: str | None = None) -> str:
        resp = await self.broker.post("/v1/subjects", headers=self.auth(credential=credential))
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["subject_id"])

    async def pay_flagged(self, account: str, merchant: str) -> None:
        """Book a payment at Northwind that its fraud engine flags (2750 EUR in France)."""
        resp = await self.bank.post(
            "/sandbox/banks/northwind/transactions",
            json={
                "account_id": account,
                "amount": "2750.00",
                "currency": "EUR",
                "merchant_name": merchant,
                "country": "FR",
            },
        )
        assert (await resp.json())["alerts"]

    async def link(
        self,
        subject: str,
        bank_id: str = "northwind",
        scopes: list[str] | None = None,
        username: str = "demo1",
        duration_days: int | None = None,
        credential: str | None = None,
    ) -> str:
        """Start a link, approve it as the customer (sandbox), and land on the broker's callback
        (as the platform client of ``credential``, the first one when not given)."""
        resp = await self.broker.post(
            f"/v1/subjects/{subject}/consents",
            json={
                "bank_id": bank_id,
                "scopes": scopes or ["balances", "transactions", "fraud_alerts"],
                **({"duration_days": duration_days} if duration_days else {}),
            },
            headers=self.auth(credential=credential),
        )
        assert resp.status == 201, await resp.text()
        started = await resp.json()
        url = URL(started["authorization_url"])
        approve = await self.bank.post(
            f"/sandbox/banks/{bank_id}/consents/{url.query['consent_id']}/approve",
            json={
                "username": username,
                "redirect_uri": url.query["redirect_uri"],
                "code_challenge": url.query["code_challenge"],
                "scopes": url.query["scope"].split(),
            },
        )
        assert approve.status == 200, await approve.text()
        code = (await approve.json())["code"]
        landing = await self.broker.get(
            f"/callback/{bank_id}", params={"state": url.query["state"], "code": code}
        )
        assert landing.status == 200, await landing.text()
        return str(started["consent_id"])


async def start(
    tmp_path: Path,
    database_url: str,
    *,
    bank_public_url: str = "",
    broker_public_url: str = "",
    bank_data_dir: str = "",
    **overrides: Any,
) -> Env:
    """The bank and the broker; the public URLs are what browsers see (the broker still calls
    the bank on 127.0.0.1, as a broker next to the bank would); ``bank_data_dir`` keeps what
    the bank learns on disk; ``overrides`` are further broker settings."""
    clock = Clock()
    bank_port = free_port()
    bank_settings = BankSettings(
        port=bank_port,
        customers_per_bank=3,
        anchor_date=date(2026, 11, 20),
        public_url=bank_public_url,
        data_dir=bank_data_dir,
    )
    bank_app = create_bank(bank_settings, clock=clock)
    bank = TestClient(TestServer(bank_app, port=bank_port))
    await bank.start_server()
    broker_port = free_port()
    ring = f"1:{base64.b64encode(generate_kek()).decode()}"
    settings = BrokerSettings(
        port=broker_port,
        database_url=database_url,
        bank_directory_url=f"http://127.0.0.1:{bank_port}/banks",
        keyring=ring,
        admin_token=ADMIN,
        handle_secret="test-handle-secret",
        keyring_file=str(tmp_path / "unused-kek"),
        public_url=broker_public_url,
        **overrides,
    )
    broker = TestClient(TestServer(create_broker(settings, clock=clock), port=broker_port))
    await broker.start_server()
    resp = await broker.post(
        "/admin/v1/platform-clients",
        json={"name": "bot"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )
    body = await resp.json()
    return Env(bank, broker, bank_app, settings, body["credential"], body["webhook_secret"], clock)


async def stop(env: Env) -> None:
    await env.broker.close()
    await env.bank.close()
