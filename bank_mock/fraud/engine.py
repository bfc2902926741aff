"""Runs the rules over an incoming transaction, records it, and raises alerts."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from bank_mock import catalog
from bank_mock.fraud.rules import LOOKBACK, RuleConfig, evaluate
from bank_mock.models import FraudAlert, Transaction
from bank_mock.notify import EventSink
from bank_mock.state import BankState


def config_for(currency: str) -> RuleConfig:
    """Rule thresholds scaled to the account's currency."""
    scale = catalog.SCALE.get(currency, 1.0)
    return RuleConfig(
        amount_floor_minor=round(25_000 * scale), testing_max_minor=round(200 * scale)
    )


def process(
    bank: BankState, tx: Transaction, events: EventSink, now: datetime
) -> FraudAlert | None:
    """Record ``tx``; if any rule fires, store and publish a fraud alert."""
    history = bank.ledger(tx.account_id).between(tx.booked_at - LOOKBACK, tx.booked_at)
    verdict = evaluate(tx, history, bank.profile.country, config_for(tx.currency))
    bank.add_transaction(replace(tx, risk_score=verdict.risk_score))
    if not verdict.alert or verdict.reason is None:
        return None
    alert = FraudAlert(
        alert_id=f"fa-{uuid.uuid4()}",
        bank_id=bank.profile.bank_id,
        account_id=tx.account_id,
        transaction_id=tx.transaction_id,
        card_id=tx.card_id,
        rule_ids=list(verdict.rule_ids),
        reason=verdict.reason,
        risk_score=verdict.risk_score,
        raised_at=now,
    )
    bank.alerts[alert.alert_id] = alert
    bank.keep("alert", alert.alert_id, alert)
    events.fraud_alert(bank, alert, tx)
    return alert
