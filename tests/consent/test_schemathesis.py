"""schemathesis against the broker's served OpenAPI file, every check (``--checks all``), with
schema-valid and schema-violating requests: no 5xx, every status, content type, header and body
documented, valid input accepted, invalid input refused (bounded so the suite stays quick)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import CHECKS, load_all_checks, not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance

from bank_mock.app import create_app as create_bank
from bank_mock.settings import BankSettings
from consent.app import create_app as create_broker
from consent.settings import BrokerSettings
from consent.vault.keyring import generate_kek
from tests.bank_mock.live import serve_app_in_thread
from tests.consent.broker_env import ADMIN, free_port

SPEC = Path(__file__).resolve().parents[2] / "consent" / "openapi.json"
schema = schemathesis.openapi.from_path(str(SPEC))
load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())
# CI draws 150 cases per mode; CHATBANK_SCHEMATHESIS_EXAMPLES=5000 for a deep run by hand
EXAMPLES = int(os.environ.get("CHATBANK_SCHEMATHESIS_EXAMPLES", "150"))
# Documented 400s that no schema can predict for a schema-valid request: each bank's policy
# decides which scopes and how many days it shares (scope_not_allowed_by_bank,
# invalid_duration); a cursor must be one this API issued, ``from`` may not follow ``to``, and
# a spending period is at most SPENDING_MAX_DAYS long (an insight's too, and it may not start
# in the future); quiet hours need a real time zone and a start that differs from the end.
SEMANTIC_400 = {
    "PUT /v1/subjects/{subject_id}/receipts/quiet-hours",
    "POST /v1/subjects/{subject_id}/consents",
    "GET /v1/subjects/{subject_id}/accounts/{handle}/transactions",
    "GET /v1/subjects/{subject_id}/spending",
    "GET /v1/subjects/{subject_id}/insights",
}

# A schema-valid X-Request-Deadline-Ms of a few milliseconds may be too short for any answer:
# the broker refuses it with the documented 504 deadline_exceeded (consent/openapi.json), which
# is the contract, not a server error.
DEADLINE_504 = {"deadline_exceeded", "bank_timeout"}


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
        yield {"base": base, "token": client["credential"], "subject": subject}


def check(live: dict[str, Any], case: Any) -> None:
    """Call with the platform's credential; a generated subject id is replaced by a real one
    unless the path is the part of the request this case makes invalid."""
    path = case.meta.components.get(ParameterLocation.PATH) if case.meta else None
    valid_path = path is None or path.mode == GenerationMode.POSITIVE
    if valid_path and case.path_parameters and "subject_id" in case.path_parameters:
        case.path_parameters["subject_id"] = live["subject"]
    token = ADMIN if case.operation.path == "/admin/v1/platform-clients" else live["token"]
    headers = {"Authorization": f"Bearer {token}"}
    response = case.call(base_url=live["base"], headers=headers, timeout=15)
    excluded = [positive_data_acceptance] if case.operation.label in SEMANTIC_400 else []
    if response.status_code == 504 and _error(response) in DEADLINE_504:
        excluded.append(not_a_server_error)  # a deadline it cannot meet, refused as documented
    case.validate_response(response, checks=ALL_CHECKS, excluded_checks=excluded, headers=headers)


def _error(response: Any) -> object:
    try:
        return response.json().get("error")
    except ValueError:
        return None


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=schema.as_strategy(generation_mode=GenerationMode.POSITIVE))
def test_schema_valid_requests_get_documented_answers(live: dict[str, Any], case: Any) -> None:
    check(live, case)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(case=schema.as_strategy(generation_mode=GenerationMode.NEGATIVE))
def test_schema_violating_requests_are_refused_with_documented_answers(
    live: dict[str, Any], case: Any
) -> None:
    check(live, case)
