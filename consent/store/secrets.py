"""Sealed values in the database: per-consent data keys, sealed fields, crypto-shredding."""

from __future__ import annotations

from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from consent.store.tables import (
    BankRegistration,
    ConsentKey,
    LastBalance,
    PlatformClient,
    ReceiptRow,
    ReceiptWork,
    SealedSecret,
    SupportMessage,
)
from consent.vault.envelope import (
    WrappedKey,
    new_data_key,
    open_sealed,
    rewrap,
    seal,
    unwrap_key,
    wrap_key,
)
from consent.vault.keyring import KeyRing


async def create_data_key(session: AsyncSession, ring: KeyRing, consent_id: str) -> bytes:
    """Make and store (wrapped) the data key of a new consent."""
    key = new_data_key()
    wrapped = wrap_key(ring, key, consent_id)
    session.add(
        ConsentKey(consent_id=consent_id, kek_version=wrapped.kek_version, wrapped=wrapped.blob)
    )
    return key


async def data_key(session: AsyncSession, ring: KeyRing, consent_id: str) -> bytes | None:
    """The consent's data key, or None once it has been shredded."""
    row = await session.get(ConsentKey, consent_id)
    if row is None:
        return None
    return unwrap_key(ring, WrappedKey(row.kek_version, row.wrapped), consent_id)


async def put_secret(
    session: AsyncSession, key: bytes, consent_id: str, field: str, value: str
) -> None:
    blob = seal(key, value.encode(), consent_id=consent_id, field=field)
    existing = (
        await session.exec(
            select(SealedSecret).where(
                SealedSecret.consent_id == consent_id, SealedSecret.field == field
            )
        )
    ).first()
    if existing is None:
        session.add(SealedSecret(consent_id=consent_id, field=field, blob=blob))
    else:
        existing.blob = blob
        session.add(existing)


async def get_secret(session: AsyncSession, key: bytes, consent_id: str, field: str) -> str | None:
    row = (
        await session.exec(
            select(SealedSecret).where(
                SealedSecret.consent_id == consent_id, SealedSecret.field == field
            )
        )
    ).first()
    return (
        None
        if row is None
        else open_sealed(key, row.blob, consent_id=consent_id, field=field).decode()
    )


async def shred(session: AsyncSession, consent_id: str) -> None:
    """Destroy the consent's data key: its sealed tokens can never be opened again.

    The sealed rows are deleted too, but the guarantee comes from the key being gone."""
    await session.exec(delete(ConsentKey).where(col(ConsentKey.consent_id) == consent_id))
    await session.exec(delete(SealedSecret).where(col(SealedSecret.consent_id) == consent_id))
    await session.exec(delete(LastBalance).where(col(LastBalance.consent_id) == consent_id))
    # support messages are sealed under the key: without it they are noise, so they go too
    await session.exec(delete(SupportMessage).where(col(SupportMessage.consent_id) == consent_id))
    await session.exec(delete(ReceiptRow).where(col(ReceiptRow.consent_id) == consent_id))
    await session.exec(delete(ReceiptWork).where(col(ReceiptWork.consent_id) == consent_id))


async def rewrap_all(session: AsyncSession, ring: KeyRing) -> int:
    """Re-wrap every data key (consents, bank registrations, platform clients) under the ring's
    current KEK; sealed values are untouched. Returns how many keys changed."""
    changed = 0
    for row in (await session.exec(select(ConsentKey))).all():
        if row.kek_version != ring.current:
            new = rewrap(ring, WrappedKey(row.kek_version, row.wrapped), row.consent_id)
            row.kek_version, row.wrapped = new.kek_version, new.blob
            session.add(row)
            changed += 1
    owners: list[tuple[BankRegistration | PlatformClient, str]] = [
        (r, f"bank:{r.bank_id}") for r in (await session.exec(select(BankRegistration))).all()
    ]
    owners += [
        (c, f"platform:{c.client_id}") for c in (await session.exec(select(PlatformClient))).all()
    ]
    for owner, aad in owners:
        if owner.kek_version != ring.current:
            new = rewrap(ring, WrappedKey(owner.kek_version, owner.wrapped_key), aad)
            owner.kek_version, owner.wrapped_key = new.kek_version, new.blob
            session.add(owner)
            changed += 1
    return changed


async def kek_versions_in_use(session: AsyncSession) -> set[int]:
    """Every KEK version some stored data key (consent, bank registration, platform client) is
    wrapped under."""
    used: set[int] = set()
    for table in (ConsentKey, BankRegistration, PlatformClient):
        rows = await session.exec(select(col(table.kek_version)).distinct())
        used |= set(rows.all())
    return used
