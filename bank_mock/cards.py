"""Card controls (an extension outside OBIE): list, freeze, unfreeze, read and answer a fraud
alert.

Card actions, and answering an alert ``Fraud`` (which freezes the card), need a token bound to
an authorised consent granted the ``cards`` scope that covers the card's account. Reading an
alert and answering it ``Genuine`` change no card, so the ``accounts`` scope is enough. Every
action is idempotent: repeating it answers 200 with the same state.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel

from bank_mock.auth.grants import require_grant
from bank_mock.errors import BankError
from bank_mock.identifiers import mask_pan
from bank_mock.keys import CLOCK, GRANTS, bank_of
from bank_mock.models import Card, CardStatus, Consent, FraudAlert
from bank_mock.obie.serialize import amount, iso
from bank_mock.sandbox import parse_body
from bank_mock.state import BankState

BASE = "/banks/{bank_id}/card-controls/v1"
routes = web.RouteTableDef()


def _consent(request: web.Request, bank: BankState, scope: str = "cards") -> Consent:
    grant = require_grant(
        request,
        request.app[GRANTS],
        bank,
        scope=scope,
        consent_bound=True,
        now=request.app[CLOCK](),
    )
    assert grant.consent_id is not None
    return bank.consents[grant.consent_id]


def _card(request: web.Request, bank: BankState, consent: Consent) -> Card:
    card = bank.cards.get(request.match_info["card_id"])
    if card is None or card.account_id not in consent.account_ids:
        raise BankError(404, "Card not found for this consent", path="CardId")
    return card


def _card_json(card: Card) -> dict[str, Any]:
    return {
        "CardId": card.card_id,
        "AccountId": card.account_id,
        "MaskedPan": mask_pan(card.pan),
        "Network": card.network,
        "Status": card.status.value,
    }


@routes.get(BASE + "/cards")
async def list_cards(request: web.Request) -> web.Response:
    """Cards on the consented accounts, masked."""
    bank = bank_of(request)
    consent = _consent(request, bank)
    cards = [bank.cards[c] for a in consent.account_ids for c in bank.accounts[a].card_ids]
    return web.json_response({"Data": {"Card": [_card_json(c) for c in cards]}})


async def _set_status(request: web.Request, status: CardStatus) -> web.Response:
    bank = bank_of(request)
    card = _card(request, bank, _consent(request, bank))
    card.status = status
    bank.keep("card", card.card_id, card)
    body = {
        "CardId": card.card_id,
        "Status": card.status.value,
        "StatusUpdateDateTime": iso(request.app[CLOCK]()),
    }
    return web.json_response({"Data": body})


@routes.post(BASE + "/cards/{card_id}/freeze")
async def freeze(request: web.Request) -> web.Response:
    """Freeze a card (idempotent)."""
    return await _set_status(request, CardStatus.FROZEN)


@routes.post(BASE + "/cards/{card_id}/unfreeze")
async def unfreeze(request: web.Request) -> web.Response:
    """Unfreeze a card (idempotent)."""
    return await _set_status(request, CardStatus.ACTIVE)


class Resolution(BaseModel):
    Resolution: str


def _alert(request: web.Request, bank: BankState, consent: Consent) -> FraudAlert:
    alert = bank.alerts.get(request.match_info["alert_id"])
    if alert is None or alert.account_id not in consent.account_ids:
        raise BankError(404, "Alert not found for this consent", path="AlertId")
    return alert


def _alert_json(bank: BankState, alert: FraudAlert) -> dict[str, Any]:
    """The alert as the customer's app would show it: the flagged payment and the card."""
    card = bank.cards.get(alert.card_id) if alert.card_id else None
    ledger = bank.ledger(alert.account_id).transactions
    tx = next((t for t in ledger if t.transaction_id == alert.transaction_id), None)
    payment: dict[str, Any] | None = None
    if tx is not None:
        payment = {
            "BookingDateTime": iso(tx.booked_at),
            "Amount": amount(tx.amount_minor, tx.currency),
            "MerchantName": tx.merchant_name,
        }
    return {
        "AlertId": alert.alert_id,
        "AccountId": alert.account_id,
        "Resolution": alert.resolution,
        "Reason": alert.reason,
        "CardId": card.card_id if card else None,
        "MaskedPan": mask_pan(card.pan) if card else None,
        "CardStatus": card.status.value if card else None,
        "Transaction": payment,
    }


@routes.get(BASE + "/fraud-alerts/{alert_id}")
async def read_alert(request: web.Request) -> web.Response:
    """The alert, its answer so far and its card's status (the ``accounts`` scope suffices)."""
    bank = bank_of(request)
    alert = _alert(request, bank, _consent(request, bank, "accounts"))
    return web.json_response({"Data": _alert_json(bank, alert)})


@routes.post(BASE + "/fraud-alerts/{alert_id}/resolution")
async def resolve_alert(request: web.Request) -> web.Response:
    """The customer's answer to an alert: Genuine (``accounts`` scope), or Fraud (``cards``
    scope; it freezes the card)."""
    bank = bank_of(request)
    body: Resolution = parse_body(Resolution, await request.read())
    if body.Resolution not in ("Genuine", "Fraud"):
        raise BankError(400, "Resolution must be Genuine or Fraud", path="Resolution")
    consent = _consent(request, bank, "cards" if body.Resolution == "Fraud" else "accounts")
    alert = _alert(request, bank, consent)
    if alert.resolution is not None and alert.resolution != body.Resolution:
        raise BankError(
            409,
            f"Alert was already answered {alert.resolution}",
            code="UK.OBIE.Resource.InvalidConsentStatus",
        )
    alert.resolution = body.Resolution
    card = bank.cards.get(alert.card_id) if alert.card_id else None
    bank.keep("alert", alert.alert_id, alert)
    if card is not None and body.Resolution == "Fraud":
        card.status = CardStatus.FROZEN
        bank.keep("card", card.card_id, card)
    return web.json_response({"Data": _alert_json(bank, alert)})


def setup(app: web.Application) -> None:
    app.router.add_routes(routes)
