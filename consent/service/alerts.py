"""The user's answer to a fraud alert goes back to the bank: "it was me" or "freeze the card".
Answers are idempotent; a different second answer is refused."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from consent.banks.client import BankCallError, BankClient
from consent.domain.scopes import Scope
from consent.service.broker import Broker
from consent.service.errors import BrokerError, bad_request, not_found
from consent.service.linking import bank_error
from consent.service.reads import _with_token
from consent.store import audit
from consent.store.tables import AlertRow, ConsentRow, PlatformClient, Subject

ANSWERS = {"it_was_me": "Genuine", "freeze_card": "Fraud"}


async def answer(
    broker: Broker, client: PlatformClient, subject: Subject, alert_id: str, choice: str
) -> dict[str, Any]:
    if choice not in ANSWERS:
        raise bad_request("answer must be it_was_me or freeze_card", "invalid_answer")
    async with broker.sessions() as session:
        # ``alert_id`` is the platform's opaque handle; the bank's own id stays in the broker
        alert = (await session.exec(select(AlertRow).where(AlertRow.handle == alert_id))).first()
        row = await session.get(ConsentRow, alert.consent_id) if alert else None
        if alert is None or row is None or row.subject_id != subject.subject_id:
            raise not_found("alert")
        if alert.answer == choice:
            return {
                "alert_id": alert_id,
                "answer": choice,
                "card_status": "Frozen" if choice == "freeze_card" else None,
            }
        if alert.answer is not None:
            raise BrokerError(
                409, "already_answered", f"this alert was already answered {alert.answer}"
            )
        bank_alert_id = alert.alert_id
        if choice == "freeze_card" and Scope.CARD_CONTROLS.value not in row.scopes.split(","):
            raise BrokerError(
                403, "scope_not_consented", "freezing a card needs the card_controls scope"
            )

        async def resolve(bank: BankClient, token: str) -> dict[str, Any]:
            url = f"{bank.info.card_controls_base}/fraud-alerts/{bank_alert_id}/resolution"
            _, body = await bank._call(
                "POST",
                url,
                json={"Resolution": ANSWERS[choice]},
                headers={"Authorization": f"Bearer {token}"},
            )
            result: dict[str, Any] = body
            return result

        try:
            result = await _with_token(broker, session, row, resolve)
        except BankCallError as e:
            raise bank_error(e) from e
        alert.answer = choice
        session.add(alert)
        await audit.record_action(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action=f"alert.{choice}",
            at=broker.clock(),
            scope="fraud_alerts",
        )
        await session.commit()
    return {"alert_id": alert_id, "answer": choice, "card_status": result["Data"].get("CardStatus")}
