"""Card controls: freeze, unfreeze and answering a fraud alert, all idempotent."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from bank_mock.keys import BANKS
from bank_mock.models import CardStatus
from tests.bank_mock import flow

Client = TestClient[Any, Any]
CARDS = "/banks/northwind/card-controls/v1"


async def _linked_with_cards(client: Client) -> flow.Linked:
    reg = await flow.register(client, "northwind")
    return await flow.link(client, reg, scope="openid accounts cards")


async def test_cards_are_listed_masked_for_the_consented_accounts(bank_client: Client) -> None:
    linked = await _linked_with_cards(bank_client)
    resp = await bank_client.get(f"{CARDS}/cards", headers=flow.bearer(linked.access_token))
    cards = (await resp.json())["Data"]["Card"]
    assert cards
    assert all(flow.MASKED.match(c["MaskedPan"]) for c in cards)


async def test_freeze_and_unfreeze_are_idempotent(bank_client: Client) -> None:
    linked = await _linked_with_cards(bank_client)
    card_id = bank_client.app[BANKS]["northwind"].accounts["noc000001a0"].card_ids[0]
    for _ in range(2):
        resp = await bank_client.post(
            f"{CARDS}/cards/{card_id}/freeze", headers=flow.bearer(linked.access_token)
        )
        assert resp.status == 200
        assert (await resp.json())["Data"]["Status"] == "Frozen"
    assert bank_client.app[BANKS]["northwind"].cards[card_id].status == CardStatus.FROZEN
    resp = await bank_client.post(
        f"{CARDS}/cards/{card_id}/unfreeze", headers=flow.bearer(linked.access_token)
    )
    assert (await resp.json())["Data"]["Status"] == "Active"


async def test_card_controls_need_the_cards_scope(bank_client: Client) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)  # accounts only
    card_id = bank_client.app[BANKS]["northwind"].accounts["noc000001a0"].card_ids[0]
    resp = await bank_client.post(
        f"{CARDS}/cards/{card_id}/freeze", headers=flow.bearer(linked.access_token)
    )
    assert resp.status == 403


async def test_a_card_outside_the_consent_is_not_found(bank_client: Client) -> None:
    linked = await _linked_with_cards(bank_client)
    stranger = next(
        c for c in bank_client.app[BANKS]["northwind"].cards if not c.startswith("noc000001")
    )
    resp = await bank_client.post(
        f"{CARDS}/cards/{stranger}/freeze", headers=flow.bearer(linked.access_token)
    )
    assert resp.status == 404


async def test_answering_fraud_freezes_the_card_and_a_different_second_answer_conflicts(
    bank_client: Client,
) -> None:
    linked = await _linked_with_cards(bank_client)
    inject = await bank_client.post(
        "/sandbox/banks/northwind/transactions",
        json={
            "account_id": "noc000001a0",
            "amount": "3100.00",
            "merchant_name": "Gadget Hub",
            "country": "BR",
        },
    )
    alert_id = (await inject.json())["alerts"][0]
    url = f"{CARDS}/fraud-alerts/{alert_id}/resolution"
    for _ in range(2):
        resp = await bank_client.post(
            url, json={"Resolution": "Fraud"}, headers=flow.bearer(linked.access_token)
        )
        assert resp.status == 200
        assert (await resp.json())["Data"]["CardStatus"] == "Frozen"
    conflict = await bank_client.post(
        url, json={"Resolution": "Genuine"}, headers=flow.bearer(linked.access_token)
    )
    assert conflict.status == 409
    bad = await bank_client.post(
        url, json={"Resolution": "Maybe"}, headers=flow.bearer(linked.access_token)
    )
    assert bad.status == 400


async def test_genuine_and_reading_an_alert_need_only_accounts_fraud_needs_cards(
    bank_client: Client,
) -> None:
    reg = await flow.register(bank_client, "northwind")
    linked = await flow.link(bank_client, reg)  # accounts only: no card controls
    inject = await bank_client.post(
        "/sandbox/banks/northwind/transactions",
        json={
            "account_id": "noc000001a0",
            "amount": "3100.00",
            "merchant_name": "Gadget Hub",
            "country": "BR",
        },
    )
    alert_id = (await inject.json())["alerts"][0]
    headers = flow.bearer(linked.access_token)
    url = f"{CARDS}/fraud-alerts/{alert_id}"
    fraud = await bank_client.post(
        f"{url}/resolution", json={"Resolution": "Fraud"}, headers=headers
    )
    assert fraud.status == 403
    before = await bank_client.get(url, headers=headers)
    assert before.status == 200
    assert (await before.json())["Data"]["Resolution"] is None
    genuine = await bank_client.post(
        f"{url}/resolution", json={"Resolution": "Genuine"}, headers=headers
    )
    assert genuine.status == 200
    data = (await genuine.json())["Data"]
    assert (data["Resolution"], data["CardStatus"]) == ("Genuine", "Active")
    assert data["Transaction"]["MerchantName"] == "Gadget Hub"
    assert data["Transaction"]["Amount"] == {"Amount": "3100.00", "Currency": "GBP"}
    assert flow.MASKED.match(data["MaskedPan"]) and data["AccountId"] == "noc000001a0"
