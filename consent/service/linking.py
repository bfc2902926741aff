"""Linking a bank (grant), finishing it at the callback, listing and revoking consents.

Nothing is half-written: the bank is asked first, and the consent, its data key and its sealed
PKCE verifier are stored in one transaction only once the bank has answered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass

from sqlmodel import col, select

from consent.banks.client import (
    BankCallError,
    BankClient,
    BankUnavailableError,
    Credentials,
    TokenSet,
)
from consent.domain import consent as rules
from consent.domain.language import state_with_language
from consent.domain.scopes import Scope, oauth_scopes, obie_permissions
from consent.outbox.write import enqueue
from consent.service.broker import Broker
from consent.service.deadline import Deadline, in_time
from consent.service.errors import BrokerError, bad_request, not_found
from consent.service.registration import with_registration
from consent.store import audit, shredding
from consent.store import secrets as sealed
from consent.store.tables import ConsentRow, PlatformClient, ReceiptChoice, Subject

PURPOSE = "chat-service"
log = logging.getLogger(__name__)


def bank_error(e: BankCallError) -> BrokerError:
    """A bank failure as the platform sees it: 502/504 with a retry hint, or 409 for a refusal."""
    if isinstance(e, BankUnavailableError):
        code = "bank_timeout" if e.status == 504 else "bank_unavailable"
        return BrokerError(
            504 if e.status == 504 else 502,
            code,
            str(e),
            headers={"Retry-After": str(e.retry_after or 5)},
        )
    return BrokerError(409, "bank_refused", str(e))


def to_domain(row: ConsentRow) -> rules.Consent:
    return rules.Consent(
        consent_id=row.consent_id,
        subject_id=row.subject_id,
        client_id=row.client_id,
        bank_id=row.bank_id,
        scopes=row.scopes,
        purpose=row.purpose,
        status=rules.ConsentStatus(row.status),
        created_at=row.created_at,
        expires_at=row.expires_at,
        authorized_at=row.authorized_at,
        ended_at=row.ended_at,
    )


def apply(row: ConsentRow, c: rules.Consent) -> None:
    row.status, row.authorized_at, row.ended_at = c.status.value, c.authorized_at, c.ended_at


@dataclass(frozen=True)
class LinkStarted:
    consent_id: str
    authorization_url: str
    expires_at: str
    scopes: list[str]


async def start_link(
    broker: Broker,
    client: PlatformClient,
    subject: Subject,
    bank_id: str,
    scopes: frozenset[Scope],
    days: int | None,
    *,
    language: str | None = None,
    deadline: Deadline | None = None,
    receipts: bool = False,
) -> LinkStarted:
    """Create the consent at the bank and return the bank's own approval URL (its pages in
    ``language`` when the bank has it). A bank that does not answer before ``deadline`` is a
    504 ``bank_timeout`` and nothing is stored (a consent the bank made meanwhile is never
    approved and dies at the bank). ``receipts``: new card payments on the accounts the user
    shares reach the chat as receipts (a push of the transactions view)."""
    policy = broker.policy(bank_id)
    if receipts and Scope.TRANSACTIONS not in scopes:
        raise bad_request("receipts need the transactions scope", "receipts_need_transactions")
    granted = scopes & policy.allowed_scopes & broker.contract.allowed_scopes
    if granted != scopes:
        refused = ", ".join(sorted(s.value for s in scopes - granted))
        raise bad_request(
            f"{policy.display_name} does not share {refused} with chat platforms",
            "scope_not_allowed_by_bank",
        )
    now = broker.clock()
    try:
        expires = rules.expiry_for(now, days, policy)
    except ValueError as e:
        raise bad_request(str(e), "invalid_duration") from e
    verifier = secrets.token_urlsafe(64)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = state_with_language(secrets.token_urlsafe(24), language)  # the return page's language

    async def create(bank: BankClient, cred: Credentials) -> tuple[BankClient, Credentials, str]:
        return bank, cred, await bank.create_consent(cred, obie_permissions(scopes), expires)

    try:
        made = with_registration(broker, bank_id, create)
        bank, cred, bank_consent_id = await (
            made if deadline is None else in_time(deadline.for_banks(), made)
        )
    except BankCallError as e:
        raise bank_error(e) from e
    url = bank.authorization_url(
        cred,
        redirect_uri=broker.redirect_uri(bank_id),
        bank_consent_id=bank_consent_id,
        state=state,
        challenge=challenge,
        scopes=oauth_scopes(scopes),
        ui_locales=language,
    )
    consent_id = f"con_{uuid.uuid4().hex}"
    async with broker.sessions() as session:
        session.add(
            ConsentRow(
                consent_id=consent_id,
                subject_id=subject.subject_id,
                client_id=client.client_id,
                bank_id=bank_id,
                scopes=scopes,
                purpose=PURPOSE,
                status=rules.ConsentStatus.AWAITING_AUTHORIZATION.value,
                created_at=now,
                expires_at=expires,
                bank_consent_id=bank_consent_id,
                state=state,
            )
        )
        await session.flush()
        key = await sealed.create_data_key(session, broker.ring, consent_id)
        await sealed.put_secret(session, key, consent_id, "pkce_verifier", verifier)
        if receipts:
            session.add(ReceiptChoice(consent_id=consent_id, account="*", enabled=True, since=now))
        await audit.record_action(
            session,
            subject_id=subject.subject_id,
            client_id=client.client_id,
            action="consent.create",
            at=now,
        )
        await session.commit()
    scope_names = sorted(s.value for s in scopes)
    return LinkStarted(consent_id, url, expires.isoformat(), scope_names)


async def complete_link(
    broker: Broker, bank_id: str, state: str, code: str | None, error: str | None
) -> ConsentRow:
    """The bank sent the browser back: exchange the code (PKCE) and seal the tokens, or record
    the refusal. Raises 404 for an unknown or already used state."""
    async with broker.sessions() as session:
        row = (await session.exec(select(ConsentRow).where(ConsentRow.state == state))).first()
        if (
            row is None
            or row.bank_id != bank_id
            or row.status != rules.ConsentStatus.AWAITING_AUTHORIZATION
        ):
            raise not_found("pending link")
        now = broker.clock()
        if error or not code:
            apply(row, rules.reject(to_domain(row), now))
            session.add(row)
            await sealed.shred(session, row.consent_id)
            broker.forget_consent(row.consent_id)
            enqueue(
                session,
                client_id=row.client_id,
                subject_id=row.subject_id,
                kind="consent_rejected",
                data={"consent_id": row.consent_id, "bank_id": row.bank_id},
                now=now,
            )
            await session.commit()
            await shredding.settle(broker.engine)
            return row
        key = await broker.data_key(session, row.consent_id)
        verifier = (
            await sealed.get_secret(session, key, row.consent_id, "pkce_verifier") if key else None
        )
        if key is None or verifier is None:
            raise not_found("pending link")
        redirect_uri = broker.redirect_uri(bank_id)

        async def exchange(bank: BankClient, cred: Credentials) -> TokenSet:
            return await bank.exchange_code(cred, code, redirect_uri, verifier)

        try:
            tokens = await with_registration(broker, bank_id, exchange)
        except BankCallError as e:
            raise bank_error(e) from e
        apply(row, rules.authorize(to_domain(row), now))
        session.add(row)
        await sealed.put_secret(session, key, row.consent_id, "access_token", tokens.access_token)
        if tokens.refresh_token:
            await sealed.put_secret(
                session, key, row.consent_id, "refresh_token", tokens.refresh_token
            )
        enqueue(
            session,
            client_id=row.client_id,
            subject_id=row.subject_id,
            kind="consent_authorized",
            data={
                "consent_id": row.consent_id,
                "bank_id": row.bank_id,
                "expires_at": row.expires_at.isoformat(),
            },
            now=now,
        )
        await audit.record_action(
            session,
            subject_id=row.subject_id,
            client_id=row.client_id,
            action="consent.authorize",
            at=now,
        )
        await session.commit()
        return row


async def list_consents(broker: Broker, subject: Subject) -> list[ConsentRow]:
    async with broker.sessions() as session:
        rows = await session.exec(
            select(ConsentRow)
            .where(ConsentRow.subject_id == subject.subject_id)
            .order_by(col(ConsentRow.created_at))
        )
        return list(rows.all())


async def end_consent(
    broker: Broker,
    row_id: str,
    *,
    how: str,
    tell_bank: bool,
    notice: str | None = None,
    deadline: Deadline | None = None,
) -> ConsentRow:
    """Revoke or expire a consent: tell the bank (best effort, given until ``deadline`` when
    one is set, so the platform hears of the revocation in time), shred its key, audit."""
    async with broker.sessions() as session:
        row = await session.get(ConsentRow, row_id)
        if row is None:
            raise not_found("consent")
        now = broker.clock()
        domain = to_domain(row)
        ended = rules.expire(domain, now) if how == "expire" else rules.revoke(domain, now)
        if tell_bank and row.bank_consent_id:
            bank_consent_id = row.bank_consent_id

            async def withdraw(bank: BankClient, cred: Credentials) -> None:
                await bank.delete_consent(cred, bank_consent_id)

            try:
                if deadline is None:
                    await with_registration(broker, row.bank_id, withdraw)
                else:
                    async with asyncio.timeout(max(0.0, deadline.for_banks().remaining())):
                        await with_registration(broker, row.bank_id, withdraw)
            except (BankCallError, BrokerError, TimeoutError) as e:
                # the broker forgets the tokens anyway; the bank's copy dies at its expiry
                log.warning(
                    "could not withdraw consent %s at %s: %s", row.consent_id, row.bank_id, e
                )
        apply(row, ended)
        session.add(row)
        await sealed.shred(session, row.consent_id)
        broker.forget_consent(row.consent_id)
        if notice:
            data = {"consent_id": row.consent_id, "bank_id": row.bank_id}
            enqueue(
                session,
                client_id=row.client_id,
                subject_id=row.subject_id,
                kind=notice,
                data=data,
                now=now,
            )
        await audit.record_action(
            session,
            subject_id=row.subject_id,
            client_id=row.client_id,
            action=f"consent.{how}",
            at=now,
        )
        await session.commit()
    await shredding.settle(broker.engine)
    return row


async def revoke(
    broker: Broker, subject: Subject, consent_id: str, deadline: Deadline | None = None
) -> ConsentRow:
    """The user revokes from the chat; revoking twice is not an error. A bank that does not
    confirm before ``deadline`` does not hold the revocation up (its copy dies at its expiry)."""
    async with broker.sessions() as session:
        row = await session.get(ConsentRow, consent_id)
    if row is None or row.subject_id != subject.subject_id:
        raise not_found("consent")
    if row.status in {s.value for s in rules.ENDED}:
        return row
    try:
        return await end_consent(
            broker, consent_id, how="revoke", tell_bank=True, deadline=deadline
        )
    except rules.InvalidTransitionError as e:
        raise BrokerError(409, "invalid_state", str(e)) from e
