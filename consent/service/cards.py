"""Card controls for the platform: the subject's cards (opaque handle, last 4, bank, status) on
consents granted card_controls, and freeze/unfreeze by handle.

A card handle is an HMAC of the bank's card id under the consent's data key: stable while the
consent lives, meaningless to anyone else, and gone with the key when the consent is shredded.
The broker stores nothing new.
"""

from __future__ import annotations

import hashlib
import hmac
from base64 import b32encode
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import BankCallError, BankClient
from consent.domain.consent import can_read
from consent.domain.minimize import last4
from consent.domain.scopes import Scope
from consent.service.broker import Broker
from consent.service.errors import BrokerError, not_found
from consent.service.linking import bank_error, to_domain
from consent.service.reads import _with_token
from consent.store import audit
from consent.store.tables import ConsentRow, PlatformClient, Subject

ACTIONS = ("freeze", "unfreeze")


def card_handle(key: bytes, card_id: str) -> str:
    digest = hmac.new(key, b"card:" + card_id.encode(), hashlib.sha256).digest()
    return "card_" + b32encode(digest[:15]).decode().lower()


async def _card_consents(
    broker: Broker, session: AsyncSession, subject: Subject
) -> list[ConsentRow]:
    rows = (
        await session.exec(select(ConsentRow).where(ConsentRow.subject_id == subject.subject_id))
    ).all()
    now = broker.clock()
    return [
        r
        for r in rows
        if can_read(to_domain(r), Scope.CARD_CONTROLS, broker.policy(r.bank_id), now).allowed
    ]


async def _cards_of(
    broker: Broker, session: AsyncSession, row: ConsentRow
) -> list[tuple[str, dict[str, Any]]]:
    """(handle, bank card) for every card under one consent."""
    key = await broker.data_key(session, row.consent_id)
    if key is None:
        return []

    async def call(bank: BankClient, token: str) -> list[dict[str, Any]]:
        return await bank.list_cards(token)

    try:
        found: list[dict[str, Any]] = await _with_token(broker, session, row, call)
    except BankCallError as e:
        raise bank_error(e) from e
    return [(card_handle(key, str(c["CardId"])), c) for c in found if c.get("CardId")]


def _view(handle: str, bank_id: str, card: dict[str, Any], status: object) -> dict[str, Any]:
    return {
        "card_handle": handle,
        "bank_id": bank_id,
        "last4": last4(card.get("MaskedPan")),
        "status": "frozen" if status == "Frozen" else "active",
    }


async def cards(broker: Broker, client: PlatformClient, subject: Subject) -> list[dict[str, Any]]:
    """Every card on the subject's card-controls consents."""
    out: list[dict[str, Any]] = []
    async with broker.sessions() as session:
        for row in await _card_consents(broker, session, subject):
            for handle, card in await _cards_of(broker, session, row):
                out.append(_view(handle, row.bank_id, card, card.get("Status")))
        await audit.record_action(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action="read.cards",
            at=broker.clock(),
            scope="card_controls",
        )
        await session.commit()
    return out


async def set_card(
    broker: Broker, client: PlatformClient, subject: Subject, handle: str, action: str
) -> dict[str, Any]:
    """Freeze or unfreeze the card behind ``handle`` (idempotent)."""
    if action not in ACTIONS:
        raise not_found("card action")
    async with broker.sessions() as session:
        rows = await _card_consents(broker, session, subject)
        if not rows:
            raise BrokerError(
                403, "scope_not_consented", "card actions need the card_controls scope"
            )
        for row in rows:
            for found, card in await _cards_of(broker, session, row):
                if not hmac.compare_digest(found, handle):
                    continue

                async def call(bank: BankClient, token: str, card_id: str = card["CardId"]) -> Any:
                    return await bank.set_card(token, card_id, action)

                try:
                    result = await _with_token(broker, session, row, call)
                except BankCallError as e:
                    raise bank_error(e) from e
                await audit.record_action(
                    session,
                    subject_id=subject.subject_id,
                    client_id=client.client_id,
                    action=f"card.{action}",
                    at=broker.clock(),
                    scope="card_controls",
                )
                await session.commit()
                return _view(handle, row.bank_id, card, result.get("Status"))
    raise not_found("card")
