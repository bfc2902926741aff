"""Card controls for the platform: the subject's cards (opaque handle, last 4, bank, status) on
consents granted card_controls, and freeze/unfreeze by handle.

A card handle is an HMAC of the bank's card id under the consent's data key: stable while the
consent lives, meaningless to anyone else, and gone with the key when the consent is shredded.
The broker stores nothing new.

Both honour the request's deadline: the list asks every bank at once and names a bank that did
not answer in ``unavailable`` (the others' cards are still listed); freezing and unfreezing are
idempotent at the bank (they set a state rather than toggle it), so a call that failed or timed
out is repeated while the deadline lasts, and a press after a timeout converges.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from base64 import b32encode
from dataclasses import dataclass
from typing import Any

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import BankCallError, BankClient
from consent.domain.consent import can_read
from consent.domain.minimize import last4
from consent.domain.purpose import CHAT_SERVICE
from consent.domain.scopes import Scope
from consent.service.balance_plan import reason
from consent.service.broker import Broker
from consent.service.deadline import DEFAULT_MS, Deadline, in_time
from consent.service.errors import BrokerError, not_found
from consent.service.linking import bank_error, to_domain
from consent.service.planner import within
from consent.service.reads import _with_token
from consent.store import audit
from consent.store.tables import ConsentRow, PlatformClient, Subject

ACTIONS = ("freeze", "unfreeze")
CARD_FIELDS = frozenset({"card_handle", "bank_id", "last4", "status"})


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
        if r.bank_id in broker.policies  # a bank that left the directory shares nothing
        and can_read(to_domain(r), Scope.CARD_CONTROLS, broker.policy(r.bank_id), now).allowed
    ]


async def _cards_of(
    broker: Broker, row: ConsentRow, deadline: Deadline
) -> list[tuple[str, dict[str, Any]]]:
    """(handle, bank card) for every card under one consent, inside ``deadline`` (the list is an
    idempotent read: retried on a 5xx or a timeout while time lasts)."""
    async with broker.sessions() as session:
        key = await broker.data_key(session, row.consent_id)
        if key is None:
            return []

        async def call(bank: BankClient, token: str) -> list[dict[str, Any]]:
            return await within(deadline, lambda left: bank.list_cards(token, timeout_s=left))

        try:
            found: list[dict[str, Any]] = await in_time(
                deadline, _with_token(broker, session, row, call)
            )
        except BankCallError as e:
            raise bank_error(e) from e
        await session.commit()  # a refreshed bank token, if any
    return [(card_handle(key, str(c["CardId"])), c) for c in found if c.get("CardId")]


@dataclass(frozen=True, slots=True)
class Listed:
    """One consent's cards, or why its bank gave none."""

    row: ConsentRow
    cards: list[tuple[str, dict[str, Any]]]
    error: BrokerError | None = None


async def _listed(broker: Broker, rows: list[ConsentRow], deadline: Deadline) -> list[Listed]:
    """Every consent's cards, the banks asked at once."""

    async def one(row: ConsentRow) -> Listed:
        try:
            return Listed(row, await _cards_of(broker, row, deadline))
        except BrokerError as e:
            return Listed(row, [], e)

    return list(await asyncio.gather(*(one(r) for r in rows)))


def _view(handle: str, bank_id: str, card: dict[str, Any], status: object) -> dict[str, Any]:
    return {
        "card_handle": handle,
        "bank_id": bank_id,
        "last4": last4(card.get("MaskedPan")),
        "status": "frozen" if status == "Frozen" else "active",
    }


async def cards(
    broker: Broker, client: PlatformClient, subject: Subject, deadline: Deadline | None = None
) -> dict[str, Any]:
    """Every card on the subject's card-controls consents, the banks asked at once inside
    ``deadline``; a bank that gave none is named in ``unavailable`` with a typed reason."""
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    async with broker.sessions() as session:
        rows = await _card_consents(broker, session, subject)
    listed = await _listed(broker, rows, deadline.for_banks())
    late = deadline.expired()
    out: list[dict[str, Any]] = []
    unavailable: list[dict[str, str]] = []
    for one in listed:
        out.extend(_view(h, one.row.bank_id, c, c.get("Status")) for h, c in one.cards)
        if one.error is not None:
            unavailable.append(
                {
                    "consent_id": one.row.consent_id,
                    "bank_id": one.row.bank_id,
                    "bank_name": broker.policy(one.row.bank_id).display_name,
                    "reason": reason(one.error),
                }
            )
    served = not late and (bool(out) or not unavailable)
    async with broker.sessions() as session:
        await audit.record(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action="read.cards",
            scope="card_controls",
            purpose=CHAT_SERVICE,
            fields=sorted(CARD_FIELDS) if served else [],
            outcome="allowed" if served else "denied",
            reason=_why(late, unavailable) if not served else ("partial" if unavailable else "ok"),
            at=broker.clock(),
        )
        await session.commit()
    if late:
        raise BrokerError(504, "deadline_exceeded", "the answer was not ready in time")
    return {"cards": out, "unavailable": unavailable}


def _why(late: bool, unavailable: list[dict[str, str]]) -> str:
    """Why nothing was served: the deadline passed, or the first bank's reason."""
    return "deadline_exceeded" if late else unavailable[0]["reason"]


async def set_card(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    handle: str,
    action: str,
    deadline: Deadline | None = None,
) -> dict[str, Any]:
    """Freeze or unfreeze the card behind ``handle`` inside ``deadline``. Idempotent at the
    bank, so the write is repeated on a 5xx or a timeout while time lasts; when the deadline
    passes first the answer is a 504 and pressing again converges on the same state."""
    if action not in ACTIONS:
        raise not_found("card action")
    deadline = deadline or Deadline.within(DEFAULT_MS / 1000)
    banks = deadline.for_banks()
    async with broker.sessions() as session:
        rows = await _card_consents(broker, session, subject)
    if not rows:
        raise BrokerError(403, "scope_not_consented", "card actions need the card_controls scope")
    listed = await _listed(broker, rows, banks)
    for one in listed:
        for found, card in one.cards:
            if not hmac.compare_digest(found, handle):
                continue
            row, card_id = one.row, str(card["CardId"])

            async def call(bank: BankClient, token: str, card_id: str = card_id) -> Any:
                return await within(
                    banks, lambda left: bank.set_card(token, card_id, action, timeout_s=left)
                )

            async with broker.sessions() as session:
                try:
                    result = await in_time(banks, _with_token(broker, session, row, call))
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
    failed = next((one.error for one in listed if one.error is not None), None)
    if failed is not None:
        raise failed  # the card may be at the bank that did not answer: not "not found"
    raise not_found("card")
