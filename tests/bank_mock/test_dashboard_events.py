"""Consent changes made at the bank reach the event sink: approval and dashboard revocation."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from bank_mock.keys import EVENTS
from bank_mock.models import Consent, FraudAlert, Transaction
from bank_mock.state import BankState
from tests.bank_mock import flow
from tests.bank_mock.conftest import AiohttpClient


class RecordingSink:
    """Remembers every event the bank asks to push, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, str]] = []

    def consent_revoked(self, bank: BankState, consent: Consent) -> None:
        self.events.append(("revoked", consent.bank_id, consent.consent_id))

    def consent_updated(self, bank: BankState, consent: Consent) -> None:
        self.events.append(("updated", consent.bank_id, consent.consent_id))

    def fraud_alert(self, bank: BankState, alert: FraudAlert, tx: Transaction) -> None:
        self.events.append(("fraud", bank.profile.bank_id, alert.alert_id))

    def support_event(self, bank: BankState, consent: Consent, payload: dict[str, Any]) -> None:
        self.events.append(("support", bank.profile.bank_id, str(payload["type"])))

    def transactions_changed(self, bank: BankState, account_id: str, *, status_only: bool) -> None:
        self.events.append(("transactions", bank.profile.bank_id, account_id))


async def test_approval_and_dashboard_revocation_are_pushed_to_the_sink(
    aiohttp_client: AiohttpClient, bank_app: web.Application
) -> None:
    sink = RecordingSink()
    bank_app[EVENTS] = sink
    client: TestClient[Any, Any] = await aiohttp_client(bank_app)
    reg = await flow.register(client, "northwind")
    linked = await flow.link(client, reg)
    assert sink.events == [("updated", "northwind", linked.consent_id)]
    login = await client.post(
        "/banks/northwind/dashboard/login", data={"username": "demo1", "password": "pass-1"}
    )
    form = flow.parse_form(await login.text())
    revoke = await client.post(
        form.actions[0], data={"csrf": form.fields["csrf"], "consent_id": linked.consent_id}
    )
    assert revoke.status == 200
    assert sink.events[-1] == ("revoked", "northwind", linked.consent_id)
    assert len(sink.events) == 2
