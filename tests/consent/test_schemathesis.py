"""schemathesis against the broker's served OpenAPI file: no 5xx, no undocumented status, body
or content type, for generated requests (bounded so the suite stays quick)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from bank_mock.app import create_app as create_bank
from bank_mock.settings import BankSettings
from consent.app import create_app as create_broker
from consent.settings import BrokerSettings
from consent.vault.keyring import generate_kek
from tests.bank_mock.live import serve_app_in_thread
from tests.consent.broker_env import ADMIN, free_port

SPEC = Path(__file__).resolve().parents[2] / "consent" / "openapi.json"
schema = schemathesis.openapi.from_path(str(SPEC))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    bank_port, broker_port = free_port(), free_port()
    tmp = tmp_path_factory.mktemp("broker")
    bank = create_bank(BankSettings(port=bank_port, customers_per_bank=2))
    broker = create_broker(
        BrokerSettings(
            port=broker_port,
            database_url=f"sqlite+aiosqlite:///{tmp / 'consent.db'}",
            bank_directory_url=f"http://127.0.0.1:{bank_port}/banks",
            keyring=f"1:{base64.b64encode(generate_kek()).decode()}",
            admin_token=ADMIN,
            reads_per_minute=100_000,
        )
    )
    with serve_app_in_thread(bank, bank_port), serve_app_in_thread(broker, broker_port):
        base = f"http://127.0.0.1:{broker_port}"
        client = requests.post(
            f"{base}/admin/v1/platform-clients",
            json={"name": "bot"},
            headers={"Authorization": f"Bearer {ADMIN}"},
            timeout=10,
        ).json()
        headers = {"Authorization": f"Bearer {client['credential']}", "X-Purpose": "chat-service"}
        subject = requests.post(f"{base}/v1/subjects", headers=headers, timeout=10).json()[
            "subject_id"
        ]
        yield {"base": base, "headers": headers, "subject": subject}


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=schema.as_strategy())
def test_generated_requests_get_documented_answers_and_never_a_5xx(
    live: dict[str, Any], case: Any
) -> None:
    if case.path_parameters and "subject_id" in case.path_parameters:
        case.path_parameters["subject_id"] = live["subject"]
    headers = dict(live["headers"])
    if case.operation.path == "/admin/v1/platform-clients":
        headers["Authorization"] = f"Bearer {ADMIN}"
    response = case.call(base_url=live["base"], headers=headers, timeout=15)
    assert response.status_code not in (500, 501), response.text[:300]
    case.validate_response(response, checks=CHECKS)
