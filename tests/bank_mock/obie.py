"""Validate real responses against the official OBIE v3.1.11 OpenAPI file with openapi-core."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path

from aiohttp import ClientResponse
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "specs" / "obie-3.1.11" / "account-info-openapi.json"
SHARED_SPEC = ROOT.parent / "shared" / "specs" / "obie-3.1.11" / "account-info-openapi.json"
AISP_PREFIX = "/open-banking/v3.1/aisp"


@functools.cache
def spec() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC))


def validate_obie(
    method: str,
    bank_path: str,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    headers: Mapping[str, str] | None = None,
) -> None:
    """Raise if the response is not what the OBIE spec allows for this operation.

    ``bank_path`` is the path as served by the mock bank, e.g.
    ``/banks/northwind/open-banking/v3.1/aisp/accounts``; the ``/banks/{id}`` prefix is dropped.
    """
    _, _, rest = bank_path.partition(AISP_PREFIX)
    assert rest, f"not an AISP path: {bank_path}"
    request = MockRequest(
        "http://bank.test",
        method.lower(),
        AISP_PREFIX + rest,
        headers={"Authorization": "Bearer x", "x-fapi-financial-id": "x"},
    )
    response = MockResponse(
        body, status_code=status, content_type=content_type, headers=dict(headers or {})
    )
    spec().validate_response(request, response)


async def assert_obie(response: ClientResponse, method: str = "GET") -> bytes:
    """Validate a live aiohttp client response against the OBIE spec; returns its body."""
    body = await response.read()
    content_type = response.headers.get("Content-Type", "").split(";")[0]
    validate_obie(method, response.url.path, response.status, body, content_type, response.headers)
    return body
