"""The user's answers to a fraud alert go back to the bank: "it was me", "freeze the card",
"unfreeze the card".

Answers converge whatever their order: "it was me" on an alert already answered changes
nothing, freezing after "it was me" still freezes the card, and unfreezing works on any alert
whose card was frozen. Only the card actions need the card_controls scope. Every answer returns
the alert's minimized view as it stands after the answer (the platform keeps nothing).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from consent.banks.client import BankCallError, BankClient, BankRefusedError
from consent.domain.minimize import fraud_alert_view
from consent.domain.policy import allowed_fields
from consent.domain.scopes import Scope
from consent.service.authz import Grant
from consent.service.broker import Broker
from consent.service.deadline import DEFAULT_MS, Deadline, in_time
from consent.service.errors import bad_request, not_found
from consent.service.linking import bank_error
from consent.service.planner import within
from consent.service.reads import _with_token, handle_for
from consent.store import audit
from consent.store.tables import AlertRow, ConsentRow

ANSWERS = ("it_was_me", "freeze_card", "unfreeze_card")
CARD_ACTIONS = frozenset({"freeze_card", "unfreeze_card"})


def _bank_alert_id(alert: AlertRow) -> str:
    """The id the bank knows the alert by."""
    return alert.alert_id


async def _at_bank(
    bank: BankClient,
    token: str,
    bank_alert_id: str,
    choice: str,
    answered: str | None,
    deadline: Deadline,
) -> dict[str, Any]:
    """Make the bank's state match ``choice``; return the bank's alert afterwards.

    Every bank call here is idempotent — resolving with the resolution the alert already has,
    freezing a frozen card, unfreezing an active one and reading all answer the same state —
    so each is retried on a 5xx or a timeout while the deadline lasts (never on a refusal)."""

    async def once(call: Callable[[float], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        return await within(deadline, call)

    if answered is None and choice != "unfreeze_card":
        resolution = "Genuine" if choice == "it_was_me" else "Fraud"
        try:
            body = await once(
                lambda left: bank.resolve_alert(token, bank_alert_id, resolution, timeout_s=left)
            )
        except BankRefusedError as e:
            # another consent over the same bank customer answered first (409): converge on
            # the bank's state below, as for an alert this consent had answered
            if e.status != 409:
                raise
        else:
            data = body.get("Data")
            return data if isinstance(data, dict) else {}
    current = await once(lambda left: bank.read_alert(token, bank_alert_id, timeout_s=left))
    card_id = current.get("CardId")
    if choice == "it_was_me" or not isinstance(card_id, str):
        return current  # already answered: nothing changes; no card: nothing to act on
    action = "freeze" if choice == "freeze_card" else "unfreeze"
    changed = await once(lambda left: bank.set_card(token, card_id, action, timeout_s=left))
    return {**current, "CardStatus": changed.get("Status", current.get("CardStatus"))}


def _as_event(alert_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The bank's alert in the shape of its fraud-alert event, for the one minimizer."""
    raw_tx, raw_money = data.get("Transaction"), None
    tx: dict[str, Any] = raw_tx if isinstance(raw_tx, dict) else {}
    raw_money = tx.get("Amount")
    money: dict[str, Any] = raw_money if isinstance(raw_money, dict) else {}
    return {
        "alert_id": alert_id,
        "masked_pan": data.get("MaskedPan"),
        "reason": data.get("Reason"),
        "transaction": {
            "merchant_name": tx.get("MerchantName"),
            "Amount": money.get("Amount"),
            "Currency": money.get("Currency"),
            "booked_at": tx.get("BookingDateTime"),
        },
    }


def next_actions(scopes: list[str], answer: str | None, card_status: str | None) -> list[str]:
    """What the user may still do with the alert."""
    actions = [] if answer else ["it_was_me"]
    if Scope.CARD_CONTROLS.value in scopes and card_status is not None:
        actions.append("unfreeze_card" if card_status == "Frozen" else "freeze_card")
    return actions


def needed_scopes(choice: str | None) -> frozenset[Scope]:
    """What the consent must allow for this answer: the card actions need card controls."""
    if choice in CARD_ACTIONS:
        return frozenset({Scope.FRAUD_ALERTS, Scope.CARD_CONTROLS})
    return frozenset({Scope.FRAUD_ALERTS})


async def answer(
    broker: Broker, grant: Grant, choice: str, deadline: Deadline | None = None
) -> dict[str, Any]:
    """The answer of an alert the authorization step allowed (consent.service.authz: the
    consent live and holding :func:`needed_scopes`), inside ``deadline``: a bank that does not
    answer in time gives a 504 ``bank_timeout`` and the alert's answer stays as it was here (the
    bank may have applied it; pressing again converges, see :func:`_at_bank`)."""
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    banks = deadline.for_banks()
    if choice not in ANSWERS:
        raise bad_request(
            "answer must be it_was_me, freeze_card or unfreeze_card", "invalid_answer"
        )
    if grant.alert is None or grant.consent is None or grant.subject is None:
        raise not_found("alert")
    client, subject = grant.client, grant.subject
    # the platform names the alert by its opaque handle; the bank's own id stays in the broker
    alert_id = grant.alert.handle
    async with broker.sessions() as session:
        alert = await session.get(
            AlertRow, {"consent_id": grant.alert.consent_id, "alert_id": grant.alert.alert_id}
        )
        row = await session.get(ConsentRow, grant.consent.consent_id)
        if alert is None or row is None:
            raise not_found("alert")
        scopes = sorted(s.value for s in row.scopes)
        answered, bank_alert_id = alert.answer, _bank_alert_id(alert)

        async def call(bank: BankClient, token: str) -> dict[str, Any]:
            return await _at_bank(bank, token, bank_alert_id, choice, answered, banks)

        try:
            data: dict[str, Any] = await in_time(banks, _with_token(broker, session, row, call))
        except BankCallError as e:
            raise bank_error(e) from e
        if choice == "freeze_card" or (choice == "it_was_me" and answered is None):
            alert.answer = choice
            session.add(alert)
        card_status = data.get("CardStatus") if isinstance(data.get("CardStatus"), str) else None
        fields = allowed_fields("fraud_alert", broker.policy(row.bank_id), broker.contract)
        account_id = data.get("AccountId")
        handle = (
            await handle_for(broker, session, row, account_id)
            if isinstance(account_id, str)
            else ""
        )
        actions = next_actions(scopes, alert.answer, card_status)
        view = fraud_alert_view(
            _as_event(alert_id, data),
            alert_handle=alert_id,
            account_handle=handle,
            actions=actions,
            fields=fields,
        )
        await audit.record_action(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action=f"alert.{choice}",
            at=broker.clock(),
            scope="card_controls" if choice in CARD_ACTIONS else "fraud_alerts",
        )
        final = alert.answer
        await session.commit()
    return {"alert_id": alert_id, "answer": final, "card_status": card_status, "alert": view}
