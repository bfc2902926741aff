"""The bank keeps what it learnt at run time under its data folder: after a restart (a new app
on the same folder) clients, consents, tokens, codes, card states, injected transactions and
alerts are all still there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bank_mock.app import create_app
from bank_mock.clock import FrozenClock
from bank_mock.keys import BANKS
from bank_mock.models import CardStatus
from bank_mock.settings import BankSettings
from tests.bank_mock import flow

CARDS = "/banks/northwind/card-controls/v1"
AISP = "/banks/northwind/open-banking/v3.1/aisp"


@asynccontextmanager
async def running(
    settings: BankSettings, clock: FrozenClock
) -> AsyncIterator[TestClient[Any, Any]]:
    client = TestClient(TestServer(create_app(settings, clock=clock)))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


async def test_a_restarted_bank_forgets_nothing(
    tmp_path: Path, bank_settings: BankSettings, clock: FrozenClock
) -> None:
    settings = bank_settings.model_copy(update={"data_dir": str(tmp_path / "bank")})
    async with running(settings, clock) as bank:
        reg = await flow.register(bank, "northwind")
        linked = await flow.link(bank, reg, scope="openid accounts cards")
        waiting = await flow.create_consent(bank, reg)  # approved after the restart
        location, verifier = await flow.approve_in_browser(bank, reg, waiting)
        card_id = bank.app[BANKS]["northwind"].accounts["noc000001a0"].card_ids[0]
        resp = await bank.post(
            f"{CARDS}/cards/{card_id}/freeze", headers=flow.bearer(linked.access_token)
        )
        assert resp.status == 200
        inject = await bank.post(
            "/sandbox/banks/northwind/transactions",
            json={
                "account_id": "noc000001a0",
                "amount": "3100.00",
                "merchant_name": "Gadget Hub",
                "country": "BR",
            },
        )
        [alert_id] = (await inject.json())["alerts"]
        before = await bank.get(
            f"{AISP}/accounts/noc000001a0/transactions", headers=flow.bearer(linked.access_token)
        )
        transactions = (await before.json())["Data"]["Transaction"]
    async with running(settings, clock) as bank:
        # the same access token reads the same transactions, the injected one included
        after = await bank.get(
            f"{AISP}/accounts/noc000001a0/transactions", headers=flow.bearer(linked.access_token)
        )
        assert after.status == 200, await after.text()
        assert (await after.json())["Data"]["Transaction"] == transactions
        assert any(
            t.get("MerchantDetails", {}).get("MerchantName") == "Gadget Hub" for t in transactions
        )
        state = bank.app[BANKS]["northwind"]
        assert state.cards[card_id].status == CardStatus.FROZEN
        assert alert_id in state.alerts
        # the refresh token still refreshes, the code issued before the restart still exchanges
        refreshed = await bank.post(
            "/banks/northwind/token",
            data={"grant_type": "refresh_token", "refresh_token": linked.refresh_token},
            headers=reg.basic(),
        )
        assert refreshed.status == 200, await refreshed.text()
        exchanged = await bank.post(
            "/banks/northwind/token",
            data={
                "grant_type": "authorization_code",
                "code": location.query["code"],
                "redirect_uri": flow.REDIRECT,
                "code_verifier": verifier,
            },
            headers=reg.basic(),
        )
        assert exchanged.status == 200, await exchanged.text()
        # and the client registered before the restart starts new consents
        assert await flow.create_consent(bank, reg)


async def test_without_a_data_folder_a_restart_forgets_the_client(
    bank_settings: BankSettings, clock: FrozenClock
) -> None:
    async with running(bank_settings, clock) as bank:
        reg = await flow.register(bank, "northwind")
    async with running(bank_settings, clock) as bank:
        resp = await bank.post(
            "/banks/northwind/token",
            data={"grant_type": "client_credentials", "scope": "accounts"},
            headers=reg.basic(),
        )
        assert resp.status == 401
