"""The service's own OpenAPI file describes its real responses (card controls, sandbox, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from tests.bank_mock import flow

Client = TestClient[Any, Any]
SPEC = OpenAPI.from_file_path(
    str(Path(__file__).resolve().parents[2] / "bank_mock" / "openapi.json")
)


async def conforms(resp: ClientResponse, method: str) -> None:
    body = await resp.read()
    request = MockRequest("http://bank.test", method.lower(), resp.url.path)
    content_type = resp.headers.get("Content-Type", "").split(";")[0]
    SPEC.validate_response(
        request, MockResponse(body, status_code=resp.status, content_type=content_type)
    )


async def test_the_service_serves_its_own_openapi_file(bank_client: Client) -> None:
    resp = await bank_client.get("/openapi.json")
    assert resp.status == 200
    assert "/banks/{bank_id}/card-controls/v1/cards" in (await resp.json())["paths"]


async def test_extension_responses_match_the_extension_spec(bank_client: Client) -> None:
    await conforms(await bank_client.get("/banks"), "GET")
    await conforms(await bank_client.get("/banks/northwind/.well-known/jwks.json"), "GET")
    await conforms(await bank_client.get("/sandbox/banks/northwind/customers"), "GET")
    await conforms(
        await bank_client.get("/sandbox/banks/northwind/raw/accounts/noc000001a0"), "GET"
    )
    await conforms(
        await bank_client.put("/sandbox/banks/northwind/faults", json={"latency_ms": 0}), "PUT"
    )
    reg = await flow.register(bank_client, "northwind")
    await conforms(
        await bank_client.post(
            "/banks/northwind/register", json={"client_name": "x", "redirect_uris": []}
        ),
        "POST",
    )
    token = await bank_client.post(
        "/banks/northwind/token", data={"grant_type": "client_credentials"}, headers=reg.basic()
    )
    await conforms(token, "POST")
    linked = await flow.link(bank_client, reg, scope="openid accounts cards")
    auth = flow.bearer(linked.access_token)
    await conforms(
        await bank_client.get("/banks/northwind/card-controls/v1/cards", headers=auth), "GET"
    )
    card = "/banks/northwind/card-controls/v1/cards/noc000001a0k0"
    await conforms(await bank_client.post(f"{card}/freeze", headers=auth), "POST")
    await conforms(await bank_client.post(f"{card}/unfreeze", headers=auth), "POST")
    await conforms(
        await bank_client.post("/banks/northwind/card-controls/v1/cards/nope/freeze", headers=auth),
        "POST",
    )
    inject = await bank_client.post(
        "/sandbox/banks/northwind/transactions",
        json={
            "account_id": "noc000001a0",
            "amount": "4000",
            "merchant_name": "Jewels",
            "country": "BR",
        },
    )
    body = await inject.json()
    request = MockRequest("http://bank.test", "post", "/sandbox/banks/northwind/transactions")
    SPEC.validate_response(request, MockResponse(orjson.dumps(body), status_code=201))
    resolution = f"/banks/northwind/card-controls/v1/fraud-alerts/{body['alerts'][0]}/resolution"
    await conforms(
        await bank_client.post(resolution, json={"Resolution": "Fraud"}, headers=auth), "POST"
    )
    await conforms(
        await bank_client.post(resolution, json={"Resolution": "Genuine"}, headers=auth), "POST"
    )
    revoke = f"/sandbox/banks/northwind/consents/{linked.consent_id}/revoke"
    await conforms(await bank_client.post(revoke), "POST")
    await conforms(await bank_client.post(revoke), "POST")  # 409 the second time
