"""Talk to a person at the bank, through the broker, both ways.

Customer → bank: the platform posts the user's text under a consent granted ``support``
(:func:`send`); the broker calls the bank's support API with the consent's token, keeps the
message sealed under the consent's data key, and logs it in the access log by id and time
(never the words). Bank → customer: the bank pushes signed events (:func:`ingest_event`, called
from :mod:`consent.events.ingest`): an agent joined, wrote, is typing, left. The broker keeps
the message sealed, writes its minimized view (DESIGN.md "bank chat message": the conversation's
handle, the role, the representative's display name, the text as the bank masked it, the time)
to the outbox for the platform, and logs it by id and time.

The bank learns nothing about the platform user beyond the consent's customer; the platform
learns nothing from the bank beyond the agent's text and display name.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.banks.client import BankCallError, BankClient
from consent.domain import consent as rules
from consent.domain.policy import allowed_fields
from consent.domain.scopes import Scope
from consent.outbox.write import enqueue
from consent.service.authz import Grant
from consent.service.broker import Broker
from consent.service.errors import BrokerError, bad_request, not_found
from consent.service.linking import PURPOSE, bank_error, to_domain
from consent.service.reads import _with_token
from consent.store import audit
from consent.store.tables import ConsentRow, SupportConversation, SupportMessage
from consent.vault.envelope import open_sealed, seal

CUSTOMER, REPRESENTATIVE = "customer", "bank_representative"
KINDS = ("joined", "message", "typing", "left")
STATUSES = {"waiting": "waiting", "active": "active", "closed": "closed"}


def _handle(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(18)}"


def _seal(key: bytes, consent_id: str, message_id: str, name: str | None, text: str) -> bytes:
    body = json.dumps({"name": name, "text": text}, ensure_ascii=False).encode()
    return seal(key, body, consent_id=consent_id, field=f"support:{message_id}")


def _open(key: bytes, row: SupportMessage) -> dict[str, Any]:
    raw = open_sealed(key, row.sealed, consent_id=row.consent_id, field=f"support:{row.message_id}")
    body: dict[str, Any] = json.loads(raw)
    return body


async def _log(
    session: AsyncSession, row: ConsentRow, action: str, message_id: str, at: datetime
) -> None:
    """One access-log entry naming the message by id (its time is the entry's): no words."""
    await audit.record(
        session,
        subject_id=row.subject_id,
        client_id=row.client_id,
        action=action,
        scope=Scope.SUPPORT.value,
        purpose=PURPOSE,
        fields=[f"message:{message_id}"],
        outcome="allowed",
        reason="ok",
        at=at,
    )


def view(
    broker: Broker, bank_id: str, msg: SupportMessage, name: str | None, text: str | None
) -> dict[str, Any]:
    """The platform's view of one message, cut down to what the bank's policy allows."""
    full: dict[str, Any] = {
        "conversation": msg.conversation,
        "kind": msg.kind,
        "role": msg.role,
        "display_name": name,
        "text": text,
        "time": msg.at.isoformat(),
    }
    fields = allowed_fields("bank_chat_message", broker.policy(bank_id), broker.contract)
    return {k: v for k, v in full.items() if k in fields}


async def _conversation_for(
    session: AsyncSession, consent_id: str, bank_conversation_id: str
) -> SupportConversation | None:
    query = select(SupportConversation).where(
        SupportConversation.consent_id == consent_id,
        SupportConversation.bank_conversation_id == bank_conversation_id,
    )
    return (await session.exec(query)).first()


async def send(broker: Broker, grant: Grant, text: str, language: str) -> dict[str, Any]:
    """The user's message to the bank's staff, under the consent the authorization step
    allowed (live, holding ``support``)."""
    text = text.strip()
    if not text:
        raise bad_request("text must not be blank", "invalid_text")
    if grant.consent is None or grant.subject is None:
        raise not_found("consent")
    now = broker.clock()
    message_id = _handle("sm")
    async with broker.sessions() as session:
        row = await session.get(ConsentRow, grant.consent.consent_id)
        key = await broker.data_key(session, row.consent_id) if row else None
        if row is None or key is None:
            raise not_found("consent")

        async def call(bank: BankClient, token: str) -> dict[str, Any]:
            return await bank.support_message(token, text, message_id, language)

        try:
            data: dict[str, Any] = await _with_token(broker, session, row, call)
        except BankCallError as e:
            raise bank_error(e) from e
        bank_conv = str(data.get("ConversationId", ""))[:100]
        if not bank_conv:
            raise BrokerError(502, "bank_unavailable", "the bank did not open a conversation")
        conv = await _conversation_for(session, row.consent_id, bank_conv)
        if conv is None:
            conv = SupportConversation(
                handle=_handle("conv"),
                consent_id=row.consent_id,
                bank_conversation_id=bank_conv,
                status="waiting",
                opened_at=now,
            )
        conv.status = STATUSES.get(str(data.get("Status", "")).lower(), conv.status)
        session.add(conv)
        await session.flush()
        session.add(
            SupportMessage(
                message_id=message_id,
                conversation=conv.handle,
                consent_id=row.consent_id,
                bank_message_id=str(data.get("MessageId", message_id))[:100],
                kind="message",
                role=CUSTOMER,
                sealed=_seal(key, row.consent_id, message_id, None, text),
                at=now,
            )
        )
        await _log(session, row, "support.send", message_id, now)
        await session.commit()
    expected = data.get("ExpectedReplyDateTime")
    return {
        "conversation": conv.handle,
        "message_id": message_id,
        "status": conv.status,
        "opened": bool(data.get("Opened")),
        "expected_reply_at": expected if isinstance(expected, str) else None,
        "outside_hours": bool(data.get("OutsideBusinessHours")),
    }


async def _owned_conversation(
    session: AsyncSession, grant: Grant, handle: str
) -> SupportConversation:
    conv = await session.get(SupportConversation, handle[:40])
    if conv is None or grant.consent is None or conv.consent_id != grant.consent.consent_id:
        raise not_found("conversation")
    return conv


async def rate(broker: Broker, grant: Grant, handle: str, rating: int) -> dict[str, Any]:
    """The user's 1-5 rating of a closed conversation, passed to the bank."""
    now = broker.clock()
    async with broker.sessions() as session:
        conv = await _owned_conversation(session, grant, handle)
        if conv.status != "closed":
            raise BrokerError(409, "conversation_open", "only a closed conversation is rated")
        row = await session.get(ConsentRow, conv.consent_id)
        assert row is not None

        async def call(bank: BankClient, token: str) -> dict[str, Any]:
            return await bank.support_rate(token, conv.bank_conversation_id, rating)

        try:
            await _with_token(broker, session, row, call)
        except BankCallError as e:
            raise bank_error(e) from e
        conv.rating = rating
        session.add(conv)
        await audit.record_action(
            session,
            subject_id=row.subject_id,
            client_id=row.client_id,
            action="support.rate",
            at=now,
            scope=Scope.SUPPORT.value,
        )
        await session.commit()
        return {"conversation": conv.handle, "status": conv.status, "rating": conv.rating}


async def close(broker: Broker, grant: Grant, handle: str) -> dict[str, Any]:
    """The user ends the conversation (idempotent)."""
    now = broker.clock()
    async with broker.sessions() as session:
        conv = await _owned_conversation(session, grant, handle)
        if conv.status != "closed":
            row = await session.get(ConsentRow, conv.consent_id)
            assert row is not None

            async def call(bank: BankClient, token: str) -> dict[str, Any]:
                return await bank.support_close(token, conv.bank_conversation_id)

            try:
                await _with_token(broker, session, row, call)
            except BankCallError as e:
                raise bank_error(e) from e
            conv.status, conv.closed_at = "closed", now
            session.add(conv)
            await audit.record_action(
                session,
                subject_id=row.subject_id,
                client_id=row.client_id,
                action="support.close",
                at=now,
                scope=Scope.SUPPORT.value,
            )
            await session.commit()
        return {"conversation": conv.handle, "status": conv.status, "rating": conv.rating}


def _time(value: object, default: datetime) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return default
        return parsed if parsed.tzinfo is not None else default
    return default


async def ingest_event(
    broker: Broker, session: AsyncSession, row: ConsentRow, event: dict[str, Any]
) -> str | None:
    """A verified support event from the bank, for ``row`` (in the caller's transaction)."""
    now = broker.clock()
    kind = event.get("type")
    if kind not in KINDS:
        return None
    if not rules.can_read(to_domain(row), Scope.SUPPORT, broker.policy(row.bank_id), now).allowed:
        return None
    conv = await _conversation_for(session, row.consent_id, str(event.get("conversation_id", "")))
    if conv is None:
        return None  # conversations open from the chat; one the broker never saw is not ours
    name = event.get("agent_name")
    name = str(name)[:80] if isinstance(name, str) else None
    if kind == "typing":
        if conv.status == "closed":
            return None
        data = {"conversation": conv.handle, "bank_id": row.bank_id, "kind": "typing"}
        enqueue(
            session,
            client_id=row.client_id,
            subject_id=row.subject_id,
            kind="support_typing",
            data=data,
            now=now,
        )
        return "processed"
    key = await broker.data_key(session, row.consent_id)
    if key is None:
        return None
    raw_id = event.get("message_id")
    bank_message_id = str(raw_id)[:100] if isinstance(raw_id, str) and raw_id else None
    bank_message_id = bank_message_id or f"{kind}:{str(event.get('sent_at', ''))[:40]}"
    seen = await session.exec(
        select(SupportMessage).where(
            SupportMessage.consent_id == row.consent_id,
            SupportMessage.bank_message_id == bank_message_id,
        )
    )
    if seen.first() is not None:
        return "duplicate"
    text = str(event.get("text", ""))[:4000] if kind == "message" else None
    message_id = _handle("sm")
    msg = SupportMessage(
        message_id=message_id,
        conversation=conv.handle,
        consent_id=row.consent_id,
        bank_message_id=bank_message_id,
        kind=str(kind),
        role=REPRESENTATIVE,
        sealed=_seal(key, row.consent_id, message_id, name, text or ""),
        at=_time(event.get("sent_at"), now),
    )
    session.add(msg)
    if kind == "joined" and conv.status != "closed":
        conv.status = "active"
    elif kind == "left":
        conv.status, conv.closed_at = "closed", now
    session.add(conv)
    enqueue(
        session,
        client_id=row.client_id,
        subject_id=row.subject_id,
        kind="support_message",
        data={
            "bank_id": row.bank_id,
            "consent_id": row.consent_id,
            "message": view(broker, row.bank_id, msg, name, text),
        },
        now=now,
    )
    await _log(session, row, "push.support_message", message_id, now)
    return "processed"


async def export(
    broker: Broker, session: AsyncSession, consent_ids: list[str]
) -> list[dict[str, Any]]:
    """Every conversation under these consents, with the messages the broker can still open
    (a shredded consent's words are gone with its key)."""
    if not consent_ids:
        return []
    convs = (
        await session.exec(
            select(SupportConversation)
            .where(col(SupportConversation.consent_id).in_(consent_ids))
            .order_by(col(SupportConversation.opened_at))
        )
    ).all()
    out: list[dict[str, Any]] = []
    for conv in convs:
        key = await broker.data_key(session, conv.consent_id)
        rows = (
            await session.exec(
                select(SupportMessage)
                .where(SupportMessage.conversation == conv.handle)
                .order_by(col(SupportMessage.at))
            )
        ).all()
        messages = []
        for msg in rows:
            if key is None:
                break  # shredded: the words are gone
            body = _open(key, msg)
            messages.append(
                {
                    "message_id": msg.message_id,
                    "kind": msg.kind,
                    "role": msg.role,
                    "display_name": body.get("name"),
                    "text": body.get("text") if msg.kind == "message" else None,
                    "time": msg.at.isoformat(),
                }
            )
        out.append(
            {
                "conversation": conv.handle,
                "status": conv.status,
                "opened_at": conv.opened_at.isoformat(),
                "closed_at": conv.closed_at.isoformat() if conv.closed_at else None,
                "rating": conv.rating,
                "messages": messages,
            }
        )
    return out
